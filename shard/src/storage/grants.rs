//! What the principal index holds: the objects an ACL entry names a
//! principal on. Both backends keep it in the commit that writes the ACL, so
//! `/permissions` and `__user_data__` read what a principal was granted
//! instead of walking every object of a shard.

use super::{Acl, StoredObject};
use std::collections::BTreeSet;

/// One object whose ACL names a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub parent: String,
    pub resource: String,
    pub id: String,
}

/// The principals `acl` names, each once. Kinto stores an empty principal
/// as given, but no caller has it, and CQL refuses it as a partition key:
/// the index leaves it out.
pub fn principals(acl: &Acl) -> BTreeSet<&str> {
    acl.values()
        .flatten()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Lists whose objects the index leaves out: a history entry copies the
/// readers of the object it describes, so indexing them would grow every
/// reader's entries with every change, and no reader of the index lists them.
const UNINDEXED: &[&str] = &["history"];

/// Does the index hold the objects of lists of `resource`?
pub fn indexed(resource: &str) -> bool {
    !UNINDEXED.contains(&resource)
}

/// The principals a `Put` of `new` over `old` in a list of `resource`
/// removes from, and adds to, the index: a tombstone names none.
pub fn changed<'a>(
    resource: &str,
    old: Option<&'a StoredObject>,
    new: &'a StoredObject,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let named = |o: Option<&'a StoredObject>| match o {
        Some(o) if !o.deleted && indexed(resource) => principals(&o.permissions),
        _ => BTreeSet::new(),
    };
    let (before, after) = (named(old), named(Some(new)));
    (
        before.difference(&after).copied().collect(),
        after.difference(&before).copied().collect(),
    )
}

/// `+1`, `-1` or `0`: how a `Put` of `new` over `old` changes its list's count.
pub fn count_delta(old: Option<&StoredObject>, new: &StoredObject) -> i64 {
    let alive = |o: Option<&StoredObject>| i64::from(o.is_some_and(|o| !o.deleted));
    alive(Some(new)) - alive(old)
}

/// Is `parent` in one of the `purged` trees (the tree itself or below)?
pub fn in_purged(purged: &[String], parent: &str) -> bool {
    purged.iter().any(|p| {
        parent == p
            || parent
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(id: &str, who: &[&str]) -> StoredObject {
        let mut o = StoredObject::tombstone(id, 1);
        o.deleted = false;
        o.permissions
            .insert("write".into(), who.iter().map(|p| p.to_string()).collect());
        o.permissions
            .insert("read".into(), vec![who[0].to_string()]);
        o
    }

    #[test]
    fn a_put_moves_only_the_principals_that_changed() {
        let old = named("x", &["alice", "bob"]);
        let new = named("x", &["bob", "carol"]);
        let changed = |old, new| changed("record", old, new);
        assert_eq!(changed(Some(&old), &new), (vec!["alice"], vec!["carol"]));
        assert_eq!(changed(None, &new), (vec![], vec!["bob", "carol"]));
        let tomb = StoredObject::tombstone("x", 2);
        assert_eq!(changed(Some(&old), &tomb), (vec!["alice", "bob"], vec![]));
        assert_eq!(super::changed("history", None, &new), (vec![], vec![]));
        assert_eq!(count_delta(Some(&old), &tomb), -1);
        assert_eq!(count_delta(Some(&tomb), &new), 1);
        assert_eq!(count_delta(Some(&old), &new), 0);
        assert_eq!(count_delta(None, &tomb), 0);
        let blank = named("x", &["", "bob"]);
        assert_eq!(changed(None, &blank), (vec![], vec!["bob"]));
    }

    #[test]
    fn purged_trees_hold_their_own_lists_and_those_below() {
        let purged = vec!["/buckets/b".to_owned()];
        assert!(in_purged(&purged, "/buckets/b"));
        assert!(in_purged(&purged, "/buckets/b/collections/c"));
        assert!(!in_purged(&purged, "/buckets/bb"));
        assert!(!in_purged(&purged, ""));
    }
}
