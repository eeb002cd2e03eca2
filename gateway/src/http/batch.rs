//! `POST /batch`: up to `batch_max_requests` sub-requests, run in order
//! through the same pipeline as top-level requests.
//!
//! Atomicity (docs/batch.md): each sub-request is atomic on its shard; the
//! batch as a whole is not, as in Kinto for 4xx answers. Kinto also rolls
//! the whole batch back on a 409 or a 5xx inside one transaction; buckets of
//! one batch may live on different shards, so here every sub-request keeps
//! its own outcome and the batch always answers 200 with each status inside,
//! so a client never sees a failed batch whose earlier writes in fact landed.

use super::body::parse_json;
use super::headers::check_content_type;
use super::memo::Memo;
use super::message::{KRequest, KResponse};
use super::resources::{Finish, Pending};
use super::routes::Route;
use super::Planned;
use crate::app::App;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use kinto_proto::pb::Operation;
use kinto_proto::KintoError;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

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

/// A sub-request's method as Kinto's schema takes it: one of [`METHODS`],
/// spelled exactly (`get` is refused); absent, `null` or `""` means `GET`.
fn method_of(m: Option<&Value>, name: &str) -> Result<String, KintoError> {
    match m {
        None | Some(Value::Null) => Ok("GET".to_owned()),
        Some(Value::String(m)) if m.is_empty() => Ok("GET".to_owned()),
        Some(Value::String(m)) if METHODS.contains(&m.as_str()) => Ok(m.clone()),
        Some(Value::String(m)) => Err(invalid(
            name,
            format!("\"{m}\" is not one of GET, HEAD, DELETE, TRACE, POST, PUT, PATCH"),
        )),
        Some(other) => Err(invalid(
            name,
            format!("{other} is not a string: {{'method': ''}}"),
        )),
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
    // Built only for an error message.
    let name = || format!("requests.{i}");
    if let Some(k) = r
        .keys()
        .find(|k| !["method", "path", "headers", "body"].contains(&k.as_str()))
    {
        return Err(invalid(
            &name(),
            format!("Unrecognized keys in mapping: \"{{'{k}': ...}}\""),
        ));
    }
    let path = match r.get("path") {
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        Some(_) => return Err(invalid(&format!("{}.path", name()), "Invalid path")),
        None => return Err(invalid(&format!("{}.path", name()), "Required")),
    };
    let method = method_of(r.get("method"), &format!("{}.method", name()))?;
    let mut headers = Vec::new();
    match r.get("headers") {
        None => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let Value::String(v) = v else {
                    return Err(invalid(
                        &format!("{}.headers.{k}", name()),
                        format!("{v} is not a string"),
                    ));
                };
                headers.push((k.clone(), v.clone()));
            }
        }
        Some(_) => return Err(invalid(&format!("{}.headers", name()), "Not a mapping")),
    }
    // Taken out, not copied: nothing reads the mapping after this.
    let body = match r.remove("body") {
        None | Some(Value::Null) => None,
        Some(b @ Value::Object(_)) => Some(b),
        Some(_) => return Err(invalid(&format!("{}.body", name()), "Not a mapping")),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path, String::new()),
    };
    let path = if path.starts_with("/v1/") || path == "/v1" {
        path
    } else {
        let mut v1 = String::with_capacity(path.len() + 3);
        v1.push_str("/v1");
        v1.push_str(&path);
        v1
    };
    Ok(Sub {
        method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
        path,
        query,
        headers,
        body,
    })
}

/// A batch body's sub-requests, all validated before any runs: at most
/// `max` of them, each a mapping with `defaults` merged in.
fn parse_batch(body: &[u8], max: usize) -> Result<Vec<Sub>, KintoError> {
    let Some(Value::Object(mut body)) = parse_json(body)? else {
        return Err(invalid("requests", "Required"));
    };
    let defaults = match body.remove("defaults") {
        None => Map::new(),
        Some(Value::Object(d)) => d,
        Some(_) => return Err(invalid("defaults", "Not a mapping")),
    };
    // Kinto validates `defaults` first, so its method names the error.
    method_of(defaults.get("method"), "defaults.method")?;
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
    if requests.len() > max {
        return Err(invalid(
            "requests",
            format!("Number of requests is limited to {max}"),
        ));
    }
    let subs = requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Value::Object(m) => parse_sub(i, m, &defaults),
            _ => Err(invalid(&format!("requests.{i}"), "Not a mapping")),
        })
        .collect::<Result<Vec<Sub>, KintoError>>()?;
    // After the schema, as Kinto: `/batch` anywhere in a path (a bucket named
    // `batch1` included) is a recursive call.
    if subs
        .iter()
        .any(|s| s.path.contains("/batch") || s.query.contains("/batch"))
    {
        return Err(invalid(
            "requests",
            "Recursive call on /batch endpoint is forbidden.",
        ));
    }
    Ok(subs)
}

pub async fn handle(app: &App, req: &KRequest) -> Result<KResponse, KintoError> {
    check_content_type(req, &["application/json"])?;
    // Validate everything before running anything.
    let subs = parse_batch(&req.body, app.config.batch_max_requests as usize)?;
    let mut responses = Vec::with_capacity(subs.len());
    let mut waiting = Waiting::default();
    let memo = Memo::default();
    let mut inherited = Inherited::of(&req.headers);
    for sub in subs {
        let req = request_of(&mut inherited, sub);
        let route = super::route_of(&req);
        match super::plan(app, &req, route.as_ref(), Some(&memo)).await {
            Ok(Planned::Operation(op)) => match op.batchable_on() {
                Some(shard) => {
                    waiting.push(responses.len(), shard, req, route, op);
                    responses.push(Vec::new());
                }
                None => {
                    waiting.send(app, &mut responses).await;
                    let resp = op.run(app).await;
                    memo.forget_callers();
                    let resp = super::finish(app, &req, route.as_ref(), resp);
                    responses.push(sub_response(&req.path, req.method == Method::HEAD, resp));
                }
            },
            // Nothing ran: the answer does not depend on the waiting ones.
            Err(e) => {
                let resp = super::finish(app, &req, route.as_ref(), Err(e));
                responses.push(sub_response(&req.path, req.method == Method::HEAD, resp));
            }
            Ok(Planned::Deferred | Planned::Answer(_)) => {
                waiting.send(app, &mut responses).await;
                responses.push(run(app, req).await);
                memo.forget_callers();
            }
        }
    }
    waiting.send(app, &mut responses).await;
    Ok(KResponse::printed(200, answers(responses)))
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
    async fn send(&mut self, app: &App, responses: &mut [Vec<u8>]) {
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
            // `execute_many` answers one result per operation, always.
            let result = result.unwrap_or_else(|| {
                Err(crate::reply::unusable(
                    Some(sub.shard),
                    "execute_many",
                    crate::reply::Fault::OutcomeCount,
                    "no outcome for operation",
                ))
            });
            let resp = sub.finish.answer(app, Some(sub.shard), result);
            let resp = super::finish(app, &sub.req, sub.route.as_ref(), resp);
            if let Some(slot) = responses.get_mut(sub.slot) {
                *slot = sub_response(&sub.req.path, sub.req.method == Method::HEAD, resp);
            }
        }
    }
}

/// The headers sub-requests inherit from the batch, built once per batch:
/// the batch's own without its length, and with a JSON content type for
/// the sub-requests that carry a body.
struct Inherited {
    plain: Arc<HeaderMap>,
    json: Arc<HeaderMap>,
    /// `defaults` give most sub-requests the same headers of their own.
    last: Option<LastHeaders>,
}

/// The last sub-request's own headers, whether it had a body, and the
/// headers it got.
struct LastHeaders {
    own: Vec<(String, String)>,
    body: bool,
    headers: Arc<HeaderMap>,
}

fn sub_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json; charset=utf-8")
}

impl Inherited {
    fn of(parent: &HeaderMap) -> Self {
        let mut plain = parent.clone();
        plain.remove("content-length");
        let mut json = plain.clone();
        json.insert("content-type", sub_content_type());
        Inherited {
            plain: Arc::new(plain),
            json: Arc::new(json),
            last: None,
        }
    }
}

/// A sub-request as a request: the batch's headers overlaid with its own.
fn request_of(inherited: &mut Inherited, sub: Sub) -> KRequest {
    let has_body = sub.body.is_some();
    let headers = if sub.headers.is_empty() {
        if has_body {
            inherited.json.clone()
        } else {
            inherited.plain.clone()
        }
    } else if let Some(last) = inherited
        .last
        .as_ref()
        .filter(|l| l.own == sub.headers && l.body == has_body)
    {
        last.headers.clone()
    } else {
        let mut headers = (*inherited.plain).clone();
        for (k, v) in &sub.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        if has_body {
            headers.insert("content-type", sub_content_type());
        }
        let headers = Arc::new(headers);
        inherited.last = Some(LastHeaders {
            own: sub.headers,
            body: has_body,
            headers: headers.clone(),
        });
        headers
    };
    KRequest {
        method: sub.method,
        path: sub.path,
        query: sub.query,
        headers,
        body: bytes::Bytes::new(),
        json: sub.body.map(Arc::new),
    }
}

/// Runs one sub-request alone, following redirects as Kinto does server-side.
async fn run(app: &App, mut req: KRequest) -> Vec<u8> {
    let mut resp = super::handle(app, req.clone()).await;
    for _ in 0..3 {
        let location = resp.headers.get("location").and_then(|l| l.to_str().ok());
        let (307, Some(location)) = (resp.status.as_u16(), location) else {
            break;
        };
        // An absolute, percent-encoded URL: keep its decoded path.
        let location = location.split_once("://").map_or(location, |(_, rest)| {
            &rest[rest.find('/').unwrap_or(rest.len())..]
        });
        let (p, q) = location.split_once('?').unwrap_or((location, ""));
        req.path = percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned();
        req.query = q.to_owned();
        resp = super::handle(app, req.clone()).await;
    }
    sub_response(&req.path, req.method == Method::HEAD, resp)
}

/// One entry of `responses` (status, executed path, headers, body), printed
/// straight into JSON: the body is usually a shard's printed object, which
/// is passed through rather than parsed and printed again. A `HEAD`'s body
/// is empty whatever its status, as in Kinto (its headers stay).
fn sub_response(path: &str, head: bool, resp: KResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"status\":");
    out.extend_from_slice(resp.status.as_str().as_bytes());
    out.extend_from_slice(b",\"path\":");
    write_str(&mut out, path);
    out.extend_from_slice(b",\"headers\":{");
    let mut first = true;
    for name in resp.headers.keys() {
        if resp.body.is_some() && name == "content-type" {
            continue;
        }
        // A repeated header keeps its last value, as a JSON object would.
        let Some(value) = resp.headers.get_all(name).iter().next_back() else {
            continue;
        };
        // Text only (as `to_str` accepts): visible ASCII and tabs.
        let value = value.as_bytes();
        if !value
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
        {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Header names are tokens: nothing in them needs escaping.
        out.push(b'"');
        out.extend_from_slice(canonical(name.as_str()).as_bytes());
        out.extend_from_slice(b"\":\"");
        let mut start = 0;
        for (i, &b) in value.iter().enumerate() {
            let escaped: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                _ => continue,
            };
            out.extend_from_slice(&value[start..i]);
            out.extend_from_slice(escaped);
            start = i + 1;
        }
        out.extend_from_slice(&value[start..]);
        out.push(b'"');
    }
    if resp.body.is_some() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"Content-Type\":\"application/json\"");
    }
    out.extend_from_slice(b"},\"body\":");
    match &resp.body {
        Some(body) if !head => body.write_to(&mut out),
        _ => out.extend_from_slice(b"\"\""),
    }
    out.push(b'}');
    out
}

/// A JSON string literal.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape: the common case for header values and paths.
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `{"responses": [...]}` from the printed sub-responses.
fn answers(responses: Vec<Vec<u8>>) -> Vec<u8> {
    let len: usize = responses.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(len + 16);
    out.extend_from_slice(b"{\"responses\":[");
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r);
    }
    out.extend_from_slice(b"]}");
    out
}

/// `etag` → `ETag`, `last-modified` → `Last-Modified`, as Kinto names them.
fn canonical(name: &str) -> Cow<'static, str> {
    // The headers every sub-response carries, spelled without allocating.
    let known = match name {
        "etag" => "ETag",
        "www-authenticate" => "WWW-Authenticate",
        "last-modified" => "Last-Modified",
        "content-type" => "Content-Type",
        "cache-control" => "Cache-Control",
        "access-control-expose-headers" => "Access-Control-Expose-Headers",
        "content-security-policy" => "Content-Security-Policy",
        "x-content-type-options" => "X-Content-Type-Options",
        _ => {
            let mut out = String::with_capacity(name.len());
            let mut start = true;
            for c in name.chars() {
                out.push(if start { c.to_ascii_uppercase() } else { c });
                start = c == '-';
            }
            return Cow::Owned(out);
        }
    };
    Cow::Borrowed(known)
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::{answers, canonical, sub_response};
    use crate::http::message::KResponse;
    use axum::http::HeaderValue;
    use serde_json::{json, Value};

    #[test]
    fn printed_sub_responses_are_the_json_of_their_parts() {
        let mut printed = KResponse::printed(201, br#"{"data":{"id":"a","n":1.5}}"#.to_vec())
            .with("etag", "\"12\"")
            .with("x-odd", "a\\b\tc");
        // Not text: left out, as before (`to_str` refuses it).
        if let Ok(v) = HeaderValue::from_bytes(b"caf\xe9") {
            printed.headers.insert("x-bin", v);
        }
        printed
            .headers
            .append("alert", HeaderValue::from_static("first"));
        printed
            .headers
            .append("alert", HeaderValue::from_static("last"));
        let built = KResponse::json(404, json!({"errno": 110, "message": "a \"quoted\"\n"}));
        let empty = KResponse::empty(304).with("content-type", "text/plain");
        let all = answers(vec![
            sub_response("/v1/buckets/b\u{e9}\"", false, printed),
            sub_response("/v1/x", false, built),
            sub_response("/v1/y", false, empty),
        ]);
        let v: Value = serde_json::from_slice(&all).unwrap();
        assert_eq!(
            v,
            json!({"responses": [
                {"status": 201, "path": "/v1/buckets/b\u{e9}\"",
                 "headers": {"ETag": "\"12\"", "X-Odd": "a\\b\tc", "Alert": "last",
                             "Content-Type": "application/json"},
                 "body": {"data": {"id": "a", "n": 1.5}}},
                {"status": 404, "path": "/v1/x",
                 "headers": {"Content-Type": "application/json"},
                 "body": {"errno": 110, "message": "a \"quoted\"\n"}},
                {"status": 304, "path": "/v1/y",
                 "headers": {"Content-Type": "text/plain"}, "body": ""},
            ]})
        );
        assert_eq!(answers(vec![]), br#"{"responses":[]}"#);
    }

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
