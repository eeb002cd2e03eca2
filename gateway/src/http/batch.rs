//! `POST /batch`: up to `batch_max_requests` sub-requests, run in order
//! through the same pipeline as top-level requests.
//!
//! Atomicity (docs/batch.md): each sub-request is atomic on its shard; the
//! batch as a whole is not, as in Kinto for 4xx answers. Kinto also rolls
//! the whole batch back on a 409 or a 5xx inside one transaction; buckets of
//! one batch may live on different shards, so here every sub-request keeps
//! its own outcome and the batch always answers 200 with each status inside,
//! so a client never sees a failed batch whose earlier writes in fact landed.

use super::body::{object, parse_json};
use super::headers::check_content_type;
use super::memo::Memo;
use super::message::{KRequest, KResponse};
use super::resources::{Finish, Pending};
use super::routes::Route;
use super::Planned;
use crate::app::App;
use axum::http::{HeaderName, HeaderValue, Method};
use kinto_proto::pb::Operation;
use kinto_proto::KintoError;
use serde_json::{Map, Value};

const METHODS: [&str; 7] = ["GET", "HEAD", "DELETE", "TRACE", "POST", "PUT", "PATCH"];

fn invalid(name: &str, description: impl Into<String>) -> KintoError {
    KintoError::invalid("body", Some(name), description)
}

/// Deep merge of `defaults` into a request: the request's values win.
fn merge(target: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (k, v) in defaults {
        match (target.get_mut(k), v) {
            (Some(Value::Object(t)), Value::Object(d)) => merge(t, d),
            (Some(_), _) => {}
            (None, v) => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

struct Sub {
    method: Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn parse_sub(
    i: usize,
    mut r: Map<String, Value>,
    defaults: &Map<String, Value>,
) -> Result<Sub, KintoError> {
    merge(&mut r, defaults);
    let name = format!("requests.{i}");
    if let Some(k) = r
        .keys()
        .find(|k| !["method", "path", "headers", "body"].contains(&k.as_str()))
    {
        return Err(invalid(
            &name,
            format!("Unrecognized keys in mapping: \"{{'{k}': ...}}\""),
        ));
    }
    let path = match r.get("path") {
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        Some(_) => return Err(invalid(&format!("{name}.path"), "Invalid path")),
        None => return Err(invalid(&format!("{name}.path"), "Required")),
    };
    if path.contains("/batch") {
        return Err(invalid(
            &format!("{name}.path"),
            "Recursive call on /batch endpoint is forbidden.",
        ));
    }
    let method = match r.get("method") {
        None => "GET".to_owned(),
        Some(Value::String(m)) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
            m.to_ascii_uppercase()
        }
        Some(m) => {
            return Err(invalid(
                &format!("{name}.method"),
                format!(
                    "\"{}\" is not one of GET, HEAD, DELETE, TRACE, POST, PUT, PATCH",
                    m.as_str().unwrap_or_default()
                ),
            ))
        }
    };
    let mut headers = Vec::new();
    match r.get("headers") {
        None => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let Value::String(v) = v else {
                    return Err(invalid(
                        &format!("{name}.headers.{k}"),
                        format!("{v} is not a string"),
                    ));
                };
                headers.push((k.clone(), v.clone()));
            }
        }
        Some(_) => return Err(invalid(&format!("{name}.headers"), "Not a mapping")),
    }
    // Taken out, not copied: nothing reads the mapping after this.
    let body = match r.remove("body") {
        None | Some(Value::Null) => None,
        Some(b @ Value::Object(_)) => Some(b),
        Some(_) => return Err(invalid(&format!("{name}.body"), "Not a mapping")),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path, String::new()),
    };
    let path = if path.starts_with("/v1/") || path == "/v1" {
        path
    } else {
        format!("/v1{path}")
    };
    Ok(Sub {
        method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
        path,
        query,
        headers,
        body,
    })
}

pub async fn handle(app: &App, req: &KRequest) -> Result<KResponse, KintoError> {
    check_content_type(req, &["application/json"])?;
    let Some(Value::Object(mut body)) = parse_json(&req.body)? else {
        return Err(invalid("requests", "Required"));
    };
    let defaults = match body.remove("defaults") {
        None => Map::new(),
        Some(Value::Object(d)) => d,
        Some(_) => return Err(invalid("defaults", "Not a mapping")),
    };
    let requests = match body.remove("requests") {
        Some(Value::Array(r)) => r,
        Some(_) => return Err(invalid("requests", "Not a list")),
        None => return Err(invalid("requests", "Required")),
    };
    if let Some(k) = body.keys().next() {
        return Err(invalid(
            "body",
            format!("Unrecognized keys in mapping: \"{{'{k}': ...}}\""),
        ));
    }
    let max = app.config.batch_max_requests as usize;
    if requests.len() > max {
        return Err(invalid(
            "requests",
            format!("Number of requests is limited to {max}"),
        ));
    }
    // Validate everything before running anything.
    let subs = requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Value::Object(m) => parse_sub(i, m, &defaults),
            _ => Err(invalid(&format!("requests.{i}"), "Not a mapping")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut responses = Vec::with_capacity(subs.len());
    let mut waiting = Waiting::default();
    let memo = Memo::default();
    for sub in subs {
        let req = request_of(req, sub);
        let route = super::route_of(&req);
        match super::plan(app, &req, route.as_ref(), Some(&memo)).await {
            Ok(Planned::Operation(op)) => match op.batchable_on() {
                Some(shard) => {
                    waiting.push(responses.len(), shard, req, route, op);
                    responses.push(Value::Null);
                }
                None => {
                    waiting.send(app, &mut responses).await;
                    let resp = op.run(app).await;
                    memo.forget_callers();
                    let resp = super::finish(app, &req, route.as_ref(), resp);
                    responses.push(sub_response(&req.path, resp));
                }
            },
            // Nothing ran: the answer does not depend on the waiting ones.
            Err(e) => {
                let resp = super::finish(app, &req, route.as_ref(), Err(e));
                responses.push(sub_response(&req.path, resp));
            }
            Ok(Planned::Deferred | Planned::Answer(_)) => {
                waiting.send(app, &mut responses).await;
                responses.push(run(app, req).await);
                memo.forget_callers();
            }
        }
    }
    waiting.send(app, &mut responses).await;
    Ok(KResponse::json(
        200,
        object([("responses", Value::Array(responses))]),
    ))
}

/// Planned sub-requests not sent yet: consecutive bucket operations, sent
/// to each shard in one call, in the batch's order. Anything else (and the
/// end of the batch) sends them first, so every sub-request sees the writes
/// of the sub-requests before it.
#[derive(Default)]
struct Waiting {
    subs: Vec<WaitingSub>,
}

struct WaitingSub {
    /// Index of the sub-response.
    slot: usize,
    shard: usize,
    req: KRequest,
    route: Option<Route>,
    op: Operation,
    finish: Finish,
}

impl Waiting {
    fn push(
        &mut self,
        slot: usize,
        shard: usize,
        req: KRequest,
        route: Option<Route>,
        pending: Pending,
    ) {
        let (op, finish) = pending.into_parts();
        self.subs.push(WaitingSub {
            slot,
            shard,
            req,
            route,
            op,
            finish,
        });
    }

    /// One call per shard (shards run concurrently, each in order), then
    /// the sub-responses in their slots.
    async fn send(&mut self, app: &App, responses: &mut [Value]) {
        if self.subs.is_empty() {
            return;
        }
        let mut shards: Vec<usize> = self.subs.iter().map(|s| s.shard).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut subs: Vec<_> = std::mem::take(&mut self.subs)
            .into_iter()
            .map(|s| (s, None))
            .collect();
        let calls = shards.iter().map(|&shard| {
            let ops = subs
                .iter_mut()
                .filter(|(s, _)| s.shard == shard)
                .map(|(s, _)| std::mem::take(&mut s.op))
                .collect();
            app.shards.execute_many(shard, ops)
        });
        let results = futures::future::join_all(calls).await;
        for (shard, results) in shards.iter().zip(results) {
            let mut results = results.into_iter();
            for (_, result) in subs.iter_mut().filter(|(s, _)| s.shard == *shard) {
                *result = results.next();
            }
        }
        for (sub, result) in subs {
            let result =
                result.unwrap_or_else(|| Err(KintoError::internal("no outcome for operation")));
            let resp = sub.finish.answer(app, result);
            let resp = super::finish(app, &sub.req, sub.route.as_ref(), resp);
            if let Some(slot) = responses.get_mut(sub.slot) {
                *slot = sub_response(&sub.req.path, resp);
            }
        }
    }
}

/// A sub-request as a request: the batch's headers overlaid with its own.
fn request_of(parent: &KRequest, sub: Sub) -> KRequest {
    let mut headers = parent.headers.clone();
    headers.remove("content-length");
    for (k, v) in &sub.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    if sub.body.is_some() {
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    KRequest {
        method: sub.method,
        path: sub.path,
        query: sub.query,
        headers,
        body: bytes::Bytes::new(),
        json: sub.body.map(std::sync::Arc::new),
    }
}

/// Runs one sub-request alone, following redirects as Kinto does server-side.
async fn run(app: &App, mut req: KRequest) -> Value {
    let mut resp = super::handle(app, req.clone()).await;
    for _ in 0..3 {
        let location = resp.headers.get("location").and_then(|l| l.to_str().ok());
        let (307, Some(location)) = (resp.status.as_u16(), location) else {
            break;
        };
        let (p, q) = location.split_once('?').unwrap_or((location, ""));
        req.path = p.to_owned();
        req.query = q.to_owned();
        resp = super::handle(app, req.clone()).await;
    }
    sub_response(&req.path, resp)
}

/// One entry of `responses`: status, executed path, headers, body.
fn sub_response(path: &str, resp: KResponse) -> Value {
    let mut headers: Map<String, Value> = resp
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                canonical(k.as_str()),
                Value::String(v.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    if resp.body.is_some() {
        headers.insert(
            "Content-Type".into(),
            Value::String("application/json".into()),
        );
    }
    object([
        ("status", Value::from(resp.status.as_u16())),
        ("path", Value::String(path.to_owned())),
        ("headers", Value::Object(headers)),
        (
            "body",
            resp.body.unwrap_or_else(|| Value::String(String::new())),
        ),
    ])
}

/// `etag` → `ETag`, `last-modified` → `Last-Modified`, as Kinto names them.
fn canonical(name: &str) -> String {
    match name {
        "etag" => "ETag".into(),
        "www-authenticate" => "WWW-Authenticate".into(),
        _ => {
            let mut out = String::with_capacity(name.len());
            let mut start = true;
            for c in name.chars() {
                out.push(if start { c.to_ascii_uppercase() } else { c });
                start = c == '-';
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn header_names_as_kinto_spells_them() {
        assert_eq!(canonical("etag"), "ETag");
        assert_eq!(canonical("www-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical("last-modified"), "Last-Modified");
        assert_eq!(
            canonical("x-content-type-options"),
            "X-Content-Type-Options"
        );
        assert_eq!(canonical("a--b-"), "A--B-");
        assert_eq!(canonical("-x"), "-X");
    }
}
