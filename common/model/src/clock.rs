//! Kinto timestamps: milliseconds since the epoch, strictly increasing per
//! list `(parent, resource)`. Bursts slide into the future rather than
//! repeat a value, so a `_since` poller can never miss a change.

use std::time::{SystemTime, UNIX_EPOCH};

#[inline]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The timestamp of a write into a list whose timestamp is `list`, and the
/// list's new timestamp. `client` is a `last_modified` the client sent and
/// the domain kept (Kinto docs §5.4): equal to the list's → bumped by one;
/// newer → used as is and becomes the list's; older → used as is, and the
/// list's timestamp does not move (Kinto API 1.18).
#[inline]
pub fn stamp(list: u64, client: Option<u64>) -> (u64, u64) {
    match client {
        Some(c) if c == list => (list + 1, list + 1),
        Some(c) if c > list => (c, c),
        Some(c) => (c, list),
        None => {
            let t = now_ms().max(list + 1);
            (t, t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_stamps_strictly_increase() {
        let future = now_ms() + 60_000;
        assert_eq!(stamp(future, None), (future + 1, future + 1));
        let (t, l) = stamp(0, None);
        assert_eq!(t, l);
        assert!(t > 0);
    }

    #[test]
    fn client_stamps_follow_kinto() {
        assert_eq!(stamp(100, Some(100)), (101, 101));
        assert_eq!(stamp(100, Some(150)), (150, 150));
        assert_eq!(stamp(100, Some(50)), (50, 100));
    }
}
