//! Kinto's accounts plugin at the gateway: passwords are bcrypt-hashed here,
//! before the write travels to the shard (so the shard, the single writer,
//! never spends 250 ms of CPU on a hash), and the plugin's body rules are
//! checked. Permissions and ownership are the shard's business.

use super::routes::ResourcePath;
use kinto_proto::pb::{self, Operation};
use kinto_proto::KintoError;
use serde_json::Value;

/// Kinto's bcrypt cost (`bcrypt.gensalt()`): `$2b$12$…`.
pub(crate) const BCRYPT_COST: u32 = 12;

/// For `POST /accounts`: the id is required, since it places the account.
pub fn posted_id(op: &Operation) -> Result<String, KintoError> {
    let data: Value = op
        .body_json
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    match data.get("id") {
        Some(Value::String(id)) if kinto_model::valid_id_for(kinto_model::Kind::Account, id) => {
            Ok(id.clone())
        }
        Some(_) => Err(KintoError::invalid("path", None, "Invalid object id")),
        None => Err(KintoError::invalid(
            "body",
            Some("data.id"),
            "data.id in body: Required",
        )),
    }
}

/// Replaces `data.password` by its bcrypt hash; PUT and POST must carry one.
pub async fn hash_password(method: pb::Method, op: &mut Operation) -> Result<(), KintoError> {
    if op.patch_kind == pb::PatchKind::JsonPatch as i32 {
        return Err(KintoError::invalid(
            "body",
            None,
            "JSON Patch is not supported on accounts",
        ));
    }
    let mut data: serde_json::Map<String, Value> = match op.body_json.as_deref() {
        Some(b) => serde_json::from_slice(b)
            .map_err(|_| KintoError::invalid("body", Some("data"), "Not a mapping"))?,
        None => serde_json::Map::new(),
    };
    let password = match data.get("password") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(_) => {
            return Err(KintoError::invalid(
                "body",
                Some("data.password"),
                "Not a non-empty string",
            ))
        }
        None if method == pb::Method::Patch => return Ok(()),
        None => {
            return Err(KintoError::invalid(
                "body",
                Some("data.password"),
                "Required",
            ))
        }
    };
    let hash = tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(KintoError::internal)?
        .map_err(KintoError::internal)?;
    data.insert("password".into(), Value::String(hash));
    op.body_json = Some(serde_json::to_vec(&data).map_err(KintoError::internal)?);
    Ok(())
}

/// Is this an accounts path while the plugin is off? Then it does not exist.
pub fn disabled(path: &ResourcePath, enabled: bool) -> bool {
    path.kind == pb::Kind::Account && !enabled
}
