//! A request and a response in Kinto's terms, independent of axum, so that
//! `/batch` can run its sub-requests through exactly the same code as
//! top-level requests.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;

/// `Last-Modified` of a timestamp in milliseconds. Memoised per second and
/// thread: answers within the same second share it, and formatting a date
/// cost as much as the rest of an answer's headers.
fn http_date(ms: u64) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let seconds = ms / 1000;
    let format = || {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        HeaderValue::from_str(&httpdate::fmt_http_date(when))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    };
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return format();
        };
        match &*last {
            Some((s, v)) if *s == seconds => v.clone(),
            _ => {
                let v = format();
                *last = Some((seconds, v.clone()));
                v
            }
        }
    })
}

#[derive(Debug, Clone)]
pub struct KRequest {
    pub method: Method,
    /// Percent-decoded path, e.g. `/v1/buckets/b`.
    pub path: String,
    /// Raw querystring, without `?`.
    pub query: String,
    /// Shared: a request is cloned per alias it resolves through, and a
    /// `/batch`'s sub-requests share one set.
    pub headers: std::sync::Arc<HeaderMap>,
    pub body: bytes::Bytes,
    /// The body already parsed: a `/batch` sub-request's, which is then not
    /// printed and parsed again (`body` is empty).
    pub json: Option<std::sync::Arc<Value>>,
}

impl KRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The decoded querystring pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A JSON response body.
#[derive(Debug, Clone)]
pub enum JsonBody {
    /// Built here.
    Value(Value),
    /// Already printed JSON (an object or list as a shard printed it, the
    /// answers of a `/batch`), sent as is: parsing it only to print it again
    /// was a fifth of a `/batch`'s work. Only this service's own output goes
    /// here, never a client's bytes.
    Printed(bytes::Bytes),
}

impl JsonBody {
    /// Appends the JSON text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            JsonBody::Value(v) => {
                // Writing a `Value` into a `Vec` cannot fail.
                let _ = serde_json::to_writer(&mut *out, v);
            }
            JsonBody::Printed(b) => out.extend_from_slice(b),
        }
    }

    pub fn into_bytes(self) -> bytes::Bytes {
        match self {
            JsonBody::Value(v) => serde_json::to_vec(&v).unwrap_or_default().into(),
            JsonBody::Printed(b) => b,
        }
    }
}

#[derive(Debug, Clone)]
pub struct KResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// JSON body; `None` for 304, HEAD and redirects.
    pub body: Option<JsonBody>,
    /// A non-JSON body (the admin UI's files), sent as is with its own
    /// `Content-Type`.
    pub raw: Option<bytes::Bytes>,
}

impl KResponse {
    pub fn json(status: u16, body: Value) -> Self {
        KResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: HeaderMap::new(),
            body: Some(JsonBody::Value(body)),
            raw: None,
        }
    }

    /// A JSON answer already printed (see [`JsonBody::Printed`]).
    pub fn printed(status: u16, json: Vec<u8>) -> Self {
        KResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: HeaderMap::new(),
            body: Some(JsonBody::Printed(json.into())),
            raw: None,
        }
    }

    /// The Kinto errno of an error answer (errors are always built here).
    pub fn errno(&self) -> Option<u64> {
        match &self.body {
            Some(JsonBody::Value(v)) => v.get("errno").and_then(Value::as_u64),
            _ => None,
        }
    }

    /// A non-JSON answer.
    pub fn raw(status: u16, content_type: &'static str, bytes: bytes::Bytes) -> Self {
        let mut r = KResponse::empty(status);
        r.raw = Some(bytes);
        r.set("content-type", content_type);
        r
    }

    pub fn empty(status: u16) -> Self {
        KResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: HeaderMap::new(),
            body: None,
            raw: None,
        }
    }

    /// Adds a header; values that are not valid header text are dropped.
    pub fn set(&mut self, name: &'static str, value: impl AsRef<str>) {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
    }

    /// Adds a constant header without copying or checking it again.
    pub fn set_static(&mut self, name: &'static str, value: &'static str) {
        self.headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }

    pub fn with(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        self.set(name, value);
        self
    }

    pub fn redirect(location: &str) -> Self {
        KResponse::empty(307).with("location", location)
    }

    /// Kinto's `cache_expires(seconds)`: `Cache-Control` and `Expires`.
    pub fn cache_for(mut self, seconds: u64) -> Self {
        self.set_cache_expires(i64::try_from(seconds).unwrap_or(i64::MAX));
        self
    }

    /// Kinto's 400 for a request it cannot decode (URL path, querystring):
    /// `error` is "Bad Request" and there are no details.
    pub fn bad_request(message: &str) -> Self {
        KResponse::json(
            400,
            serde_json::json!({
                "code": 400,
                "errno": 107,
                "error": "Bad Request",
                "message": message,
            }),
        )
    }

    /// Caching as webob's `cache_expires(seconds)`, which Kinto calls for a
    /// collection's `cache_expires`: 0 forbids caching (with an `Expires` of
    /// now), anything else is a `max-age` (negative included, as Kinto sends).
    pub fn set_cache_expires(&mut self, seconds: i64) {
        let now = std::time::SystemTime::now();
        // A collection may hold any integer: an `Expires` past what a date
        // can say is clamped to ten years away (the `max-age` stays as set).
        let span = std::time::Duration::from_secs(seconds.unsigned_abs().min(10 * 365 * 86_400));
        let when = if seconds >= 0 {
            now.checked_add(span)
        } else {
            now.checked_sub(span)
        }
        .unwrap_or(now);
        if seconds == 0 {
            self.set_static(
                "cache-control",
                "max-age=0, must-revalidate, no-cache, no-store",
            );
            self.set_static("pragma", "no-cache");
        } else {
            self.set("cache-control", format!("max-age={seconds}"));
        }
        self.set("expires", httpdate::fmt_http_date(when));
    }

    /// `ETag` and `Last-Modified` of a Kinto timestamp.
    pub fn set_timestamp(&mut self, ts: u64) {
        let mut etag = String::with_capacity(22);
        etag.push('"');
        etag.push_str(&ts.to_string());
        etag.push('"');
        self.set("etag", etag);
        self.headers
            .insert(HeaderName::from_static("last-modified"), http_date(ts));
    }

    /// Kinto's error response for `e`.
    pub fn error(e: &KintoError, retry_after: u64) -> Self {
        let status = e.kind.spec().http_status;
        let mut r = if e.kind == ErrorKind::NotModified {
            KResponse::empty(status)
        } else {
            KResponse::json(status, e.body())
        };
        if let Some(ts) = e.timestamp {
            r.set_timestamp(ts);
        }
        match e.kind {
            ErrorKind::Unauthorized => r.set("www-authenticate", "Basic realm=\"Realm\""),
            ErrorKind::Unavailable
            | ErrorKind::WrongShard
            | ErrorKind::Frozen
            | ErrorKind::NotRun
            | ErrorKind::Conflict => r.set("retry-after", retry_after.to_string()),
            _ => {}
        }
        if status >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::KResponse;

    #[test]
    fn timestamps_give_etag_and_last_modified() {
        let header = |r: &KResponse, name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The memo of the last second never answers for another second.
        for (ts, date) in [
            (1_795_906_643_565, "Sat, 28 Nov 2026 22:57:23 GMT"),
            (1_795_906_643_999, "Sat, 28 Nov 2026 22:57:23 GMT"),
            (1_795_906_644_000, "Sat, 28 Nov 2026 22:57:24 GMT"),
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        ] {
            let mut r = KResponse::empty(200);
            r.set_timestamp(ts);
            assert_eq!(header(&r, "etag"), Some(format!("\"{ts}\"")));
            assert_eq!(header(&r, "last-modified").as_deref(), Some(date));
        }
    }
}
