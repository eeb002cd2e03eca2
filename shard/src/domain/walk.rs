//! Endpoints about a principal rather than a bucket: `/permissions` and
//! `/__user_data__/{principal}`. Each shard answers for the objects it owns
//! (buckets, their groups, collections and records, and accounts); the
//! gateway merges the shards' answers.
//!
//! Both start from the principal index ([`super::granted`]): the cost
//! follows what the principals were granted. Only when the settings grant a
//! caller a permission on every object of a kind (`bucket_read_principals`
//! naming them, say) does `/permissions` walk every object of the shard, as
//! every one of them is then in the answer.

use super::acl::Principals;
use super::request::ListQuery;
use super::resource::{Kind, Target};
use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_proto::{pb, KintoError};
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) struct Found {
    pub(super) target: Target,
    pub(super) object: StoredObject,
}

impl Found {
    fn id(&self) -> &str {
        &self.object.id
    }

    fn uri(&self) -> String {
        self.target.object_uri(self.id())
    }
}

impl Shard {
    async fn walk(&self) -> Result<Vec<Found>, KintoError> {
        let mut out = Vec::new();
        let at = |kind, bucket: &str, collection: &str, id: &str| Target {
            kind,
            bucket: bucket.to_owned(),
            collection: collection.to_owned(),
            id: Some(id.to_owned()),
        };
        for b in self.storage.list("", "bucket", None, false).await? {
            let uri = super::resource::bucket_uri(&b.id);
            for g in self.storage.list(&uri, "group", None, false).await? {
                out.push(Found {
                    target: at(Kind::Group, &b.id, "", &g.id),
                    object: g,
                });
            }
            for c in self.storage.list(&uri, "collection", None, false).await? {
                let curi = super::resource::collection_uri(&b.id, &c.id);
                for r in self.storage.list(&curi, "record", None, false).await? {
                    out.push(Found {
                        target: at(Kind::Record, &b.id, &c.id, &r.id),
                        object: r,
                    });
                }
                out.push(Found {
                    target: at(Kind::Collection, &b.id, "", &c.id),
                    object: c,
                });
            }
            let id = b.id.clone();
            out.push(Found {
                target: at(Kind::Bucket, &id, "", &id),
                object: b,
            });
        }
        for a in self.storage.list("", "account", None, false).await? {
            out.push(Found {
                target: at(Kind::Account, "", "", &a.id),
                object: a,
            });
        }
        Ok(out)
    }

    /// Kinto's `/permissions` entries for the objects of this shard: every
    /// one, or the first of the `page` ([`super::entries`]).
    pub async fn permissions(
        &self,
        caller: &pb::Caller,
        page: Option<pb::ListQuery>,
    ) -> Result<(Vec<Value>, Vec<u8>), KintoError> {
        let page = page.map(ListQuery::decode).transpose()?;
        let page = page.as_ref();
        let served = self.served_before();
        let who = self.principals(caller).await?;
        let entries = if !self.settings_grant_everything(&who) {
            self.granted_entries(&who, page).await?
        } else {
            let found = self.walk().await?;
            let entries = found.iter().filter_map(|f| self.entry(f, &who)).collect();
            super::entries::page_of(entries, page)
        };
        Ok((entries, self.served_after(served)?))
    }

    /// The permissions `who` holds on the object itself (its ACL or the
    /// settings), expanded within the object as Kinto does: `write` gives
    /// every permission of the object, `read` and `*:create` give
    /// `read:attributes` on buckets and collections.
    pub(super) fn held(&self, f: &Found, who: &Principals) -> BTreeSet<String> {
        let kind = f.target.kind;
        let grants = &self.settings.grants;
        let direct = |perm: &str| {
            let in_acl = f
                .object
                .permissions
                .get(perm)
                .is_some_and(|l| who.contains_any(l));
            let setting = super::granted::setting_of(kind, perm);
            in_acl || grants.get(&setting).is_some_and(|l| who.contains_any(l))
        };
        let mut held = BTreeSet::new();
        let all = kind.permissions();
        let has_attributes = matches!(kind, Kind::Bucket | Kind::Collection);
        if direct("write") {
            held.extend(all.iter().map(|p| p.to_string()));
            if has_attributes {
                held.insert("read:attributes".into());
            }
        }
        for perm in all.iter().filter(|p| **p != "write") {
            if direct(perm) {
                held.insert(perm.to_string());
                if has_attributes {
                    held.insert("read:attributes".into());
                }
            }
        }
        held
    }

    /// Kinto's `__user_data__` deletion for this shard's objects.
    pub async fn delete_user_data(&self, principal: &str) -> Result<(), KintoError> {
        let mut found = self.granted([&principal.to_owned()], true).await?;
        // Ancestors first, so their cascade covers their children.
        found.sort_by_key(|f| f.uri());
        let mut deleted: Vec<String> = Vec::new();
        for f in found {
            let uri = f.uri();
            if deleted.iter().any(|d| uri.starts_with(&format!("{d}/"))) {
                continue;
            }
            let acl = &f.object.permissions;
            let mentioned = acl.values().any(|l| l.iter().any(|p| p == principal));
            let member = f.target.kind == Kind::Group
                && f.object
                    .data
                    .get("members")
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.iter().any(|p| p.as_str() == Some(principal)));
            if !mentioned && !member {
                continue;
            }
            let _guard = self.lock_for_write(&f.target).await;
            let parent = f.target.parent_id();
            let resource = f.target.kind.name();
            // Re-read under the lock: the walk was not.
            let Some(current) = self.storage.get(&parent, resource, f.id()).await? else {
                continue;
            };
            if current.deleted {
                continue;
            }
            let owned = current
                .permissions
                .get("write")
                .is_some_and(|w| w == &[principal.to_owned()]);
            let mut writes;
            if owned {
                let list_ts = self.locked_timestamp(&parent, resource).await?.unwrap_or(0);
                let (tomb, w) = self
                    .tombstone_writes(&f.target, &current, list_ts, None)
                    .await?;
                writes = w;
                writes.push(Write::Timestamp {
                    parent,
                    resource,
                    value: tomb.last_modified,
                });
                deleted.push(uri);
            } else {
                let mut kept = current.clone();
                for list in kept.permissions.values_mut() {
                    list.retain(|p| p != principal);
                }
                kept.permissions.retain(|_, l| !l.is_empty());
                writes = Vec::new();
                if let Some(Value::Array(members)) = kept.data.get_mut("members") {
                    members.retain(|p| p.as_str() != Some(principal));
                    writes.push(Write::RemoveMember {
                        principal: principal.to_owned(),
                        group_uri: uri,
                    });
                }
                writes.push(Write::Put {
                    parent,
                    resource,
                    previous_last_modified: Some(current.last_modified),
                    object: kept,
                });
            }
            self.commit(writes).await?;
        }
        Ok(())
    }
}
