//! A request and a response in Kinto's terms, independent of axum, so that
//! `/batch` can run its sub-requests through exactly the same code as
//! top-level requests.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct KRequest {
    pub method: Method,
    /// Percent-decoded path, e.g. `/v1/buckets/b`.
    pub path: String,
    /// Raw querystring, without `?`.
    pub query: String,
    pub headers: HeaderMap,
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

#[derive(Debug, Clone)]
pub struct KResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// JSON body; `None` for 304, HEAD and redirects.
    pub body: Option<Value>,
    /// A non-JSON body (the admin UI's files), sent as is with its own
    /// `Content-Type`.
    pub raw: Option<bytes::Bytes>,
}

impl KResponse {
    pub fn json(status: u16, body: Value) -> Self {
        KResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: HeaderMap::new(),
            body: Some(body),
            raw: None,
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

    pub fn with(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        self.set(name, value);
        self
    }

    pub fn redirect(location: &str) -> Self {
        KResponse::empty(307).with("location", location)
    }

    /// `ETag` and `Last-Modified` of a Kinto timestamp.
    pub fn set_timestamp(&mut self, ts: u64) {
        self.set("etag", format!("\"{ts}\""));
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ts);
        self.set("last-modified", httpdate::fmt_http_date(when));
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
            ErrorKind::Unavailable | ErrorKind::WrongShard | ErrorKind::Conflict => {
                r.set("retry-after", retry_after.to_string())
            }
            _ => {}
        }
        if status >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        r
    }
}
