//! Who is calling: Kinto's basic auth (`basicauth:` + hex HMAC-SHA256 of
//! `user:password` keyed with `userid_hmac_secret`).
//!
//! Any well-formed Basic credentials authenticate, as in Kinto; the id is
//! derived, so a wrong password is simply another user. Unparseable
//! credentials leave the request anonymous.

use base64::Engine;
use hmac::{Hmac, Mac};
use kinto_proto::pb::Caller;
use sha2::Sha256;

pub const EVERYONE: &str = "system.Everyone";
pub const AUTHENTICATED: &str = "system.Authenticated";

/// `hex(HMAC-SHA256(key, message))`.
pub fn hmac_hex(key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The caller of a request with this `Authorization` header.
pub fn authenticate(authorization: Option<&str>, secret: &str) -> Caller {
    match authorization.and_then(|h| basic_user_id(h, secret)) {
        Some(user_id) => Caller {
            principals: vec![user_id.clone(), EVERYONE.into(), AUTHENTICATED.into()],
            user_id,
        },
        None => anonymous(),
    }
}

pub fn anonymous() -> Caller {
    Caller {
        user_id: String::new(),
        principals: vec![EVERYONE.into()],
    }
}

fn basic_user_id(header: &str, secret: &str) -> Option<String> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, _password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(format!("basicauth:{}", hmac_hex(secret, &decoded)))
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
