//! The keyed digest shared by authentication (user ids, the account cache)
//! and the default bucket (its id): below both, so neither imports the other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
