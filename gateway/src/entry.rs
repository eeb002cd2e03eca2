//! The axum entry point: one span and one log line per request around
//! Kinto's dispatcher ([`crate::http::handle`]).

use crate::admission;
use crate::app::App;
use crate::http::message::{KRequest, KResponse};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// The axum router: every path goes to Kinto's own dispatcher.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(app)
}

/// One span per request (the root of its trace) and one log line when it
/// ends: method, endpoint kind, status, errno, duration; no user id, no
/// bucket id, so logs carry no personal data.
async fn entry(State(app): State<Arc<App>>, request: Request<Body>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = crate::http::routes::label_of(request.uri().path());
    let span = tracing::info_span!(
        "request",
        http.method = %method,
        http.route = route,
        http.status_code = tracing::field::Empty,
        kinto.errno = tracing::field::Empty,
    );
    let (mut resp, backoff) = crate::admission::hint::scope(entry_inner(app, request, route))
        .instrument(span.clone())
        .await;
    if let Some(seconds) = backoff {
        if !resp.headers.contains_key("backoff") {
            resp.set("backoff", seconds.to_string());
        }
    }
    let status = resp.status.as_u16();
    let errno = resp.errno();
    span.record("http.status_code", i64::from(status));
    if let Some(e) = errno {
        span.record("kinto.errno", e as i64);
    }
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::request(route, &method, status, errno, seconds);
    tracing::info!(
        target: "kinto::request",
        parent: &span,
        method = %method,
        route,
        status,
        errno,
        duration_ms = seconds * 1000.0,
        "request"
    );
    into_http(resp)
}

/// Endpoints for load balancers and operators, never rate limited.
const UNLIMITED_ROUTES: [&str; 4] = ["heartbeat", "lbheartbeat", "version", "metrics"];

async fn entry_inner(app: Arc<App>, request: Request<Body>, route: &str) -> KResponse {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let retry_after = app.config.retry_after_seconds;
    let early =
        match admission::requests::check_head(&app.config.admission, &parts.uri, &parts.headers) {
            Err(e) => Some(KResponse::error(&e, retry_after)),
            Ok(()) if UNLIMITED_ROUTES.contains(&route) => None,
            Ok(()) => match app.admission.at_entry(peer, &parts.headers) {
                Ok(()) => None,
                Err(rejection) => Some(app.admission.refuse(rejection).await),
            },
        };
    if let Some(mut resp) = early {
        // Refused unread: the connection cannot carry another request
        // after a body that was never read, so the client must not reuse it.
        if parts.version <= axum::http::Version::HTTP_11 {
            resp.set_static("connection", "close");
        }
        return resp;
    }
    let limit = app.config.max_body_bytes as usize;
    let raw_path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let body_timeout = Duration::from_secs(app.config.admission.body_read_timeout_seconds.max(1));
    let body = tokio::time::timeout(body_timeout, axum::body::to_bytes(body, limit)).await;
    let resp = match body {
        Err(_) => {
            admission::refused("body_timeout");
            KResponse::error(
                &kinto_proto::KintoError::new(kinto_proto::ErrorKind::RequestTimeout).with_message(
                    format!(
                        "The request body did not arrive within {} seconds",
                        body_timeout.as_secs()
                    ),
                ),
                retry_after,
            )
        }
        Ok(Err(_)) => {
            admission::refused("body_too_large");
            KResponse::error(
                &kinto_proto::KintoError::new(kinto_proto::ErrorKind::RequestTooLarge)
                    .with_message(format!("Request body is larger than {limit} bytes")),
                app.config.retry_after_seconds,
            )
        }
        Ok(Ok(bytes)) => match percent_encoding::percent_decode_str(&raw_path).decode_utf8() {
            Err(_) => KResponse::bad_request("Invalid URL path."),
            Ok(_)
                if percent_encoding::percent_decode_str(&query)
                    .decode_utf8()
                    .is_err() =>
            {
                KResponse::bad_request(&format!(
                    "A request with an incorrect encoding in the querystring was\
                     received. Please make sure your requests are encoded in UTF-8: {query}"
                ))
            }
            Ok(path) => {
                let req = KRequest {
                    method: parts.method,
                    path: path.into_owned(),
                    query,
                    headers: Arc::new(parts.headers),
                    body: bytes,
                    json: None,
                };
                let timeout = Duration::from_secs(app.config.request_timeout_seconds.max(1));
                // Boxed: the dispatcher's future is large (every endpoint's
                // states), and each wrapper around it (deadline, backoff
                // scope, span, axum's own box) would otherwise copy it whole
                // when it is built; see docs/benchmarks.md.
                let work = Box::pin(crate::http::handle(&app, req));
                match crate::deadline::within(timeout, work).await {
                    Some(resp) => resp,
                    None => KResponse::error(
                        &kinto_proto::KintoError::unavailable("request deadline passed")
                            .with_message(format!(
                                "The request did not finish within {} seconds.",
                                timeout.as_secs()
                            )),
                        app.config.retry_after_seconds,
                    ),
                }
            }
        },
    };
    resp
}

/// Serialises a [`KResponse`].
pub fn into_http(r: KResponse) -> Response<Body> {
    let json = r.body.is_some();
    let body = match (r.body, r.raw) {
        (Some(json), _) => Body::from(json.into_bytes()),
        (None, Some(bytes)) => Body::from(bytes),
        (None, None) => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = r.status;
    *resp.headers_mut() = r.headers;
    if json {
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
    }
    resp
}
