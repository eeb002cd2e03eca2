//! Kinto's default bucket plugin: `/buckets/default…` is an alias of the
//! caller's personal bucket, whose id is derived from the user id exactly as
//! Kinto derives it, so data moved from a Kinto server keeps its URLs.
//!
//! The alias is resolved here, once, and the request continues as if the
//! client had named the real bucket. Creating the bucket (and the
//! collection of the path) on first use is a flag on the same gRPC call: the
//! owning shard does it under the bucket's lock, so the personal bucket costs
//! no extra round trip.

use super::message::KRequest;
use super::routes::ResourcePath;
use crate::digest::hmac_hex;
use axum::http::Method;
use kinto_proto::pb::{Caller, Kind};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;

/// What the shard must create before running the request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Implicit {
    pub bucket: bool,
    pub collection: bool,
}

/// `uuid(hex(HMAC-SHA256(secret, user_id))[:32])`, Kinto's formula: the 32
/// hex digits formatted 8-4-4-4-12, version bits untouched.
pub fn bucket_id(secret: &str, user_id: &str) -> String {
    let d = hmac_hex(secret, user_id);
    format!(
        "{}-{}-{}-{}-{}",
        &d[0..8],
        &d[8..12],
        &d[12..16],
        &d[16..20],
        &d[20..32]
    )
}

/// Default bucket ids already derived, by user id: each costs an
/// HMAC-SHA256, and a user's requests keep asking. Bounded: a full map is
/// simply cleared. User ids are themselves HMACs, never credentials.
pub struct BucketIds {
    secret: String,
    ids: std::sync::Mutex<foldhash::HashMap<String, String>>,
}

/// About 1.5 MB when full.
const REMEMBERED: usize = 10_000;

impl BucketIds {
    pub fn new(secret: &str) -> Self {
        BucketIds {
            secret: secret.to_owned(),
            ids: Default::default(),
        }
    }

    /// [`bucket_id`] with the configured secret.
    pub fn of(&self, user_id: &str) -> String {
        // A poisoned map only lost entries.
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = ids.get(user_id) {
            return id.clone();
        }
        let id = bucket_id(&self.secret, user_id);
        if ids.len() >= REMEMBERED {
            ids.clear();
        }
        ids.insert(user_id.to_owned(), id.clone());
        id
    }
}

/// The request with `default` replaced by the caller's bucket id in its
/// path (and, as Kinto does, in the body's `data.id`), and what to create.
pub fn resolve(
    ids: &BucketIds,
    readonly: bool,
    req: &KRequest,
    path: &ResourcePath,
    caller: &Caller,
) -> Result<(KRequest, ResourcePath, Implicit), KintoError> {
    if caller.user_id.is_empty() {
        return Err(KintoError::new(ErrorKind::Unauthorized));
    }
    if readonly {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let collection = match path.kind {
        Kind::Record => Some(path.collection.as_str()),
        Kind::Collection => path.id.as_deref(),
        _ => None,
    };
    // Kinto's default bucket checks the collection id before creating it.
    if collection.is_some_and(|c| !kinto_model::valid_id(c)) {
        return Err(KintoError::invalid("path", None, "Invalid collection id"));
    }
    let id = ids.of(&caller.user_id);
    let mut req = req.clone();
    req.path = match req.path.strip_prefix("/v1/buckets/default") {
        Some(rest) => {
            let mut p = String::with_capacity(12 + id.len() + rest.len());
            p.push_str("/v1/buckets/");
            p.push_str(&id);
            p.push_str(rest);
            p
        }
        None => {
            return Err(KintoError::internal(
                "default bucket path without /v1/buckets/default",
            ))
        }
    };
    let mut path = path.clone();
    path.bucket = id.clone();
    if path.kind == Kind::Bucket && path.id.is_some() {
        path.id = Some(id.clone());
    }
    rewrite_body_id(&mut req, &id);
    let is_put = req.method == Method::PUT;
    let cid = match path.kind {
        Kind::Record => Some(path.collection.as_str()),
        Kind::Collection => path.id.as_deref(),
        _ => None,
    };
    let implicit = Implicit {
        bucket: !(is_put && path.kind == Kind::Bucket && path.id.is_some()),
        // Kinto skips the collection for a PUT whose path ends with its id,
        // which also catches `PUT …/collections/x/records/x` (a 404 there).
        collection: cid.is_some_and(|c| {
            !(is_put && req.path.strip_suffix(c).is_some_and(|p| p.ends_with('/')))
        }),
    };
    Ok((req, path, implicit))
}

/// Kinto replaces every `default` in the body's `data.id` by the bucket id.
fn rewrite_body_id(req: &mut KRequest, bucket_id: &str) {
    if let Some(body) = &mut req.json {
        if has_default_id(body) {
            replace_default_id(std::sync::Arc::make_mut(body), bucket_id);
        }
        return;
    }
    // Without `default` in its bytes (nor an escape that could spell it),
    // no string of the body contains it: nothing to parse.
    let bytes = &req.body[..];
    if !bytes.contains(&b'\\') && !bytes.windows(7).any(|w| w == b"default") {
        return;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&req.body) else {
        return;
    };
    if replace_default_id(&mut body, bucket_id) {
        if let Ok(bytes) = serde_json::to_vec(&body) {
            req.body = bytes.into();
        }
    }
}

fn has_default_id(body: &Value) -> bool {
    // Not `pointer("/data/id")`: it allocates for each part of the path.
    matches!(body.get("data").and_then(|d| d.get("id")), Some(Value::String(id)) if id.contains("default"))
}

/// Whether `data.id` contained `default` (now replaced).
fn replace_default_id(body: &mut Value, bucket_id: &str) -> bool {
    let Some(Value::String(id)) = body.get_mut("data").and_then(|d| d.get_mut("id")) else {
        return false;
    };
    if !id.contains("default") {
        return false;
    }
    *id = id.replace("default", bucket_id);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_ids_are_the_derived_ones() {
        let ids = BucketIds::new("s");
        for user in ["basicauth:abc", "basicauth:def", "basicauth:abc"] {
            assert_eq!(ids.of(user), bucket_id("s", user));
        }
    }

    #[test]
    fn bucket_id_is_kintos() {
        // Computed with Kinto's formula (python hmac + uuid.UUID) for
        // user id "basicauth:abc" and an empty secret.
        assert_eq!(
            bucket_id("", "basicauth:abc"),
            "e3b079b4-8daf-bcef-7c22-101692dfc42c"
        );
    }
}
