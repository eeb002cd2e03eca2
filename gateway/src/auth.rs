//! Who is calling, by Kinto's `multiauth.policies` in their order: the first
//! policy that recognises the credentials wins.
//!
//! * `account`: Basic `user:password` of an account of the accounts plugin,
//!   checked against its bcrypt hash, fetched from the account's shard on
//!   every request (so a changed password stops working at once on every
//!   gateway); only the bcrypt verdict is cached, keyed by user, stored hash
//!   and password.
//! * `basicauth`: any well-formed Basic credentials authenticate, as in
//!   Kinto; the id is `basicauth:` + hex HMAC-SHA256 of `user:password` keyed
//!   with `userid_hmac_secret`, so a wrong password is simply another user.
//!
//! Unparseable credentials leave the request anonymous.

use crate::app::App;
use base64::Engine;
use hmac::{Hmac, Mac};
use kinto_proto::pb::Caller;
use kinto_proto::KintoError;
use sha2::Sha256;

pub const EVERYONE: &str = "system.Everyone";
pub const AUTHENTICATED: &str = "system.Authenticated";

/// `hex(HMAC-SHA256(key, message))`.
pub fn hmac_hex(key: &str, message: &str) -> String {
    thread_local! {
        /// HMAC states already keyed with the (few, configured) secrets:
        /// keying costs two of the four SHA-256 blocks of a short message,
        /// and every request derives its user id and default bucket.
        static KEYED: std::cell::RefCell<Vec<(String, Hmac<Sha256>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    // HMAC accepts keys of any length, so keying cannot fail.
    let fresh = || Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok();
    let keyed = KEYED.with(|k| {
        let Ok(mut k) = k.try_borrow_mut() else {
            return fresh();
        };
        if let Some((_, mac)) = k.iter().find(|(s, _)| s == key) {
            return Some(mac.clone());
        }
        let mac = fresh()?;
        if k.len() < 4 {
            k.push((key.to_owned(), mac.clone()));
        }
        Some(mac)
    });
    let Some(mut mac) = keyed else {
        return String::new();
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

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

async fn verify_account(app: &App, name: &str, password: &str) -> Result<bool, KintoError> {
    let hash = app.shards.account_hash(name).await?;
    if hash.is_empty() {
        return Ok(false);
    }
    let key = hmac_hex(
        &app.config.userid_hmac_secret,
        &format!("accounts:{name}\n{hash}\n{password}"),
    );
    if app.account_cache.get(&key).is_some() {
        crate::metrics::account_cache(true);
        return Ok(true);
    }
    crate::metrics::account_cache(false);
    let (p, h) = (password.to_owned(), hash.clone());
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(p, &h).unwrap_or(false))
        .await
        .map_err(KintoError::internal)?;
    if ok {
        app.account_cache.insert(key, ());
    }
    Ok(ok)
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
    fn empty_user_or_garbage_is_anonymous() {
        assert!(authenticate(Some("Basic OnBhc3M="), "").user_id.is_empty());
        assert!(authenticate(Some("Basic !!!"), "").user_id.is_empty());
        assert!(authenticate(Some("Bearer x"), "").user_id.is_empty());
        assert!(authenticate(None, "").user_id.is_empty());
    }
}
