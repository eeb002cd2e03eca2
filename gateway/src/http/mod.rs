//! Kinto's HTTP protocol, independent of axum: one [`handle`] function from
//! a [`message::KRequest`] to a [`message::KResponse`], used for top-level
//! requests and for every `/batch` sub-request alike.

pub(crate) mod accounts;
mod admin;
mod batch;
mod body;
mod cors;
pub(crate) mod default_bucket;
#[cfg(test)]
mod fuzz_support;
mod headers;
mod memo;
pub mod message;
mod openapi;
mod openid;
mod openid_callback;
mod permissions;
mod plugin_hint;
mod querystring;
mod resources;
pub mod routes;
mod snapshot;
mod utility;

use crate::app::App;
use axum::http::{Method, StatusCode};
use kinto_proto::pb::Kind;
use kinto_proto::{ErrorKind, KintoError};
use message::{KRequest, KResponse};
use routes::Route;

/// The whole request pipeline, with Kinto's cross-cutting headers.
pub async fn handle(app: &App, req: KRequest) -> KResponse {
    let route = route_of(&req);
    let result = match plan(app, &req, route.as_ref(), None).await {
        Ok(Planned::Answer(resp)) => Ok(resp),
        Ok(Planned::Operation(op)) => op.run(app).await,
        // Only `/batch` defers.
        Ok(Planned::Deferred) => Err(KintoError::internal("deferred outside a batch")),
        Err(e) => Err(e),
    };
    finish(app, &req, route.as_ref(), result)
}

/// The endpoint of a `/v1` path, if there is one.
fn route_of(req: &KRequest) -> Option<Route> {
    versioned(&req.path)
        .filter(|(version, _)| *version == "v1")
        .and_then(|(_, rest)| routes::parse(rest))
}

/// How far the pipeline got before any shard was called.
enum Planned {
    /// Answered without a shard operation (or with several, already run).
    Answer(KResponse),
    /// One shard operation to send.
    Operation(resources::Pending),
    /// `/batch` only: not a bucket, group, collection or record; run it
    /// whole, in its turn, with [`handle`].
    Deferred,
}

/// The pipeline up to the shard call: end of service, then [`dispatch`].
/// A `/batch` passes its memo, and gets only resource requests planned.
async fn plan(
    app: &App,
    req: &KRequest,
    route: Option<&Route>,
    memo: Option<&memo::Memo>,
) -> Result<Planned, KintoError> {
    if memo.is_some() && !matches!(route, Some(Route::Resource(_))) {
        return Ok(Planned::Deferred);
    }
    match utility::end_of_service(&app.config) {
        Some((true, _)) => Err(KintoError::new(ErrorKind::ServiceDeprecated)),
        _ => dispatch(app, req, route, memo).await,
    }
}

/// Kinto's cross-cutting headers on the answer (or error) of a request.
fn finish(
    app: &App,
    req: &KRequest,
    route: Option<&Route>,
    result: Result<KResponse, KintoError>,
) -> KResponse {
    let cfg = &app.config;
    let result = result.map_err(|e| plugin_hint::annotate(cfg, route, e));
    let mut resp = result.unwrap_or_else(|e| KResponse::error(&e, cfg.retry_after_seconds));
    if resp.headers.contains_key("www-authenticate") {
        // Kinto's challenge is every policy's, concatenated: Basic for
        // accounts and basic auth, Bearer for the token policies.
        let mut challenge: Vec<&str> = cfg
            .multiauth_policies
            .iter()
            .map(|p| match p.as_str() {
                "account" | "basicauth" => "Basic realm=\"Realm\"",
                _ => "Bearer realm=\"Realm\"",
            })
            .collect();
        if challenge.is_empty() {
            challenge.push("Basic realm=\"Realm\"");
        }
        resp.set("www-authenticate", challenge.join(", "));
    }
    if let (Some(r), StatusCode::METHOD_NOT_ALLOWED) = (route, resp.status) {
        resp.set("allow", cors::methods(cfg, r).join(", "));
    }
    if let Some((_, alert)) = utility::end_of_service(cfg) {
        resp.set("alert", alert);
    }
    if let Some(seconds) = cfg.backoff {
        use rand::Rng;
        if rand::rng().random_range(0..100) < cfg.backoff_percentage {
            resp.set("backoff", seconds.to_string());
        }
    }
    cors::decorate(cfg, req, route, &mut resp);
    if !resp.headers.contains_key("content-security-policy") {
        resp.set_static(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; ",
        );
    }
    resp.set_static("x-content-type-options", "nosniff");
    resp
}

/// Kinto's path rules: version prefix, trailing slash, unknown paths.
/// `route` is the parsed endpoint of a `/v1` path, if there is one.
async fn dispatch(
    app: &App,
    req: &KRequest,
    route: Option<&Route>,
    memo: Option<&memo::Memo>,
) -> Result<Planned, KintoError> {
    let cfg = &app.config;
    if req.method == Method::OPTIONS {
        return match route {
            Some(r) => cors::preflight(cfg, req, r).map(Planned::Answer),
            // Kinto's version-prefix view answers preflights itself.
            None if versioned(&req.path).is_none()
                && cfg.version_prefix_redirect_enabled
                && !req.path.contains(['\r', '\n']) =>
            {
                Ok(Planned::Answer(KResponse::empty(200)))
            }
            None => Err(KintoError::new(ErrorKind::MissingResource)),
        };
    }
    let Some(rest) = versioned(&req.path) else {
        // Kinto's redirect route excludes CR and LF: its 404 is "version".
        if cfg.version_prefix_redirect_enabled && !req.path.contains(['\r', '\n']) {
            return Ok(Planned::Answer(redirect(
                app,
                req,
                &format!("/v1{}", req.path),
            )));
        }
        return Err(KintoError::new(ErrorKind::VersionNotAvailable));
    };
    let (version, rest) = rest;
    if version != "v1" {
        return Err(KintoError::new(ErrorKind::VersionNotAvailable));
    }
    let Some(route) = route.cloned() else {
        // Kinto redirects any unknown path ending with `/`, and `/v1`.
        if cfg.trailing_slash_redirect_enabled && (rest.is_empty() || rest.ends_with('/')) {
            let target = match rest {
                "" => "/v1/".to_owned(),
                _ => format!("/v1{}", rest.trim_end_matches('/')),
            };
            return Ok(Planned::Answer(
                redirect(app, req, &target).cache_for(TRAILING_SLASH_TTL_SECONDS),
            ));
        }
        return Err(KintoError::new(ErrorKind::MissingResource));
    };
    if cfg.readonly && !matches!(req.method, Method::GET | Method::HEAD) {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    if route == Route::Metrics {
        if !cfg.plugin("prometheus") {
            return Err(KintoError::new(ErrorKind::MissingResource));
        }
        only_get(req)?;
        let text = kinto_runtime::metrics::render();
        return Ok(Planned::Answer(KResponse::raw(
            200,
            "text/plain; version=0.0.4",
            text.into(),
        )));
    }
    if let Route::Admin(rest) = &route {
        if !cfg.plugin("admin") {
            return Err(KintoError::new(ErrorKind::MissingResource));
        }
        only_get(req)?;
        // HTML, scripts and styles: the JSON `Accept` rule does not apply.
        return admin::serve(cfg, rest).await.map(Planned::Answer);
    }
    headers::check_accept(req)?;
    let crate::auth::Identity {
        caller,
        app: client_app,
    } = memo::identify(memo, app, req.header("authorization")).await?;
    // Once per HTTP request: a `/batch` counts once, not per sub-request.
    if memo.is_none() && !matches!(route, Route::Heartbeat | Route::LbHeartbeat) {
        let bucket = match &route {
            Route::Resource(path) => Some(path.bucket.as_str()),
            _ => None,
        };
        if let Err(rejection) = app
            .admission
            .for_caller(&caller, client_app.as_deref(), bucket)
        {
            return Ok(Planned::Answer(app.admission.refuse(rejection).await));
        }
    }
    match route {
        Route::Resource(path)
            if accounts::disabled(&path, cfg.plugin("accounts"))
                || (path.kind == Kind::History && !cfg.plugin("history")) =>
        {
            Err(KintoError::new(ErrorKind::MissingResource))
        }
        Route::Resource(path) if path.bucket == "default" && cfg.plugin("default_bucket") => {
            let (req, path, implicit) =
                default_bucket::resolve(&app.bucket_ids, cfg.readonly, req, &path, &caller)?;
            let asked = resources::Asked {
                req: &req,
                path: &path,
                caller,
                implicit,
            };
            let op = resources::prepare(app, asked, memo).await?;
            Ok(Planned::Operation(op))
        }
        Route::Resource(path) => {
            let asked = resources::Asked {
                req,
                path: &path,
                caller,
                implicit: Default::default(),
            };
            let op = resources::prepare(app, asked, memo).await?;
            Ok(Planned::Operation(op))
        }
        route => endpoint(app, req, &caller, route)
            .await
            .map(Planned::Answer),
    }
}

/// The endpoints other than buckets, groups, collections and records.
async fn endpoint(
    app: &App,
    req: &KRequest,
    caller: &kinto_proto::pb::Caller,
    route: Route,
) -> Result<KResponse, KintoError> {
    let cfg = &app.config;
    match route {
        Route::Hello => only_get(req).and(Ok(utility::hello(app, req, caller).await)),
        Route::Heartbeat => only_get(req).and(Ok(utility::heartbeat(app).await)),
        Route::LbHeartbeat => only_get(req).and(Ok(KResponse::json(200, serde_json::json!({})))),
        Route::Version => only_get(req).and(Ok(utility::version())),
        Route::Contribute => only_get(req).and(Ok(utility::contribute())),
        Route::Api => {
            only_get(req)?;
            let base = app.base_url(req);
            let (scheme, host) = base.split_once("://").unwrap_or(("http", &base));
            Ok(KResponse::json(200, openapi::document(cfg, host, scheme)))
        }
        Route::Permissions if cfg.permissions_endpoint() => {
            permissions::list(app, req, caller).await
        }
        Route::UserData(principal) => {
            permissions::delete_user_data(app, req, caller, &principal).await
        }
        Route::OpenId { provider, token } => {
            only_get(req)?;
            openid::handle(app, req, &provider, token).await
        }
        // Answered by `dispatch`: admin and metrics before the `Accept`
        // check, resources after it.
        Route::Admin(_) | Route::Metrics | Route::Resource(_) => {
            Err(KintoError::new(ErrorKind::MissingResource))
        }
        Route::Permissions => Err(KintoError::new(ErrorKind::MissingResource)),
        Route::Snapshot {
            bucket,
            collection,
            timestamp,
        } if cfg.plugin("history") => {
            snapshot::get(app, req, caller, &bucket, &collection, &timestamp).await
        }
        Route::Snapshot { .. } => Err(KintoError::new(ErrorKind::MissingResource)),
        Route::Flush => {
            if !(cfg.plugin("flush") || cfg.flush_endpoint_enabled) {
                return Err(KintoError::new(ErrorKind::MissingResource));
            }
            if req.method != Method::POST {
                return Err(KintoError::new(ErrorKind::MethodNotAllowed));
            }
            app.shards.flush_all().await?;
            Ok(KResponse::json(202, serde_json::json!({})))
        }
        Route::Batch => {
            if req.method != Method::POST {
                return Err(KintoError::new(ErrorKind::MethodNotAllowed));
            }
            Box::pin(batch::handle(app, req)).await
        }
    }
}

fn only_get(req: &KRequest) -> Result<(), KintoError> {
    match req.method {
        Method::GET | Method::HEAD => Ok(()),
        _ => Err(KintoError::new(ErrorKind::MethodNotAllowed)),
    }
}

/// Splits `/v<digits>/rest` into `("v<digits>", "/rest")`.
fn versioned(path: &str) -> Option<(&str, &str)> {
    let p = path.strip_prefix('/')?;
    let end = p.find('/').unwrap_or(p.len());
    let (version, rest) = p.split_at(end);
    let digits = version.strip_prefix('v')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((version, rest))
}

/// Kinto's `trailing_slash_redirect_ttl_seconds` default.
const TRAILING_SLASH_TTL_SECONDS: u64 = 3600;

/// What a URL path keeps as it is in a `Location` (WebOb's safe set).
const PATH_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// A 307 to `path` with the request's querystring, as an absolute URL on
/// the host the client reached (WebOb makes `Location` absolute).
fn redirect(app: &App, req: &KRequest, path: &str) -> KResponse {
    let mut location = app.base_url(req);
    location.extend(percent_encoding::utf8_percent_encode(path, PATH_ESCAPED));
    if !req.query.is_empty() {
        location.push('?');
        location.push_str(&req.query);
    }
    KResponse::redirect(&location)
}
