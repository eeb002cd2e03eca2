//! Kinto's resource tree: what each kind is called, where its objects live
//! and which permissions it accepts.

use kinto_proto::limits::MAX_ID_BYTES;
use kinto_proto::pb;
use kinto_proto::{ErrorKind, KintoError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bucket,
    Group,
    Collection,
    Record,
    /// Kinto's accounts plugin: top-level objects like buckets.
    Account,
    /// Kinto's history plugin: entries under their bucket, written by the
    /// shard itself, read and purged through the plural endpoint.
    History,
}

impl Kind {
    /// Every kind, for code (and tests) that must cover them all.
    pub const ALL: [Kind; 6] = [
        Kind::Bucket,
        Kind::Group,
        Kind::Collection,
        Kind::Record,
        Kind::Account,
        Kind::History,
    ];

    pub fn from_pb(k: i32) -> Result<Kind, KintoError> {
        match pb::Kind::try_from(k) {
            Ok(pb::Kind::Bucket) => Ok(Kind::Bucket),
            Ok(pb::Kind::Group) => Ok(Kind::Group),
            Ok(pb::Kind::Collection) => Ok(Kind::Collection),
            Ok(pb::Kind::Record) => Ok(Kind::Record),
            Ok(pb::Kind::Account) => Ok(Kind::Account),
            Ok(pb::Kind::History) => Ok(Kind::History),
            _ => Err(KintoError::internal("operation without a resource kind")),
        }
    }

    /// Kinto's `resource_name`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::Group => "group",
            Kind::Collection => "collection",
            Kind::Record => "record",
            Kind::Account => "account",
            Kind::History => "history",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Bucket => "buckets",
            Kind::Group => "groups",
            Kind::Collection => "collections",
            Kind::Record => "records",
            Kind::Account => "accounts",
            Kind::History => "history",
        }
    }

    /// Permission names an object of this kind accepts in its ACL.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Kind::Bucket => &["read", "write", "collection:create", "group:create"],
            Kind::Collection => &["read", "write", "record:create"],
            Kind::Group | Kind::Record | Kind::Account => &["read", "write"],
            Kind::History => &["read"],
        }
    }
}

/// The address of one object or one plural endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub bucket: String,
    pub collection: String,
    /// `None` for the plural endpoint.
    pub id: Option<String>,
}

impl Target {
    pub fn from_pb(t: &pb::Target) -> Result<Target, KintoError> {
        let kind = Kind::from_pb(t.kind)?;
        // Every id becomes part of a stored key: a shard never looks up or
        // writes one longer than the bound, whatever its gateway checked.
        let ids = [&t.bucket_id, &t.collection_id, &t.object_id];
        if ids
            .iter()
            .any(|id| id.len() > kinto_proto::limits::MAX_ID_BYTES)
        {
            return Err(invalid_id());
        }
        let id = (!t.object_id.is_empty()).then(|| t.object_id.clone());
        Ok(Target {
            kind,
            bucket: t.bucket_id.clone(),
            collection: t.collection_id.clone(),
            id,
        })
    }

    /// Kinto's `parent_id` of the objects of this list.
    pub fn parent_id(&self) -> String {
        match self.kind {
            Kind::Bucket | Kind::Account => String::new(),
            Kind::Group | Kind::Collection | Kind::History => bucket_uri(&self.bucket),
            Kind::Record => collection_uri(&self.bucket, &self.collection),
        }
    }

    /// The URI of object `id` in this list, which is also its ACL id.
    pub fn object_uri(&self, id: &str) -> String {
        concat(&[&self.parent_id(), "/", self.kind.plural(), "/", id])
    }
}

pub fn bucket_uri(bucket: &str) -> String {
    concat(&["/buckets/", bucket])
}

pub fn collection_uri(bucket: &str, collection: &str) -> String {
    concat(&["/buckets/", bucket, "/collections/", collection])
}

/// The parts joined in one allocation. URIs are built several times per
/// operation, and `format!` cost more than a hash-map lookup each.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Kinto's id rule for buckets, groups, collections and records, plus a
/// bound Kinto lacks: at most [`MAX_ID_BYTES`] bytes
/// (`kinto_proto::limits`), since storage engines panic on keys of 64 KiB
/// or more and an object's key holds up to three ids.
pub fn valid_id(id: &str) -> bool {
    if id.len() > MAX_ID_BYTES {
        return false;
    }
    let mut chars = id.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Account ids may also be e-mail addresses: Kinto's account id rule is
/// `^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$`.
/// Bounded to [`MAX_ID_BYTES`] like every id (see [`valid_id`]).
pub fn valid_id_for(kind: Kind, id: &str) -> bool {
    if kind != Kind::Account {
        return valid_id(id);
    }
    id.len() <= MAX_ID_BYTES
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+'))
}

/// Where an object of `kind` is placed: a bucket by its id, an account by
/// `account/<id>` (no bucket id contains `/`, so the keys never collide).
pub fn placement_key(kind: Kind, bucket: &str, id: &str) -> String {
    match kind {
        Kind::Account => format!("account/{id}"),
        Kind::Bucket => id.to_owned(),
        _ => bucket.to_owned(),
    }
}

/// 400 errno 107 for an id that breaks the rule.
pub fn invalid_id() -> KintoError {
    KintoError::invalid("path", None, "Invalid object id")
}

/// An id for a POST without one: UUID4 for records, Kinto's 8-character
/// names for the containers.
pub fn generate_id(kind: Kind) -> String {
    use rand::Rng;
    if kind == Kind::Record {
        return uuid::Uuid::new_v4().to_string();
    }
    const FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(8);
    s.push(FIRST[rng.random_range(0..FIRST.len())] as char);
    for _ in 0..7 {
        s.push(REST[rng.random_range(0..REST.len())] as char);
    }
    s
}

/// 404 for a missing parent collection (errno 111).
pub fn missing_collection(collection: &str) -> KintoError {
    KintoError::not_found(ErrorKind::MissingResource, collection, "collection")
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_kintos_rule() {
        assert!(valid_id("a"));
        assert!(valid_id("A-b_9"));
        assert!(!valid_id(""));
        assert!(!valid_id("-a"));
        assert!(!valid_id("a.b"));
        assert!(!valid_id("é"));
        for kind in [Kind::Bucket, Kind::Record] {
            assert!(valid_id(&generate_id(kind)));
        }
    }

    #[test]
    fn account_ids_follow_kintos_rule() {
        assert!(valid_id_for(Kind::Account, "al+ice.b-c_d@example.com"));
        assert!(!valid_id_for(Kind::Record, "al+ice"));
        for bad in ["+a", ".a", "@a", "a~b", "a b", "a/b", ""] {
            assert!(!valid_id_for(Kind::Account, bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_bounded_in_length() {
        let longest = "a".repeat(MAX_ID_BYTES);
        let too_long = "a".repeat(MAX_ID_BYTES + 1);
        assert!(valid_id(&longest));
        assert!(!valid_id(&too_long));
        for kind in [Kind::Bucket, Kind::Record, Kind::Account] {
            assert!(valid_id_for(kind, &longest), "{kind:?}");
            assert!(!valid_id_for(kind, &too_long), "{kind:?}");
        }
    }

    #[test]
    fn uris_match_kintos() {
        let t = Target {
            kind: Kind::Record,
            bucket: "b".into(),
            collection: "c".into(),
            id: None,
        };
        assert_eq!(t.parent_id(), "/buckets/b/collections/c");
        assert_eq!(t.object_uri("r"), "/buckets/b/collections/c/records/r");
    }
}
