//! The `account` policy: Basic credentials of an account of the accounts
//! plugin (see the module documentation of `auth`).

use crate::app::App;
use crate::digest::hmac_hex;
use kinto_model::{valid_id_for, Kind};
use kinto_proto::limits::MAX_ID_BYTES;
use kinto_proto::{ErrorKind, KintoError};

/// A bcrypt hash of Kinto's cost (`bcrypt.gensalt()`: 12) of a password no
/// account has: what a name without an account is checked against, so that
/// it costs what a wrong password of an existing account costs.
pub(super) const DUMMY_HASH: &str = "$2b$12$eqtM2AIOe.5rnPPEQXJmWe.AhqRgir7RbO0SbmrgqGJB7g7/Po4wW";

/// Could `name` be an account id? Others are not accounts, whatever a shard
/// says, so they are not looked up (nor hashed: the rule is public).
pub fn may_be_account(name: &str) -> bool {
    name.len() <= MAX_ID_BYTES && valid_id_for(Kind::Account, name)
}

/// Is `name:password` an account's credentials? `Err` only when the
/// accounts shard is unavailable for a name known to be an account, or
/// fails otherwise.
pub(super) async fn verify_account(
    app: &App,
    name: &str,
    password: &str,
) -> Result<bool, KintoError> {
    if !may_be_account(name) {
        return Ok(false);
    }
    let known = app.known_accounts.contains_key(name);
    let hash = match app.shards.account_hash(name, known).await {
        Ok(hash) => hash,
        Err(e) if e.kind == ErrorKind::Unavailable && !known => {
            // No user or account name in the logs.
            let shard = app
                .shards
                .shard_of_key(kinto_placement::PlacementKey::Account(name));
            tracing::warn!(
                shard,
                error = %e,
                "accounts shard unavailable: Basic credentials of a name not known \
                 as an account go to the next policy"
            );
            crate::metrics::account_lookup_fallback();
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if hash.is_empty() {
        app.known_accounts.invalidate(name);
    } else {
        app.known_accounts.insert(name.to_owned(), ());
    }
    // A name has no newline (`may_be_account`) and a stored hash is bcrypt's.
    let key = hmac_hex(
        &app.config.userid_hmac_secret,
        &format!("accounts:{name}\n{hash}\n{password}"),
    );
    if let Some(verdict) = app.account_cache.get(&key) {
        crate::metrics::account_cache(true);
        return Ok(verdict);
    }
    crate::metrics::account_cache(false);
    let exists = !hash.is_empty();
    let against = if exists { hash } else { DUMMY_HASH.to_owned() };
    let p = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(p, &against).unwrap_or(false))
        .await
        .map_err(KintoError::internal)?;
    let verdict = exists && matches;
    app.account_cache.insert(key, verdict);
    Ok(verdict)
}
