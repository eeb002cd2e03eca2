//! An object's ACL: permission name → principals, both sorted and unique.
//!
//! A sorted vector of pairs rather than a `BTreeMap`: an object has one to
//! four permissions, and a `BTreeMap` allocates a node sized for eleven
//! (~550 bytes) for its first. Every object read from the store carries an
//! ACL, and the shard caches hold hundreds of thousands of buckets and
//! collections, so that node was most of a cached object's memory
//! (docs/benchmarks.md). Stored and printed as a JSON object, as before.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl(Vec<(String, Vec<String>)>);

impl Acl {
    pub fn new() -> Self {
        Acl(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, perm: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(p, _)| p.as_str().cmp(perm))
    }

    pub fn get(&self, perm: &str) -> Option<&Vec<String>> {
        self.find(perm).ok().map(|i| &self.0[i].1)
    }

    /// Sets `perm`'s principals; returns the ones it replaces.
    pub fn insert(&mut self, perm: String, principals: Vec<String>) -> Option<Vec<String>> {
        match self.find(&perm) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, principals)),
            Err(i) => {
                self.0.insert(i, (perm, principals));
                None
            }
        }
    }

    pub fn remove(&mut self, perm: &str) -> Option<Vec<String>> {
        self.find(perm).ok().map(|i| self.0.remove(i).1)
    }

    /// `perm`'s principals, an empty list inserted first if it has none.
    pub fn principals_mut(&mut self, perm: &str) -> &mut Vec<String> {
        let i = match self.find(perm) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (perm.to_owned(), Vec::new()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// The permission names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(p, _)| p.as_str())
    }

    pub fn values(&self) -> impl Iterator<Item = &Vec<String>> {
        self.0.iter().map(|(_, l)| l)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Vec<String>> {
        self.0.iter_mut().map(|(_, l)| l)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Vec<String>) -> bool) {
        self.0.retain_mut(|(p, l)| keep(p, l));
    }
}

impl Serialize for Acl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (perm, principals) in &self.0 {
            map.serialize_entry(perm, principals)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Acl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AclVisitor)
    }
}

struct AclVisitor;

impl<'de> Visitor<'de> for AclVisitor {
    type Value = Acl;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of permission names to lists of principals")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Acl, A::Error> {
        let mut acl = Acl::new();
        while let Some((perm, mut principals)) = m.next_entry::<String, Vec<String>>()? {
            // JSON gives no length up front, so both lists grew by doubling.
            principals.shrink_to_fit();
            acl.insert(perm, principals);
        }
        acl.0.shrink_to_fit();
        Ok(acl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(acl: &Acl) -> Vec<&str> {
        acl.0.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn keeps_permissions_sorted_and_unique() {
        let mut acl = Acl::new();
        assert!(acl.insert("write".into(), vec!["a".into()]).is_none());
        acl.insert("read".into(), vec!["b".into()]);
        acl.principals_mut("collection:create").push("c".into());
        assert_eq!(names(&acl), ["collection:create", "read", "write"]);
        let old = acl.insert("write".into(), vec!["d".into()]);
        assert_eq!(old, Some(vec!["a".to_string()]));
        assert_eq!(acl.get("write"), Some(&vec!["d".to_string()]));
        assert_eq!(acl.remove("read"), Some(vec!["b".to_string()]));
        assert_eq!(acl.get("read"), None);
        acl.principals_mut("write").push("e".into());
        assert_eq!(acl.get("write").map(Vec::len), Some(2));
        acl.retain(|p, _| p == "write");
        assert_eq!(names(&acl), ["write"]);
    }

    #[test]
    fn reads_and_prints_a_json_object_in_key_order() {
        let acl: Acl =
            serde_json::from_str(r#"{"write":["u"],"read":["system.Everyone"],"write":["v"]}"#)
                .expect("acl");
        // A repeated key keeps its last value, as a map would.
        assert_eq!(
            serde_json::to_string(&acl).expect("json"),
            r#"{"read":["system.Everyone"],"write":["v"]}"#
        );
        assert!(serde_json::from_str::<Acl>(r#"["write"]"#).is_err());
        assert!(serde_json::from_str::<Acl>(r#"{"write":"u"}"#).is_err());
    }
}
