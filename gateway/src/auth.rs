//! Who is calling, by Kinto's `multiauth.policies` in their order: the first
//! policy that recognises the credentials wins.
//!
//! * `account`: Basic `user:password` of an account of the accounts plugin,
//!   checked against its bcrypt hash, fetched from the account's shard on
//!   every request (so a changed password stops working at once on every
//!   gateway). Only the bcrypt verdict is cached, keyed by user, stored hash
//!   and password, so a new password or a new account gets a new key.
//! * `basicauth`: any well-formed Basic credentials authenticate, as in
//!   Kinto; the id is `basicauth:` + hex HMAC-SHA256 of `user:password` keyed
//!   with `userid_hmac_secret`, so a wrong password is simply another user.
//!
//! Unparseable credentials leave the request anonymous.
//!
//! Account existence does not show in response times: a name without an
//! account is checked against a dummy hash of Kinto's cost, and negative
//! verdicts are cached like positive ones (for accounts and other names
//! alike), so a first try and a repeated try each cost the same whether the
//! account exists or not. The price: a first request with new `basicauth`
//! credentials pays one bcrypt.
//!
//! A dead accounts shard must not lock out the users who are not accounts
//! (with `account basicauth`, every Basic request asks the shard owning
//! `account/<name>`). So:
//! * names that cannot be account ids are never looked up;
//! * each gateway remembers the names it has seen to be accounts
//!   (`account_names_ttl_seconds`);
//! * when the lookup fails because the shard is unavailable, a remembered
//!   account still gets 503 (any other answer would run the request as
//!   another identity), and any other name is taken as not an account, as
//!   Kinto does for such a name: the next policy decides. Each such fallback
//!   is logged and counted (`kinto_account_lookup_fallback_total`). An
//!   account this gateway has not seen lately is then treated as a wrong
//!   password would be, and a 503 shows that a name is a known account.

use crate::app::App;
use crate::digest::hmac_hex;
use base64::Engine;
use kinto_model::{valid_id_for, Kind};
use kinto_proto::limits::MAX_ID_BYTES;
use kinto_proto::pb::Caller;
use kinto_proto::{ErrorKind, KintoError};

pub const EVERYONE: &str = "system.Everyone";
pub const AUTHENTICATED: &str = "system.Authenticated";

/// The caller of a request with this `Authorization` header, basic auth only
/// (the policies themselves are in [`identify`]).
#[cfg(test)]
fn authenticate(authorization: Option<&str>, secret: &str) -> Caller {
    match authorization.and_then(|h| basic_user_id(h, secret)) {
        Some(user_id) => user(user_id),
        None => anonymous(),
    }
}

fn user(user_id: String) -> Caller {
    Caller {
        principals: vec![user_id.clone(), EVERYONE.into(), AUTHENTICATED.into()],
        user_id,
    }
}

/// The caller by the configured policies. Fails only when an account's
/// shard cannot answer: guessing would run the request as someone else.
pub async fn identify(app: &App, authorization: Option<&str>) -> Result<Caller, KintoError> {
    let cfg = &app.config;
    let Some(header) = authorization else {
        return Ok(anonymous());
    };
    for policy in &cfg.multiauth_policies {
        match policy.as_str() {
            "account" => {
                if let Some((name, password)) = basic_credentials(header) {
                    if verify_account(app, &name, &password).await? {
                        return Ok(user(format!("account:{name}")));
                    }
                }
            }
            "basicauth" => {
                if let Some(id) = basic_user_id(header, &cfg.userid_hmac_secret) {
                    return Ok(user(id));
                }
            }
            _ => {}
        }
    }
    Ok(anonymous())
}

/// A bcrypt hash of Kinto's cost (`bcrypt.gensalt()`: 12) of a password no
/// account has: what a name without an account is checked against, so that
/// it costs what a wrong password of an existing account costs.
const DUMMY_HASH: &str = "$2b$12$eqtM2AIOe.5rnPPEQXJmWe.AhqRgir7RbO0SbmrgqGJB7g7/Po4wW";

/// Could `name` be an account id? Others are not accounts, whatever a shard
/// says, so they are not looked up (nor hashed: the rule is public).
pub fn may_be_account(name: &str) -> bool {
    name.len() <= MAX_ID_BYTES && valid_id_for(Kind::Account, name)
}

/// Is `name:password` an account's credentials? `Err` only when the
/// accounts shard is unavailable for a name known to be an account, or
/// fails otherwise.
async fn verify_account(app: &App, name: &str, password: &str) -> Result<bool, KintoError> {
    if !may_be_account(name) {
        return Ok(false);
    }
    let hash = match app.shards.account_hash(name).await {
        Ok(hash) => hash,
        Err(e) if e.kind == ErrorKind::Unavailable && !app.known_accounts.contains_key(name) => {
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

/// `(user, password)` of well-formed Basic credentials with a user name.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_owned(), password.to_owned()))
}

pub fn anonymous() -> Caller {
    Caller {
        user_id: String::new(),
        principals: vec![EVERYONE.into()],
    }
}

fn basic_user_id(header: &str, secret: &str) -> Option<String> {
    let (user, password) = basic_credentials(header)?;
    Some(format!(
        "basicauth:{}",
        hmac_hex(secret, &format!("{user}:{password}"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kintos_test_user() {
        // Kinto's tests/support.py: mat:secret with an empty secret.
        let c = authenticate(Some("Basic bWF0OnNlY3JldA=="), "");
        assert_eq!(
            c.user_id,
            "basicauth:8a931a10fc88ab2f6d1cc02a07d3a81b5d4768f6f13e85c5d8d4180419acb1b4"
        );
        assert!(c.principals.contains(&AUTHENTICATED.to_string()));
    }

    #[test]
    fn only_possible_account_ids_are_looked_up() {
        assert!(may_be_account("alice"));
        assert!(may_be_account("alice.b-c_d@example.com"));
        assert!(may_be_account("al+ice@example.com"));
        assert!(may_be_account(&"a".repeat(MAX_ID_BYTES)));
        assert!(!may_be_account(&"a".repeat(MAX_ID_BYTES + 1)));
        assert!(!may_be_account("-alice"));
        assert!(!may_be_account("al ice"));
        assert!(!may_be_account("al\nice"));
        assert!(!may_be_account("al/ice"));
        assert!(!may_be_account("élise"));
    }

    #[test]
    fn dummy_hash_has_kintos_cost() {
        let parts = DUMMY_HASH.parse::<bcrypt::HashParts>();
        assert!(matches!(parts, Ok(p) if p.get_cost() == crate::http::accounts::BCRYPT_COST));
        assert!(!bcrypt::verify("", DUMMY_HASH).unwrap_or(true));
    }

    #[test]
    fn empty_user_or_garbage_is_anonymous() {
        assert!(authenticate(Some("Basic OnBhc3M="), "").user_id.is_empty());
        assert!(authenticate(Some("Basic !!!"), "").user_id.is_empty());
        assert!(authenticate(Some("Bearer x"), "").user_id.is_empty());
        assert!(authenticate(None, "").user_id.is_empty());
    }

    /// A gateway with `account basicauth` whose only shard is down.
    fn app_with_dead_shard() -> std::sync::Arc<App> {
        let raw = kinto_runtime::settings::RawSettings::default().with_env([
            (
                "KINTO_INCLUDES".to_string(),
                "kinto.plugins.accounts".to_string(),
            ),
            (
                "KINTO_MULTIAUTH_POLICIES".to_string(),
                "account basicauth".to_string(),
            ),
        ]);
        let cfg = crate::config::GatewayConfig::from_raw(&raw).expect("config");
        // A port nothing listens on: connections are refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let shards = crate::routing::ShardMap::connect(&[format!("http://127.0.0.1:{port}")])
            .expect("shard map");
        App::new(cfg, shards)
    }

    fn basic(user: &str, password: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    }

    #[tokio::test]
    async fn dead_accounts_shard_fails_only_known_accounts() {
        let app = app_with_dead_shard();
        for (name, password) in [("bob", "pw"), ("not an account", "pw")] {
            let caller = identify(&app, Some(&basic(name, password))).await;
            let expected = basic_user_id(&basic(name, password), "");
            assert_eq!(caller.map(|c| c.user_id).ok(), expected, "{name}");
        }
        app.known_accounts.insert("bob".into(), ());
        let err = identify(&app, Some(&basic("bob", "pw"))).await.err();
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Unavailable));
    }
}
