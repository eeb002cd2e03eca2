//! The Kinto error catalogue.
//!
//! Every failure a client can see is a [`KintoError`]: a kind, a message and
//! optional details. The kind alone decides the HTTP status, Kinto's errno and
//! the gRPC code, in [`ErrorKind::spec`]: that table is the only place where
//! these numbers are chosen. Shards send errors to the gateway as a gRPC
//! status whose `details` bytes hold the JSON of the error, so nothing is
//! lost crossing the process boundary.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// 400 errno 107: every validation failure (body, querystring, headers, path).
    InvalidParameters,
    /// 401 errno 104: anonymous and not allowed.
    Unauthorized,
    /// 401 errno 999 "Cannot read accounts.": Kinto's answer to an anonymous
    /// `GET /accounts` (no challenge header, no message).
    AccountsUnreadable,
    /// 403 errno 121: authenticated and not allowed.
    Forbidden,
    /// 404 errno 110: the addressed object does not exist.
    ObjectNotFound,
    /// 404 errno 111: unknown URL, or a missing parent (collection).
    MissingResource,
    /// 404 errno 116: another API version prefix.
    VersionNotAvailable,
    /// 405 errno 115.
    MethodNotAllowed,
    /// 406 errno 107: `Accept` excludes JSON.
    NotAcceptable,
    /// 409 errno 122: a write conflicted; retry.
    Conflict,
    /// 410 errno 202: past the end-of-service date.
    ServiceDeprecated,
    /// 412 errno 114: `If-Match` / `If-None-Match` failed.
    PreconditionFailed,
    /// 413 errno 113: the body is larger than `max_body_bytes`.
    RequestTooLarge,
    /// 408 errno 107: the body did not arrive in time (`body_read_timeout_seconds`).
    RequestTimeout,
    /// 414 errno 113: the request target is longer than `max_url_bytes`.
    UriTooLong,
    /// 431 errno 113: more header bytes or headers than allowed.
    HeadersTooLarge,
    /// 415 errno 107: `Content-Type` is not JSON.
    UnsupportedMediaType,
    /// 429 errno 117: rate limited.
    TooManyRequests,
    /// 500 errno 999: a bug.
    Internal,
    /// 503 errno 201: storage or a shard is unavailable; retry.
    Unavailable,
    /// 503 errno 201 on the wire, but the gateway must refresh its shard map
    /// and retry: the shard does not own the bucket at that generation.
    WrongShard,
    /// 503 errno 201 on the wire, but the gateway retries it as it does
    /// `WrongShard`: the bucket's slot is frozen for a move (or its copy is
    /// not yet acquired), and will be served again, here or by its new owner.
    Frozen,
    /// 503 errno 201 on the wire, but the gateway retries it as it does
    /// `Frozen`: the operation never ran. Its shard was stopping and refused
    /// it before any effect, or the gateway could not connect to the shard
    /// (which a restarted shard answers again).
    NotRun,
    /// 304: not an error to Kinto, but it ends the request the same way.
    NotModified,
    /// 507 errno 121: over quota.
    InsufficientStorage,
}

/// How one kind of error shows on each wire.
pub struct ErrorSpec {
    pub http_status: u16,
    pub errno: u16,
    /// Kinto's `error` field: the HTTP reason phrase, or "Invalid parameters".
    pub error: &'static str,
    pub grpc: tonic::Code,
}

impl ErrorKind {
    pub fn spec(self) -> ErrorSpec {
        use tonic::Code as G;
        use ErrorKind::*;
        let (http_status, errno, error, grpc) = match self {
            InvalidParameters => (400, 107, "Invalid parameters", G::InvalidArgument),
            Unauthorized => (401, 104, "Unauthorized", G::Unauthenticated),
            AccountsUnreadable => (401, 999, "Cannot read accounts.", G::Unauthenticated),
            Forbidden => (403, 121, "Forbidden", G::PermissionDenied),
            ObjectNotFound => (404, 110, "Not Found", G::NotFound),
            MissingResource => (404, 111, "Not Found", G::NotFound),
            VersionNotAvailable => (404, 116, "Not Found", G::NotFound),
            MethodNotAllowed => (405, 115, "Method Not Allowed", G::Unimplemented),
            NotAcceptable => (406, 107, "Not Acceptable", G::InvalidArgument),
            Conflict => (409, 122, "Conflict", G::Aborted),
            ServiceDeprecated => (410, 202, "Gone", G::Unimplemented),
            PreconditionFailed => (412, 114, "Precondition Failed", G::FailedPrecondition),
            RequestTooLarge => (413, 113, "Request Entity Too Large", G::InvalidArgument),
            RequestTimeout => (408, 107, "Request Timeout", G::DeadlineExceeded),
            UriTooLong => (414, 113, "URI Too Long", G::InvalidArgument),
            HeadersTooLarge => (
                431,
                113,
                "Request Header Fields Too Large",
                G::InvalidArgument,
            ),
            // Cornice's 415 is one of its validation errors.
            UnsupportedMediaType => (415, 107, "Invalid parameters", G::InvalidArgument),
            TooManyRequests => (429, 117, "Too Many Requests", G::ResourceExhausted),
            Internal => (500, 999, "Internal Server Error", G::Internal),
            Unavailable => (503, 201, "Service Unavailable", G::Unavailable),
            WrongShard => (503, 201, "Service Unavailable", G::OutOfRange),
            Frozen => (503, 201, "Service Unavailable", G::Unavailable),
            NotRun => (503, 201, "Service Unavailable", G::Unavailable),
            NotModified => (304, 0, "Not Modified", G::FailedPrecondition),
            InsufficientStorage => (507, 121, "Insufficient Storage", G::ResourceExhausted),
        };
        ErrorSpec {
            http_status,
            errno,
            error,
            grpc,
        }
    }

    /// Kinto's default message for kinds that always say the same thing.
    fn default_message(self) -> Option<&'static str> {
        use ErrorKind::*;
        Some(match self {
            Unauthorized => "Please authenticate yourself to use this endpoint.",
            Forbidden => "This user cannot access this resource.",
            MissingResource => "The resource you are looking for could not be found.",
            VersionNotAvailable => "The requested API version is not available on this server.",
            MethodNotAllowed => "Method not allowed on this endpoint.",
            Conflict => "Integrity constraint violated, please retry.",
            ServiceDeprecated => {
                "The service you are trying to connect no longer exists at this location."
            }
            PreconditionFailed => "Resource was modified meanwhile",
            Internal => "A programmatic error occurred, developers have been informed.",
            Unavailable | WrongShard | Frozen | NotRun => {
                "Service temporary unavailable due to overloading or maintenance, please retry later."
            }
            _ => return None,
        })
    }
}

/// A failure as the client will see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KintoError {
    pub kind: ErrorKind,
    pub message: Option<String>,
    pub details: Option<Value>,
    /// The current timestamp of the target, for the ETag of 304 and 412 answers.
    pub timestamp: Option<u64>,
}

impl KintoError {
    pub fn new(kind: ErrorKind) -> Self {
        KintoError {
            kind,
            message: kind.default_message().map(str::to_owned),
            details: None,
            timestamp: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// A 400 errno 107 in Kinto's validation format: `details` is a list of
    /// `{location, name, description}` and the message names the first one.
    pub fn invalid(location: &str, name: Option<&str>, description: impl Into<String>) -> Self {
        let description = description.into();
        let message = match name {
            Some(n) if !description.contains(n) => format!("{n} in {location}: {description}"),
            Some(_) => description.clone(),
            None => format!("{location}: {description}"),
        };
        KintoError::new(ErrorKind::InvalidParameters)
            .with_message(message)
            .with_details(serde_json::json!([{
                "location": location,
                "name": name,
                "description": description,
            }]))
    }

    /// 404 errno 110 or 111 with Kinto's `{id, resource_name}` details. Kinto
    /// gives these no message (only its unknown-URL 404 has one).
    pub fn not_found(kind: ErrorKind, id: &str, resource_name: &str) -> Self {
        let mut e = KintoError::new(kind);
        e.message = None;
        e.with_details(serde_json::json!({"id": id, "resource_name": resource_name}))
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        // The client sees Kinto's generic text; the cause goes to the logs.
        let mut e = KintoError::new(ErrorKind::Internal);
        e.details = Some(Value::String(message.to_string()));
        e
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let mut e = KintoError::new(ErrorKind::Unavailable);
        e.details = Some(Value::String(cause.to_string()));
        e
    }

    /// Kinto's JSON error body.
    pub fn body(&self) -> Value {
        let spec = self.kind.spec();
        let mut body = serde_json::Map::new();
        body.insert("code".into(), spec.http_status.into());
        body.insert("errno".into(), spec.errno.into());
        body.insert("error".into(), spec.error.into());
        if let Some(m) = &self.message {
            body.insert("message".into(), m.clone().into());
        }
        match (&self.details, self.kind) {
            // Causes of 500/503 are for the logs, not for the client.
            (
                Some(_),
                ErrorKind::Internal
                | ErrorKind::Unavailable
                | ErrorKind::WrongShard
                | ErrorKind::Frozen
                | ErrorKind::NotRun,
            ) => {}
            (Some(d), _) => {
                body.insert("details".into(), d.clone());
            }
            (None, _) => {}
        }
        if self.kind == ErrorKind::Internal {
            body.insert(
                "info".into(),
                "https://github.com/Kinto/kinto/issues/".into(),
            );
        }
        Value::Object(body)
    }

    /// Encodes the error for the gateway: gRPC code from the catalogue, the
    /// whole error as JSON in the status details.
    pub fn to_status(&self) -> tonic::Status {
        let details = self.to_json();
        tonic::Status::with_details(
            self.kind.spec().grpc,
            self.message.clone().unwrap_or_default(),
            details.into(),
        )
    }

    /// The whole error as JSON: a failed status's details, or a failed
    /// operation's outcome in `ExecuteMany`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes [`KintoError::to_json`]; anything else is an internal error.
    pub fn from_json(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|e| KintoError::internal(format!("undecodable shard error: {e}")))
    }

    /// Decodes a status from a shard. A status without our details is a
    /// transport failure (shard down, timeout): the shard is unavailable.
    pub fn from_status(status: &tonic::Status) -> Self {
        match serde_json::from_slice::<KintoError>(status.details()) {
            Ok(e) => e,
            Err(_) => KintoError::unavailable(format!("shard call failed: {status}")),
        }
    }
}

impl std::fmt::Display for KintoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spec = self.kind.spec();
        write!(f, "{} errno {}", spec.http_status, spec.errno)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(d) = &self.details {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for KintoError {}

impl From<KintoError> for tonic::Status {
    fn from(e: KintoError) -> Self {
        e.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_keeps_everything() {
        let e = KintoError::new(ErrorKind::PreconditionFailed)
            .with_details(serde_json::json!({"existing": {"id": "a"}}))
            .with_timestamp(42);
        let back = KintoError::from_status(&e.to_status());
        assert_eq!(back, e);
        assert_eq!(e.to_status().code(), tonic::Code::FailedPrecondition);
    }

    #[test]
    fn foreign_status_is_unavailable() {
        let e = KintoError::from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.body()["errno"], 201);
        assert!(e.body().get("details").is_none());
    }

    #[test]
    fn validation_message_names_the_field() {
        let e = KintoError::invalid(
            "querystring",
            Some("_limit"),
            "-1 is less than minimum value 0",
        );
        assert_eq!(
            e.body()["message"],
            "_limit in querystring: -1 is less than minimum value 0"
        );
        let e = KintoError::invalid("path", None, "Invalid object id");
        assert_eq!(e.body()["message"], "path: Invalid object id");
    }

    #[test]
    fn object_not_found_has_no_message() {
        let e = KintoError::not_found(ErrorKind::ObjectNotFound, "r1", "record");
        let b = e.body();
        assert_eq!(b["code"], 404);
        assert_eq!(b["errno"], 110);
        assert!(b.get("message").is_none());
        assert_eq!(b["details"]["resource_name"], "record");
        let parent = KintoError::not_found(ErrorKind::MissingResource, "c", "collection").body();
        assert_eq!(parent["errno"], 111);
        assert!(parent.get("message").is_none());
    }
}
