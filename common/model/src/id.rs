//! Kinto's id rules, and the ids the service makes up for a POST without one.

use crate::Kind;
use kinto_proto::limits::MAX_ID_BYTES;
use kinto_proto::KintoError;

/// Kinto's id rule for buckets, groups, collections and records, plus a
/// bound Kinto lacks: at most [`MAX_ID_BYTES`] bytes
/// (`kinto_proto::limits`), since storage engines panic on keys of 64 KiB
/// or more and an object's key holds up to three ids.
#[inline]
pub fn valid_id(id: &str) -> bool {
    if id.len() > MAX_ID_BYTES {
        return false;
    }
    let mut chars = id.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Account ids may also be e-mail addresses: Kinto's account id rule is
/// `^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$`.
/// Bounded to [`MAX_ID_BYTES`] like every id (see [`valid_id`]).
#[inline]
pub fn valid_id_for(kind: Kind, id: &str) -> bool {
    if kind != Kind::Account {
        return valid_id(id);
    }
    id.len() <= MAX_ID_BYTES
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+'))
}

/// 400 errno 107 for an id that breaks the rule.
pub fn invalid_id() -> KintoError {
    KintoError::invalid("path", None, "Invalid object id")
}

/// An id for a POST without one: UUID4 for records, Kinto's 8-character
/// names for the containers.
pub fn generate_id(kind: Kind) -> String {
    use rand::Rng;
    if kind == Kind::Record {
        return uuid::Uuid::new_v4().to_string();
    }
    const FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(8);
    s.push(FIRST[rng.random_range(0..FIRST.len())] as char);
    for _ in 0..7 {
        s.push(REST[rng.random_range(0..REST.len())] as char);
    }
    s
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_kintos_rule() {
        assert!(valid_id("a"));
        assert!(valid_id("A-b_9"));
        assert!(!valid_id(""));
        assert!(!valid_id("-a"));
        assert!(!valid_id("a.b"));
        assert!(!valid_id("é"));
        for kind in [Kind::Bucket, Kind::Record] {
            assert!(valid_id(&generate_id(kind)));
        }
    }

    #[test]
    fn account_ids_follow_kintos_rule() {
        assert!(valid_id_for(Kind::Account, "al+ice.b-c_d@example.com"));
        assert!(!valid_id_for(Kind::Record, "al+ice"));
        for bad in ["+a", ".a", "@a", "a~b", "a b", "a/b", ""] {
            assert!(!valid_id_for(Kind::Account, bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_bounded_in_length() {
        let longest = "a".repeat(MAX_ID_BYTES);
        let too_long = "a".repeat(MAX_ID_BYTES + 1);
        assert!(valid_id(&longest));
        assert!(!valid_id(&too_long));
        for kind in [Kind::Bucket, Kind::Record, Kind::Account] {
            assert!(valid_id_for(kind, &longest), "{kind:?}");
            assert!(!valid_id_for(kind, &too_long), "{kind:?}");
        }
    }
}
