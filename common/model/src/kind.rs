//! The kinds of Kinto objects, with what both sides need to know of each:
//! names, plural path segments and the permissions an ACL may hold.

use kinto_proto::{pb, KintoError};

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

    #[inline]
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
    #[inline]
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

    /// The path segment of the plural endpoint.
    #[inline]
    pub fn plural(self) -> &'static str {
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
    #[inline]
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Kind::Bucket => &["read", "write", "collection:create", "group:create"],
            Kind::Collection => &["read", "write", "record:create"],
            Kind::Group | Kind::Record | Kind::Account => &["read", "write"],
            Kind::History => &["read"],
        }
    }
}
