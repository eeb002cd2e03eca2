//! Kinto's JSON-schema validation (`experimental_collection_schema_validation`):
//! a collection's `schema` validates its records, a bucket's `record:schema`,
//! `collection:schema` and `group:schema` validate the objects of that kind
//! in the bucket. Schemas themselves are checked against their meta-schema
//! whenever they are written, as Kinto's views do.
//!
//! The shard validates inside the write step, with the parents it already
//! loaded, so a schema change and a record write cannot interleave.

use super::cache::{bounded_to, Bounded};
use crate::storage::StoredObject;
use kinto_proto::KintoError;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// Fields that carry schemas, by the kind of object that holds them.
pub const BUCKET_SCHEMA_FIELDS: [&str; 3] = ["record:schema", "collection:schema", "group:schema"];

/// Compiled validators by schema text: compiling costs far more than validating.
pub struct SchemaCache {
    compiled: Mutex<Bounded<Arc<jsonschema::Validator>>>,
}

impl Default for SchemaCache {
    fn default() -> Self {
        SchemaCache {
            compiled: bounded_to(1024),
        }
    }
}

impl SchemaCache {
    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, KintoError> {
        let key = schema.to_string();
        if let Some(v) = self.lock().get(&key) {
            return Ok(v.clone());
        }
        let v = Arc::new(
            jsonschema::validator_for(schema)
                .map_err(|e| KintoError::invalid("body", Some("schema"), e.to_string()))?,
        );
        self.lock().insert(key, v.clone());
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bounded<Arc<jsonschema::Validator>>> {
        // A poisoned cache only lost entries: keep using it.
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates `data` (an object of id `id`) against `schema`, ignoring
    /// the fields Kinto ignores: `last_modified`, `schema`, and `id` unless
    /// the schema declares it; `required` loses them too.
    pub fn validate(
        &self,
        schema: &Value,
        data: &Map<String, Value>,
        id: &str,
    ) -> Result<(), KintoError> {
        let declares_id = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key("id"));
        let ignored =
            |f: &str| matches!(f, "last_modified" | "schema") || (f == "id" && !declares_id);
        let mut schema = schema.clone();
        if let Some(obj) = schema.as_object_mut() {
            let required: Vec<Value> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter(|f| !f.as_str().is_some_and(ignored))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if required.is_empty() {
                obj.remove("required");
            } else {
                obj.insert("required".into(), Value::Array(required));
            }
        }
        let mut instance: Map<String, Value> = data
            .iter()
            .filter(|(k, _)| !ignored(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if declares_id {
            instance.insert("id".into(), Value::String(id.to_owned()));
        }
        let instance = Value::Object(instance);
        let validator = self.validator(&schema)?;
        if let Err(e) = validator.validate(&instance) {
            let name = match &e.kind {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    property.as_str().unwrap_or_default().to_owned()
                }
                _ => last_segment(e.instance_path.as_str())
                    .or_else(|| last_segment(e.schema_path.as_str()))
                    .unwrap_or_default(),
            };
            return Err(KintoError::invalid("body", Some(&name), e.to_string()));
        }
        Ok(())
    }
}

fn last_segment(pointer: &str) -> Option<String> {
    pointer
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
}

/// A schema being stored (in `field` of `data`) must be a valid schema.
pub fn check_schema_field(data: &Map<String, Value>, field: &str) -> Result<(), KintoError> {
    let Some(schema) = data.get(field) else {
        return Ok(());
    };
    let name = format!("data.{field}");
    if !schema.is_object() {
        return Err(KintoError::invalid("body", Some(&name), "Not a mapping"));
    }
    match jsonschema::meta::try_validate(schema) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(KintoError::invalid("body", Some(&name), e.to_string())),
        Err(e) => Err(KintoError::invalid("body", Some(&name), e.to_string())),
    }
}

/// The schema `field` a bucket defines, if any.
pub fn bucket_schema<'a>(bucket: Option<&'a StoredObject>, field: &str) -> Option<&'a Value> {
    bucket?.data.get(field).filter(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn required_field_is_named() {
        let cache = SchemaCache::default();
        let schema = json!({"type": "object", "required": ["title", "id"], "properties": {"title": {"type": "string"}}});
        let e = cache
            .validate(&schema, &data(json!({"x": 1})), "r1")
            .expect_err("title is missing");
        assert_eq!(e.details.expect("details")[0]["name"], "title");
        cache
            .validate(
                &schema,
                &data(json!({"title": "t", "last_modified": 3})),
                "r1",
            )
            .expect("id and last_modified are ignored");
        let e = cache
            .validate(&schema, &data(json!({"title": 3})), "r1")
            .expect_err("wrong type");
        assert_eq!(e.details.expect("details")[0]["name"], "title");
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(check_schema_field(&data(json!({"schema": {"type": "nope"}})), "schema").is_err());
        assert!(check_schema_field(&data(json!({"schema": 3})), "schema").is_err());
        assert!(check_schema_field(
            &data(json!({"schema": {"$schema": "invalid-uri"}})),
            "schema"
        )
        .is_err());
        assert!(check_schema_field(&data(json!({"schema": {"type": "object"}})), "schema").is_ok());
    }
}
