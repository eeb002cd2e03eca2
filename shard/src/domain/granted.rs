//! The objects of this shard a set of principals is named on, read from the
//! store's principal index ([`crate::storage::Storage::granted`]): what
//! `/permissions` and `__user_data__` start from, at a cost that follows what
//! the principals were granted rather than the shard's size.

use super::acl::Principals;
use super::resource::{Kind, Target};
use super::walk::Found;
use super::Shard;
use crate::storage::{Grant, StoredObject};
use kinto_proto::KintoError;
use std::collections::BTreeSet;

/// Kinds whose objects `/permissions` lists (history entries have ACLs too).
const LISTED: [Kind; 5] = [
    Kind::Bucket,
    Kind::Group,
    Kind::Collection,
    Kind::Record,
    Kind::Account,
];

/// The setting that grants `perm` on every object of `kind`
/// (`bucket_read_principals`, `record_create_principals`, …).
pub(super) fn setting_of(kind: Kind, perm: &str) -> String {
    match perm.split_once(':') {
        Some((child, _)) => format!("{child}_create_principals"),
        None => format!("{}_{perm}_principals", kind.name()),
    }
}

/// The object a grant names, as a target of one of the listed kinds.
fn target_of(g: &Grant) -> Option<Target> {
    let at = |kind, bucket: &str, collection: &str| Target {
        kind,
        bucket: bucket.to_owned(),
        collection: collection.to_owned(),
        id: Some(g.id.clone()),
    };
    let below = g.parent.strip_prefix("/buckets/");
    let target = match (g.resource.as_str(), below) {
        ("bucket", None) if g.parent.is_empty() => at(Kind::Bucket, &g.id, ""),
        ("account", None) if g.parent.is_empty() => at(Kind::Account, "", ""),
        ("group", Some(b)) if !b.contains('/') => at(Kind::Group, b, ""),
        ("collection", Some(b)) if !b.contains('/') => at(Kind::Collection, b, ""),
        ("record", Some(rest)) => {
            let (b, c) = rest.split_once("/collections/")?;
            at(Kind::Record, b, c)
        }
        _ => return None,
    };
    LISTED.contains(&target.kind).then_some(target)
}

impl Shard {
    /// Do the settings grant `who` a permission on every object of a listed
    /// kind? Then no index names those objects, and only a walk finds them.
    pub(super) fn settings_grant_everything(&self, who: &Principals) -> bool {
        let grants = &self.settings.grants;
        LISTED.iter().any(|kind| {
            kind.permissions().iter().any(|perm| {
                grants
                    .get(&setting_of(*kind, perm))
                    .is_some_and(|l| who.contains_any(l))
            })
        })
    }

    /// The objects whose ACL names any of `principals`, or that are groups
    /// listing one as a member (`with_members`), as the index names them:
    /// none is read (some may since be deleted).
    pub(super) async fn granted_targets<'a>(
        &self,
        principals: impl IntoIterator<Item = &'a String>,
        with_members: bool,
    ) -> Result<Vec<(Grant, Target)>, KintoError> {
        let mut grants = BTreeSet::new();
        let principals: Vec<String> = principals.into_iter().cloned().collect();
        for p in &principals {
            grants.extend(self.storage.granted(p).await?);
        }
        if with_members {
            for uri in self.storage.groups_of(&principals).await? {
                let Some((bucket, id)) = uri
                    .strip_prefix("/buckets/")
                    .and_then(|r| r.split_once("/groups/"))
                else {
                    continue;
                };
                grants.insert(Grant {
                    parent: super::resource::bucket_uri(bucket),
                    resource: Kind::Group.name().to_owned(),
                    id: id.to_owned(),
                });
            }
        }
        let targets = grants.into_iter().filter_map(|g| Some((target_of(&g)?, g)));
        Ok(targets.map(|(t, g)| (g, t)).collect())
    }

    /// The live objects of [`Shard::granted_targets`], read.
    pub(super) async fn granted<'a>(
        &self,
        principals: impl IntoIterator<Item = &'a String>,
        with_members: bool,
    ) -> Result<Vec<Found>, KintoError> {
        let targets = self.granted_targets(principals, with_members).await?;
        let mut out = Vec::with_capacity(targets.len());
        for (g, target) in targets {
            if let Some(object) = self.live(&g).await? {
                out.push(Found { target, object });
            }
        }
        Ok(out)
    }

    /// The live object a grant names.
    pub(super) async fn live(&self, g: &Grant) -> Result<Option<StoredObject>, KintoError> {
        let object = self.storage.get(&g.parent, &g.resource, &g.id).await?;
        Ok(object.filter(|o| !o.deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(parent: &str, resource: &str, id: &str) -> Grant {
        Grant {
            parent: parent.into(),
            resource: resource.into(),
            id: id.into(),
        }
    }

    #[test]
    fn grants_name_their_objects() {
        let uri = |g: Grant| target_of(&g).map(|t| t.object_uri(t.id.as_deref().unwrap_or("")));
        assert_eq!(uri(grant("", "bucket", "b")).as_deref(), Some("/buckets/b"));
        assert_eq!(
            uri(grant("", "account", "u")).as_deref(),
            Some("/accounts/u")
        );
        assert_eq!(
            uri(grant("/buckets/b", "group", "g")).as_deref(),
            Some("/buckets/b/groups/g")
        );
        assert_eq!(
            uri(grant("/buckets/b/collections/c", "record", "r")).as_deref(),
            Some("/buckets/b/collections/c/records/r")
        );
        assert_eq!(uri(grant("/buckets/b", "history", "h")), None);
        assert_eq!(uri(grant("/buckets/b", "quota", "bucket_info")), None);
        assert_eq!(
            setting_of(Kind::Bucket, "collection:create"),
            "collection_create_principals"
        );
        assert_eq!(setting_of(Kind::Record, "read"), "record_read_principals");
    }
}
