//! Kinto's default bucket plugin: `/buckets/default…` is an alias of the
//! caller's personal bucket, whose id is derived from the user id exactly as
//! Kinto derives it, so data moved from a Kinto server keeps its URLs.
//!
//! The alias is resolved here, once, and the request continues as if the
//! client had named the real bucket. Creating the bucket (and the
//! collection of the path) on first use is a flag on the same gRPC call: the
//! owning shard does it under the bucket's lock, so the personal bucket costs
//! no extra round trip.

use super::memo::Memo;
use super::message::KRequest;
use super::routes::ResourcePath;
use crate::auth::hmac_hex;
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

/// The request with `default` replaced by the caller's bucket id in its
/// path (and, as Kinto does, in the body's `data.id`), and what to create.
pub fn resolve(
    secret: &str,
    readonly: bool,
    req: &KRequest,
    path: &ResourcePath,
    caller: &Caller,
    memo: Option<&Memo>,
) -> Result<(KRequest, ResourcePath, Implicit), KintoError> {
    if caller.user_id.is_empty() {
        return Err(KintoError::new(ErrorKind::Unauthorized));
    }
    if readonly {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let id = super::memo::bucket_id(memo, secret, &caller.user_id);
    let mut req = req.clone();
    req.path = match req.path.strip_prefix("/v1/buckets/default") {
        Some(rest) => format!("/v1/buckets/{id}{rest}"),
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
        collection: cid.is_some_and(|c| !(is_put && req.path.ends_with(&format!("/{c}")))),
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
    matches!(body.pointer("/data/id"), Some(Value::String(id)) if id.contains("default"))
}

/// Whether `data.id` contained `default` (now replaced).
fn replace_default_id(body: &mut Value, bucket_id: &str) -> bool {
    let Some(Value::String(id)) = body.pointer_mut("/data/id") else {
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
    fn bucket_id_is_kintos() {
        // Computed with Kinto's formula (python hmac + uuid.UUID) for
        // user id "basicauth:abc" and an empty secret.
        assert_eq!(
            bucket_id("", "basicauth:abc"),
            "e3b079b4-8daf-bcef-7c22-101692dfc42c"
        );
    }
}
