//! Who is calling, by Kinto's `multiauth.policies` in their order: the first
//! policy that recognises the credentials wins. One file per policy:
//! `account.rs`, `basic.rs`, `oidc.rs` (each OpenID Connect provider),
//! `fxa.rs` (Firefox Accounts); the token policies share `token_cache.rs`,
//! `jwt.rs`/`jwks.rs` and `provider.rs`, and `apps.rs` scopes users per app.
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

mod account;
mod apps;
mod basic;
mod fxa;
mod jwks;
mod jwt;
mod oidc;
mod provider;
mod scope;
mod token;
mod token_cache;

pub use account::may_be_account;
use account::verify_account;
pub use basic::basic_credentials;
use basic::basic_user_id;
pub use oidc::Oidc;
pub use token::{capabilities, Tokens};

use crate::app::App;
use kinto_proto::pb::Caller;
use kinto_proto::KintoError;

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

/// Who a request runs as, and for which app (Test Pilot-style per-app
/// users, `apps.rs`): what per-app limits key on.
#[derive(Debug, Clone)]
pub struct Identity {
    pub caller: Caller,
    /// The app of the OAuth client the token was issued to, when the
    /// deployment maps clients to apps.
    pub app: Option<String>,
}

/// The caller by the configured policies. Fails only when an account's
/// shard or a token's provider cannot answer: guessing would run the
/// request as someone else, or as no one.
pub async fn identify(app: &App, authorization: Option<&str>) -> Result<Caller, KintoError> {
    identify_with_app(app, authorization)
        .await
        .map(|i| i.caller)
}

/// [`identify`], with the caller's app.
pub async fn identify_with_app(
    app: &App,
    authorization: Option<&str>,
) -> Result<Identity, KintoError> {
    let cfg = &app.config;
    let nobody = || Identity {
        caller: anonymous(),
        app: None,
    };
    let Some(header) = authorization else {
        return Ok(nobody());
    };
    let bearer = token::bearer(header);
    for policy in &cfg.multiauth_policies {
        let found = match policy.as_str() {
            "account" => match basic_credentials(header) {
                Some((name, password)) if verify_account(app, &name, &password).await? => {
                    Some((format!("account:{name}"), None))
                }
                _ => None,
            },
            "basicauth" => basic_user_id(header, &cfg.userid_hmac_secret).map(|id| (id, None)),
            name => match bearer {
                Some(t) => app.identity.verify(name, t).await?,
                None => None,
            },
        };
        if let Some((user_id, app_name)) = found {
            return Ok(Identity {
                caller: user(user_id),
                app: app_name,
            });
        }
    }
    Ok(nobody())
}

pub fn anonymous() -> Caller {
    Caller {
        user_id: String::new(),
        principals: vec![EVERYONE.into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use account::DUMMY_HASH;
    use base64::Engine;
    use kinto_proto::limits::MAX_ID_BYTES;
    use kinto_proto::ErrorKind;

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
        App::new(cfg, shards).expect("app")
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
