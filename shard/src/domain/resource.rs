//! Kinto's resource tree: what each kind is called, where its objects live
//! and which permissions it accepts.

pub use kinto_model::{generate_id, invalid_id, valid_id, valid_id_for, Kind};
use kinto_placement::PlacementKey;
use kinto_proto::pb;
use kinto_proto::{ErrorKind, KintoError};

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

    /// What places this target: its bucket, or for an account its id.
    /// `None` for the lists that span every shard (`/buckets`, `/accounts`).
    pub fn placement(&self) -> Option<PlacementKey<'_>> {
        PlacementKey::of(self.kind == Kind::Account, &self.bucket, self.id.as_deref())
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

/// 404 for a missing parent collection (errno 111).
pub fn missing_collection(collection: &str) -> KintoError {
    KintoError::not_found(ErrorKind::MissingResource, collection, "collection")
}

#[cfg(test)]
mod tests {
    use super::*;

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
