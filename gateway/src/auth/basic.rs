//! The `basicauth` policy, and the parsing of Basic credentials that the
//! `account` policy shares.

use crate::digest::hmac_hex;
use base64::Engine;

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

pub(super) fn basic_user_id(header: &str, secret: &str) -> Option<String> {
    let (user, password) = basic_credentials(header)?;
    Some(format!(
        "basicauth:{}",
        hmac_hex(secret, &format!("{user}:{password}"))
    ))
}
