//! Step 4 of a write: check what must hold before it — the caller's
//! `If-Match` / `If-None-Match` against the current object, and Kinto's
//! schema rules for the new one. (A group's members are checked in
//! [`super::members`]; quotas, which need the write's full batch, in the
//! commit step: both under the same lock.)

use super::load::Loaded;
use super::request::{Pre, Request};
use super::resource::{Kind, Target};
use super::schema;
use super::Shard;
use crate::storage::StoredObject;
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{Map, Value};

fn precondition_failed(existing: Option<&StoredObject>) -> KintoError {
    let e = KintoError::new(ErrorKind::PreconditionFailed);
    match existing {
        Some(o) => e
            .with_details(serde_json::json!({ "existing": o.to_json() }))
            .with_timestamp(o.last_modified),
        None => e,
    }
}

/// `If-Match` / `If-None-Match: *` against the current object.
pub(super) fn check_preconditions(
    req: &Request,
    existing: Option<&StoredObject>,
) -> Result<(), KintoError> {
    if let (Some(Pre::Any), Some(o)) = (req.if_none_match, existing) {
        return Err(precondition_failed(Some(o)));
    }
    match (req.if_match, existing) {
        (Some(_), None) => Err(precondition_failed(None)),
        (Some(Pre::At(ts)), Some(o)) if ts != o.last_modified => Err(precondition_failed(Some(o))),
        _ => Ok(()),
    }
}

impl Shard {
    /// [`check_preconditions`] under the write lock: Kinto's 412 for a
    /// missing object carries the list's timestamp.
    pub(super) async fn check_preconditions_locked(
        &self,
        req: &Request,
        existing: Option<&StoredObject>,
    ) -> Result<(), KintoError> {
        match check_preconditions(req, existing) {
            Err(e) if existing.is_none() => {
                Err(e.with_timestamp(self.list_timestamp_locked(&req.target).await?))
            }
            other => other,
        }
    }

    /// Kinto's schema rules for an object about to be written: stored
    /// schemas must be schemas (always, as Kinto's views check them), and
    /// with validation on, objects must match the schemas of their parents;
    /// a valid record is stamped with its collection's version (`schema`).
    pub(super) fn check_schemas(
        &self,
        t: &Target,
        l: &Loaded,
        id: &str,
        data: &mut Map<String, Value>,
    ) -> Result<(), KintoError> {
        let on = self.settings.features.schema_validation;
        let bucket = l.bucket.as_deref();
        match t.kind {
            Kind::Bucket => {
                for field in schema::BUCKET_SCHEMA_FIELDS {
                    schema::check_schema_field(data, field)?;
                }
            }
            Kind::Collection => {
                schema::check_schema_field(data, "schema")?;
                if let (true, Some(s)) = (on, schema::bucket_schema(bucket, "collection:schema")) {
                    self.schemas.validate(s, data, id)?;
                }
            }
            Kind::Group => {
                if let (true, Some(s)) = (on, schema::bucket_schema(bucket, "group:schema")) {
                    self.schemas.validate(s, data, id)?;
                }
            }
            Kind::Record if on => {
                if let Some(c) = l.collection.as_ref() {
                    if let Some(s) = c.data.get("schema").filter(|s| s.is_object()) {
                        self.schemas.validate(s, data, id)?;
                        data.insert("schema".into(), Value::from(c.last_modified));
                    }
                }
                if let Some(s) = schema::bucket_schema(bucket, "record:schema") {
                    self.schemas.validate(s, data, id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
