//! Limits on the size of a request head, checked before anything else
//! reads it: the request target's length and the headers' count and bytes.
//! (The body's size is `max_body_bytes`, its arrival time
//! `body_read_timeout_seconds`, both in the entry point; JSON nesting is
//! bounded by the parser's recursion limit.)

use super::settings::AdmissionSettings;
use axum::http::{HeaderMap, Uri};
use kinto_proto::{ErrorKind, KintoError};

/// The first limit of the request head that `uri` and `headers` exceed.
pub fn check_head(
    settings: &AdmissionSettings,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), KintoError> {
    let target = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > settings.max_url_bytes {
        super::refused("url_too_long");
        return Err(KintoError::new(ErrorKind::UriTooLong).with_message(format!(
            "The request target is longer than {} bytes",
            settings.max_url_bytes
        )));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > settings.max_headers || bytes > settings.max_header_bytes {
        super::refused("headers_too_large");
        return Err(
            KintoError::new(ErrorKind::HeadersTooLarge).with_message(format!(
                "The request has more than {} headers or {} bytes of headers",
                settings.max_headers, settings.max_header_bytes
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AdmissionSettings {
        serde_json::from_value(serde_json::json!({
            "max_url_bytes": 20, "max_headers": 2, "max_header_bytes": 30
        }))
        .expect("settings")
    }

    #[test]
    fn each_bound_has_its_status() {
        let s = settings();
        let mut h = HeaderMap::new();
        h.insert("a", "1".parse().expect("value"));
        let short: Uri = "/v1/buckets".parse().expect("uri");
        assert!(check_head(&s, &short, &h).is_ok());
        let long: Uri = "/v1/buckets?x=0123456789".parse().expect("uri");
        let e = check_head(&s, &long, &h).expect_err("long");
        assert_eq!(e.kind.spec().http_status, 414);
        h.insert("b", "x".repeat(40).parse().expect("value"));
        let e = check_head(&s, &short, &h).expect_err("big");
        assert_eq!(e.kind.spec().http_status, 431);
    }
}
