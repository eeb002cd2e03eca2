//! Kinto's permission inheritance, evaluated on the objects of one request.
//!
//! A permission on an object is granted by the object's own ACL or by the
//! ACLs of its ancestors, as Kinto's `PERMISSIONS_INHERITANCE_TREE` says
//! (docs: kinto-api §3.2), or by a settings-based grant
//! (`<resource>_<permission>_principals`). The table in [`grants`] is that
//! tree, written once; everything else asks [`allowed`].

use super::resource::Kind;
use crate::storage::StoredObject;
use foldhash::{HashMap, HashSet};

/// What an operation needs on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the object, or list the plural.
    Read,
    /// Read a bucket's or collection's own attributes (Kinto's
    /// `read:attributes`): also granted by the `*:create` permissions.
    ReadAttributes,
    /// Update or delete the object, or delete in the plural.
    Write,
    /// Create an object of this kind in its parent.
    Create,
}

impl Need {
    /// The word in `<resource>_<word>_principals` settings.
    fn setting_word(self) -> &'static str {
        match self {
            Need::Read | Need::ReadAttributes => "read",
            Need::Write => "write",
            Need::Create => "create",
        }
    }
}

#[derive(Clone, Copy)]
enum Level {
    Bucket,
    Collection,
    Object,
}

/// The ancestors (and the object itself) whose ACLs may grant.
#[derive(Default, Clone, Copy)]
pub struct Chain<'a> {
    pub bucket: Option<&'a StoredObject>,
    pub collection: Option<&'a StoredObject>,
    pub object: Option<&'a StoredObject>,
}

/// Which (level, permission) pairs grant `need` on an object of `kind`.
fn grants(kind: Kind, need: Need) -> &'static [(Level, &'static [&'static str])] {
    use Level::*;
    const W: &[&str] = &["write"];
    const RW: &[&str] = &["write", "read"];
    match (kind, need) {
        (Kind::Bucket, Need::Read) => &[(Object, RW)],
        (Kind::Bucket, Need::ReadAttributes) => &[(
            Object,
            &["write", "read", "collection:create", "group:create"],
        )],
        (Kind::Bucket, Need::Write) => &[(Object, W)],
        // Buckets are created under the root: settings only.
        (Kind::Bucket, Need::Create) => &[],
        (Kind::Group, Need::Read | Need::ReadAttributes) => &[(Bucket, RW), (Object, RW)],
        (Kind::Group, Need::Write) => &[(Bucket, W), (Object, W)],
        (Kind::Group, Need::Create) => &[(Bucket, &["write", "group:create"])],
        (Kind::Collection, Need::Read) => &[(Bucket, RW), (Object, RW)],
        (Kind::Collection, Need::ReadAttributes) => {
            &[(Bucket, RW), (Object, &["write", "read", "record:create"])]
        }
        (Kind::Collection, Need::Write) => &[(Bucket, W), (Object, W)],
        (Kind::Collection, Need::Create) => &[(Bucket, &["write", "collection:create"])],
        (Kind::Record, Need::Read | Need::ReadAttributes) => {
            &[(Bucket, RW), (Collection, RW), (Object, RW)]
        }
        (Kind::Record, Need::Write) => &[(Bucket, W), (Collection, W), (Object, W)],
        (Kind::Record, Need::Create) => &[(Bucket, W), (Collection, &["write", "record:create"])],
        (Kind::Account, Need::Read | Need::ReadAttributes) => &[(Object, RW)],
        (Kind::Account, Need::Write) => &[(Object, W)],
        // Sign-up is granted by `account_create_principals` only.
        (Kind::Account, Need::Create) => &[],
        (Kind::History, Need::Read | Need::ReadAttributes) => &[(Bucket, RW), (Object, &["read"])],
        (Kind::History, Need::Write) => &[(Bucket, W)],
        // Entries are written by the shard, never created through the API.
        (Kind::History, Need::Create) => &[],
    }
}

/// The caller's principals, with the groups it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    pub user_id: Option<String>,
    pub all: HashSet<String>,
}

impl Principals {
    pub fn contains_any(&self, list: &[String]) -> bool {
        list.iter().any(|p| self.all.contains(p))
    }
}

/// Settings-based grants, keyed `<resource>_<read|write|create>_principals`.
pub type SettingsGrants = HashMap<String, Vec<String>>;

/// Is `need` on an object of `kind` granted to `who`?
pub fn allowed(
    kind: Kind,
    need: Need,
    chain: Chain<'_>,
    who: &Principals,
    settings: &SettingsGrants,
) -> bool {
    let granted = |word: &str| {
        let key = super::resource::concat(&[kind.name(), "_", word, "_principals"]);
        settings.get(&key).is_some_and(|l| who.contains_any(l))
    };
    // As in the tree, a settings-granted `write` implies `read`.
    if granted(need.setting_word())
        || (matches!(need, Need::Read | Need::ReadAttributes) && granted("write"))
    {
        return true;
    }
    grants(kind, need).iter().any(|(level, perms)| {
        let obj = match level {
            Level::Bucket => chain.bucket,
            Level::Collection => chain.collection,
            Level::Object => chain.object,
        };
        obj.is_some_and(|o| {
            perms.iter().any(|p| {
                o.permissions
                    .get(p)
                    .is_some_and(|list| who.contains_any(list))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Acl;

    fn obj(perm: &str, principal: &str) -> StoredObject {
        let mut permissions = Acl::new();
        permissions.insert(perm.into(), vec![principal.into()]);
        StoredObject {
            id: "x".into(),
            last_modified: 1,
            deleted: false,
            data: Default::default(),
            permissions,
        }
    }

    fn alice() -> Principals {
        Principals {
            user_id: Some("alice".into()),
            all: ["alice", "system.Everyone", "system.Authenticated"]
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    #[test]
    fn bucket_write_grants_everything_below() {
        let b = obj("write", "alice");
        let chain = Chain {
            bucket: Some(&b),
            ..Default::default()
        };
        for kind in [Kind::Group, Kind::Collection, Kind::Record] {
            for need in [Need::Read, Need::Write, Need::Create] {
                assert!(allowed(kind, need, chain, &alice(), &Default::default()));
            }
        }
    }

    #[test]
    fn record_create_does_not_grant_read() {
        let c = obj("record:create", "system.Authenticated");
        let chain = Chain {
            collection: Some(&c),
            ..Default::default()
        };
        let s = SettingsGrants::default();
        assert!(allowed(Kind::Record, Need::Create, chain, &alice(), &s));
        assert!(!allowed(Kind::Record, Need::Read, chain, &alice(), &s));
        let chain = Chain {
            object: Some(&c),
            ..Default::default()
        };
        assert!(allowed(
            Kind::Collection,
            Need::ReadAttributes,
            chain,
            &alice(),
            &s
        ));
        assert!(!allowed(Kind::Collection, Need::Read, chain, &alice(), &s));
    }

    #[test]
    fn settings_grant_by_resource_and_word() {
        let mut s = SettingsGrants::default();
        s.insert(
            "bucket_create_principals".into(),
            vec!["system.Authenticated".into()],
        );
        assert!(allowed(
            Kind::Bucket,
            Need::Create,
            Chain::default(),
            &alice(),
            &s
        ));
        let anonymous = Principals {
            user_id: None,
            all: ["system.Everyone".to_string()].into_iter().collect(),
        };
        assert!(!allowed(
            Kind::Bucket,
            Need::Create,
            Chain::default(),
            &anonymous,
            &s
        ));
        assert!(!allowed(
            Kind::Collection,
            Need::Create,
            Chain::default(),
            &alice(),
            &s
        ));
    }
}
