//! Buckets, groups, collections and records: the HTTP side. Turns a request
//! into one gRPC operation for the owning shard (or one per shard for
//! `/buckets`), and the result into Kinto's envelope and headers.

use super::accounts;
use super::body::{envelope, object, parse_json};
use super::default_bucket::Implicit;
use super::headers::{check_content_type, content_type, precondition};
use super::memo::Memo;
use super::message::{KRequest, KResponse};
use super::querystring::{parse_fields, parse_list_query, ListParams, QueryError};
use super::routes::ResourcePath;
use crate::app::App;
use axum::http::Method;
use kinto_placement::PlacementKey;
use kinto_proto::pb::{self, Caller, Kind, ListQuery, OpResult, Operation, PatchKind, Target};
use kinto_proto::query::{self, Op};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

pub(super) fn query_error(e: QueryError) -> KintoError {
    let mut out = KintoError::invalid("querystring", e.name.as_deref(), e.description);
    if let Some(Value::Array(details)) = out.details.as_mut() {
        details.extend(e.more.into_iter().map(|(name, description)| {
            json!({"location": "querystring", "name": name, "description": description})
        }));
    }
    out
}

fn method_of(m: &Method) -> Option<pb::Method> {
    Some(match *m {
        Method::GET => pb::Method::Get,
        Method::HEAD => pb::Method::Head,
        Method::POST => pb::Method::Post,
        Method::PUT => pb::Method::Put,
        Method::PATCH => pb::Method::Patch,
        Method::DELETE => pb::Method::Delete,
        _ => return None,
    })
}

fn filter_op(op: Op) -> pb::FilterOp {
    use pb::FilterOp as F;
    match op {
        Op::Eq => F::Eq,
        Op::Not => F::Not,
        Op::Lt => F::Lt,
        Op::Gt => F::Gt,
        Op::Min => F::Min,
        Op::Max => F::Max,
        Op::In => F::In,
        Op::Exclude => F::Exclude,
        Op::Like => F::Like,
        Op::Has => F::Has,
        Op::Contains => F::Contains,
        Op::ContainsAny => F::ContainsAny,
    }
}

fn bytes_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A request turned into its shard operation, not sent yet: `/batch` sends
/// the operations of consecutive sub-requests to each shard in one call.
pub struct Pending {
    /// The owning shard; `None` for the cross-shard lists (`/buckets`, an
    /// administrator's `/accounts`), which go to every shard.
    shard: Option<usize>,
    kind: Kind,
    /// Boxed: an operation is large, and a `Pending` moves through the pipeline.
    op: Box<Operation>,
    finish: Finish,
}

/// What turns the shard's result into the response.
pub enum Finish {
    Object {
        method: pb::Method,
        fields: Option<Vec<String>>,
    },
    /// Lists need the request for their `Next-Page` URL.
    List {
        method: pb::Method,
        params: Box<ListParams>,
        req: Box<KRequest>,
    },
}

impl Pending {
    /// The shard that can run this operation together with the others of a
    /// `/batch`. Cross-shard lists, and accounts (which change who
    /// authenticates, so the next sub-requests must see them done), run on
    /// their own.
    pub fn batchable_on(&self) -> Option<usize> {
        self.shard.filter(|_| self.kind != Kind::Account)
    }

    /// Sends the operation and answers.
    pub async fn run(self, app: &App) -> Result<KResponse, KintoError> {
        let result = match self.shard {
            Some(i) => app.shards.execute(i, *self.op).await,
            // Boxed: rare, and its future (two fan-outs) would otherwise
            // enlarge every request's future, which is moved as a whole.
            None if self.op.method == pb::Method::Delete as i32 => {
                Box::pin(delete_everywhere(app, *self.op)).await
            }
            None => fan_out(app, *self.op).await,
        };
        self.finish.answer(app, self.shard, result)
    }

    /// Splits into the operation and what answers its result.
    pub fn into_parts(self) -> (Operation, Finish) {
        (*self.op, self.finish)
    }
}

impl Finish {
    /// The answer to the result of `shard` (`None`: merged from all).
    pub fn answer(
        self,
        app: &App,
        shard: Option<usize>,
        result: Result<OpResult, KintoError>,
    ) -> Result<KResponse, KintoError> {
        let result = result?;
        match self {
            Finish::Object { method, fields } => {
                object_response(shard, method, fields.as_deref(), result)
            }
            Finish::List {
                method,
                params,
                req,
            } => list_response(app, &req, shard, method, &params, result),
        }
    }
}

/// A request for one resource, as the dispatcher resolved it: who asks, and
/// what Kinto's default bucket creates on the way.
pub struct Asked<'a> {
    pub req: &'a KRequest,
    pub path: &'a ResourcePath,
    pub caller: Caller,
    pub implicit: Implicit,
}

/// Validates the request and builds its operation. Kinto refuses an
/// invalid body, querystring, id or `If-Match` only after its permission and
/// parent checks: such a 400 is answered after the shard's checks
/// ([`checks_first`]), except in `/batch`, whose earlier sub-requests may not
/// have run yet.
pub async fn prepare(
    app: &App,
    asked: Asked<'_>,
    memo: Option<&Memo>,
) -> Result<Pending, KintoError> {
    let Asked {
        req,
        path,
        caller,
        implicit,
    } = asked;
    // Only a request outside `/batch` may need the caller again: a batch's
    // sub-requests (most operations under load) do not pay for the copy.
    let who = memo.is_none().then(|| caller.clone());
    match (validate(app, req, path, caller, implicit, memo).await, who) {
        (Err(e), Some(who))
            if matches!(
                e.kind,
                ErrorKind::InvalidParameters | ErrorKind::UnsupportedMediaType
            ) =>
        {
            // Boxed: the probe's future is large and rare, and would
            // otherwise enlarge every request's future.
            Err(Box::pin(checks_first(app, req, path, who, implicit, e)).await)
        }
        (other, _) => other,
    }
}

fn target_of(path: &ResourcePath) -> Target {
    Target {
        kind: path.kind as i32,
        bucket_id: path.bucket.clone(),
        collection_id: path.collection.clone(),
        object_id: path.id.clone().unwrap_or_default(),
    }
}

/// The shard's answer to the request without what made it invalid, when
/// that is a 401, 403 or 404; `invalid` otherwise. Nothing is written: an
/// object operation carries an `If-Match` no timestamp has (the shard checks
/// it after permissions and parents, before any write), a list is read with
/// one row, and a plural DELETE only selects (`dry_run`).
async fn checks_first(
    app: &App,
    req: &KRequest,
    path: &ResourcePath,
    caller: Caller,
    implicit: Implicit,
    invalid: KintoError,
) -> KintoError {
    let Some(method) = method_of(&req.method) else {
        return invalid;
    };
    let plural = path.id.is_none();
    let mut path = path.clone();
    let mut body_json = None;
    if path.bucket.is_empty() && method == pb::Method::Post {
        // A new bucket is placed by its id: one no bucket has stands for it.
        // Accounts may be created by anyone.
        if path.kind != Kind::Bucket {
            return invalid;
        }
        path.bucket = new_bucket_id(&mut Operation::default()).unwrap_or_default();
        body_json = Some(bytes_of(&json!({ "id": path.bucket })));
    }
    let path = &path;
    let list = plural && method != pb::Method::Post;
    let never = pb::Precondition {
        value: Some(pb::precondition::Value::Timestamp(u64::MAX)),
    };
    let op = Operation {
        target: Some(target_of(path)),
        method: method as i32,
        caller: Some(caller),
        if_match: (!list).then_some(never),
        query: list.then(|| ListQuery {
            limit: 1,
            dry_run: method == pb::Method::Delete,
            ..Default::default()
        }),
        implicit_bucket: implicit.bucket,
        implicit_collection: implicit.collection,
        body_json,
        // A PATCH names its kind (the shard refuses an unspecified one); the
        // probe never gets as far as applying it.
        patch_kind: if method == pb::Method::Patch {
            PatchKind::Merge as i32
        } else {
            PatchKind::Unspecified as i32
        },
        ..Default::default()
    };
    // Kinto finds a missing object in its view, after the validators of the
    // body and querystring but before it reads `If-Match`.
    let in_view = invalid
        .details
        .as_ref()
        .and_then(|d| d.pointer("/0/location"))
        .is_some_and(|l| l == "header");
    let checked = match shard_of(app, path, None) {
        Some(shard) => app.shards.execute(shard, op).await,
        // A plural DELETE's probe only selects, on every shard.
        None => fan_out(app, op).await,
    };
    match checked {
        // Before the content type, Kinto checks only a record's collection.
        Err(e) if invalid.kind == ErrorKind::UnsupportedMediaType => {
            if e.kind == ErrorKind::MissingResource && path.kind == Kind::Record {
                e
            } else {
                invalid
            }
        }
        Err(e) if e.kind == ErrorKind::ObjectNotFound && !in_view => invalid,
        Err(e) if matches!(e.kind.spec().http_status, 401 | 403 | 404) => e,
        // The probe must not fail: if it does, the client still gets its 400,
        // and the fault is seen here.
        Err(e) if e.kind.spec().http_status >= 500 => {
            tracing::warn!(errno = e.kind.spec().errno, "checks-first probe failed");
            invalid
        }
        _ => invalid,
    }
}

async fn validate(
    app: &App,
    req: &KRequest,
    path: &ResourcePath,
    caller: Caller,
    implicit: Implicit,
    memo: Option<&Memo>,
) -> Result<Pending, KintoError> {
    let plural = path.id.is_none();
    let allowed: &[Method] = if path.kind == Kind::History {
        &[Method::GET, Method::HEAD, Method::DELETE]
    } else if plural {
        &[Method::GET, Method::HEAD, Method::POST, Method::DELETE]
    } else {
        &[
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ]
    };
    let method = match method_of(&req.method) {
        Some(m) if allowed.contains(&req.method) => m,
        _ => return Err(KintoError::new(ErrorKind::MethodNotAllowed)),
    };
    // A malformed parent id names nothing, and Kinto answers as for a
    // missing parent (403 or 404, decided by the shard). Only ids no store
    // can hold (NUL, beyond the bound) stop here, as a parent unseen.
    if path.parent_ids().iter().any(|id| !storable_id(id)) {
        return Err(if caller.user_id.is_empty() {
            KintoError::new(ErrorKind::Unauthorized)
        } else {
            KintoError::new(ErrorKind::Forbidden)
        });
    }
    // Kinto's POST and PUT find a malformed bucket id missing before any
    // other check (a valid but missing one is a 401/403 there).
    if let (pb::Method::Post | pb::Method::Put, Some(&bucket)) = (method, path.parent_ids().first())
    {
        if !valid_id(bucket) {
            return Err(KintoError::not_found(
                ErrorKind::MissingResource,
                bucket,
                "bucket",
            ));
        }
    }
    if let Some(id) = &path.id {
        if !kinto_model::valid_id_for(shard_kind(path.kind), id) {
            return Err(KintoError::invalid("path", None, "Invalid object id"));
        }
    }
    let mut op = Operation {
        target: Some(target_of(path)),
        method: method as i32,
        caller: Some(caller),
        if_match: precondition(req, "If-Match")?,
        if_none_match: precondition(req, "If-None-Match")?,
        implicit_bucket: implicit.bucket,
        implicit_collection: implicit.collection,
        ..Default::default()
    };
    if matches!(
        method,
        pb::Method::Post | pb::Method::Put | pb::Method::Patch
    ) {
        read_body(req, method, &mut op)?;
        if path.kind == Kind::Account {
            accounts::hash_password(method, &mut op).await?;
        }
    }
    let mut path = path.clone();
    if plural && method == pb::Method::Post && path.kind == Kind::Bucket {
        // A new bucket is placed by its id, so the id is settled here.
        path.bucket = new_bucket_id(&mut op)?;
        if let Some(t) = op.target.as_mut() {
            t.bucket_id = path.bucket.clone();
        }
    }
    let path = &path;
    // Like a bucket, an account is placed by its id: a POST's is in the body.
    let posted_account = if plural && method == pb::Method::Post && path.kind == Kind::Account {
        Some(accounts::posted_id(&op)?)
    } else {
        None
    };
    let shard = match &posted_account {
        Some(id) => Some(app.shards.shard_of_key(PlacementKey::Account(id))),
        None => shard_of(app, path, memo),
    };
    let pairs = req.query_pairs();
    if plural && method != pb::Method::Post {
        // History entries have a fixed schema: Kinto rejects other fields.
        let known = (path.kind == Kind::History).then_some(HISTORY_FIELDS);
        let mut params =
            parse_list_query(&pairs, kinto_model::clock::now_ms(), known).map_err(query_error)?;
        if path.kind == Kind::History {
            history_ids_as_text(&mut params);
        }
        let mut q = list_query(app, &params);
        if method == pb::Method::Delete {
            // Kinto's DELETE tokens work once: the owning shard keeps their
            // nonces (`shard/src/domain/tokens.rs`).
            q.used_nonce = params.token_nonce.clone();
            params.next_nonce = Some(query::new_nonce());
            q.next_nonce = params.next_nonce.clone();
        }
        op.query = Some(q);
        return Ok(Pending {
            shard,
            kind: path.kind,
            op: Box::new(op),
            finish: Finish::List {
                method,
                params: Box::new(params),
                req: Box::new(req.clone()),
            },
        });
    }
    let fields = parse_fields(&pairs).map_err(query_error)?;
    if method == pb::Method::Delete {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "last_modified") {
            let v = v.trim_matches('"');
            op.forced_last_modified = Some(v.parse().map_err(|_| {
                KintoError::invalid(
                    "querystring",
                    Some("last_modified"),
                    format!("\"{v}\" is not a number"),
                )
            })?);
        }
    }
    Ok(Pending {
        shard,
        kind: path.kind,
        op: Box::new(op),
        finish: Finish::Object { method, fields },
    })
}

/// The id of a bucket being POSTed: the body's `data.id`, or a fresh one
/// written into the body.
fn new_bucket_id(op: &mut Operation) -> Result<String, KintoError> {
    let mut data = match op.body_json.as_deref() {
        Some(b) => match serde_json::from_slice(b) {
            Ok(Value::Object(m)) => m,
            _ => return Err(KintoError::invalid("body", Some("data"), "Not a mapping")),
        },
        None => serde_json::Map::new(),
    };
    let id = match data.get("id") {
        Some(Value::String(id)) if valid_id(id) => id.clone(),
        Some(_) => return Err(KintoError::invalid("path", None, "Invalid object id")),
        None => {
            let id = kinto_model::generate_id(kinto_model::Kind::Bucket);
            data.insert("id".into(), Value::String(id.clone()));
            op.body_json = Some(bytes_of(&Value::Object(data)));
            id
        }
    };
    Ok(id)
}

/// Kinto's history compares its id fields as text: an integer (or a
/// boolean, an integer in Python) filter value becomes its `str()`.
fn history_ids_as_text(params: &mut ListParams) {
    for f in &mut params.filters {
        let ids = ["record_id", "collection_id", "bucket_id"];
        if !ids.contains(&f.field.as_str()) || f.op == Op::Has {
            continue;
        }
        f.value = match &f.value {
            Value::Bool(b) => Value::String(if *b { "True" } else { "False" }.into()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Value::String(n.to_string()),
            _ => continue,
        };
    }
}

/// The fields of a history entry (`target.…` filters included).
const HISTORY_FIELDS: &[&str] = &[
    "id",
    "last_modified",
    "date",
    "action",
    "uri",
    "user_id",
    "resource_name",
    "bucket_id",
    "collection_id",
    "group_id",
    "record_id",
    "target",
];

fn shard_kind(kind: Kind) -> kinto_model::Kind {
    use kinto_model::Kind as K;
    match kind {
        Kind::Bucket => K::Bucket,
        Kind::Group => K::Group,
        Kind::Collection => K::Collection,
        Kind::Account => K::Account,
        _ => K::Record,
    }
}

/// Whether `id` can be part of a stored key (see the embedded store's
/// `\0`-separated keys and `kinto_proto::limits`), valid or not.
fn storable_id(id: &str) -> bool {
    id.len() <= kinto_proto::limits::MAX_ID_BYTES && !id.contains('\0')
}

fn valid_id(id: &str) -> bool {
    kinto_model::valid_id(id)
}

/// Checks the content type and splits the body into the operation.
fn read_body(req: &KRequest, method: pb::Method, op: &mut Operation) -> Result<(), KintoError> {
    let types: &[&str] = if method == pb::Method::Patch {
        &[JSON, MERGE_PATCH, JSON_PATCH]
    } else {
        &[JSON]
    };
    check_content_type(req, types)?;
    let parsed;
    let body = match &req.json {
        Some(json) => Some(&**json),
        None => {
            parsed = parse_json(&req.body)?;
            parsed.as_ref()
        }
    };
    if method == pb::Method::Patch && content_type(req).as_deref() == Some(JSON_PATCH) {
        op.patch_kind = PatchKind::JsonPatch as i32;
        match body {
            Some(ops @ Value::Array(_)) => op.body_json = Some(bytes_of(ops)),
            _ => {
                return Err(KintoError::invalid(
                    "body",
                    None,
                    "JSON Patch body must be a list of operations",
                ))
            }
        }
        return Ok(());
    }
    if method == pb::Method::Patch {
        op.patch_kind = match content_type(req).as_deref() {
            Some(MERGE_PATCH) => PatchKind::MergePatch,
            _ => PatchKind::Merge,
        } as i32;
    }
    let env = envelope(body)?;
    // A PATCH with neither `data` nor `permissions` is refused by the shard,
    // after the permission, existence and `If-Match` checks, as in Kinto.
    op.body_json = env.data.map(bytes_of);
    op.permissions_json = env.permissions.map(bytes_of);
    Ok(())
}

/// The effective page size: `min(_limit, paginate_by)`, capped by
/// `storage_max_fetch_size`.
pub(super) fn page_size(app: &App, params: &ListParams) -> u64 {
    let cfg = &app.config;
    let wanted = match (params.limit, cfg.paginate_by) {
        (Some(l), Some(p)) => l.min(p),
        (Some(l), None) => l,
        (None, Some(p)) => p,
        (None, None) => cfg.storage_max_fetch_size,
    };
    wanted.min(cfg.storage_max_fetch_size).max(1)
}

pub(super) fn list_query(app: &App, params: &ListParams) -> ListQuery {
    ListQuery {
        filters: params
            .filters
            .iter()
            .map(|f| pb::Filter {
                field: f.field.clone(),
                op: filter_op(f.op) as i32,
                value_json: bytes_of(&f.value),
            })
            .collect(),
        sort: params
            .sort
            .iter()
            .map(|s| pb::SortKey {
                field: s.field.clone(),
                descending: s.descending,
            })
            .collect(),
        limit: page_size(app, params),
        after_json: params
            .token
            .as_ref()
            .map(|t| bytes_of(&Value::Object(t.clone())))
            .unwrap_or_default(),
        include_tombstones: params.has_timestamp_filter,
        ..Default::default()
    }
}

/// The shard owning the target; `None` for `/buckets` (and an
/// administrator's `/accounts`), which go to every shard.
fn shard_of(app: &App, path: &ResourcePath, memo: Option<&Memo>) -> Option<usize> {
    match path.placement()? {
        // A batch's sub-requests mostly name one bucket: its shard is memoised.
        PlacementKey::Bucket(bucket) => Some(super::memo::shard_of(memo, app, bucket)),
        key => Some(app.shards.shard_of_key(key)),
    }
}

/// `DELETE /buckets` deletes exactly one page of the merged order: every
/// shard first says what it would delete (a dry run, where the
/// preconditions are checked against the lists as they were), then deletes
/// the chosen ids only. Each shard deleting its own first page would delete
/// more than the page it answers.
async fn delete_everywhere(app: &App, op: Operation) -> Result<OpResult, KintoError> {
    let mut probe = op.clone();
    if let Some(q) = probe.query.as_mut() {
        (q.dry_run, q.used_nonce, q.next_nonce) = (true, None, None);
    }
    let page = fan_out(app, probe).await?;
    let chosen: Vec<Value> = match serde_json::from_slice(&page.data_json) {
        Ok(Value::Array(rows)) => rows.iter().filter_map(|r| r.get("id").cloned()).collect(),
        _ => Vec::new(),
    };
    let mut op = op;
    (op.if_match, op.if_none_match) = (None, None);
    if let Some(q) = op.query.as_mut() {
        q.filters.push(pb::Filter {
            field: "id".into(),
            op: pb::FilterOp::In as i32,
            value_json: bytes_of(&Value::Array(chosen.clone())),
        });
    }
    let mut done = fan_out(app, op).await?;
    // The tombstones in the page's order, as Kinto deletes them.
    let mut rows = match serde_json::from_slice(&done.data_json) {
        Ok(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    rows.sort_by_key(|r| chosen.iter().position(|id| Some(id) == r.get("id")));
    done.data_json = bytes_of(&Value::Array(rows));
    done.has_more = page.has_more;
    Ok(done)
}

/// Merges plural results from every shard: a k-way merge in the requested
/// order, cut at the page size; the list timestamp is the newest of all.
async fn fan_out(app: &App, mut op: Operation) -> Result<OpResult, KintoError> {
    let q = op.query.clone().unwrap_or_default();
    // Each shard has its own bucket-list timestamp: preconditions are checked
    // here, against the merged one.
    let (if_match, if_none_match) = (op.if_match.take(), op.if_none_match.take());
    let method = op.method;
    let sort: Vec<query::SortKey> = q
        .sort
        .iter()
        .map(|s| query::SortKey {
            field: s.field.clone(),
            descending: s.descending,
        })
        .collect();
    let mut rows = Vec::new();
    let (mut timestamp, mut total, mut has_more, mut ok, mut first_err) =
        (0, 0, false, false, None);
    // A read (a `DELETE`'s dry run included) is merged only from parts that
    // cover every slot once; a delete runs once.
    let read = method != pb::Method::Delete as i32 || q.dry_run;
    for (shard, r) in app
        .shards
        .execute_all(op, read)
        .await?
        .into_iter()
        .enumerate()
    {
        match r {
            Ok(r) => {
                ok = true;
                timestamp = timestamp.max(r.timestamp);
                total += r.total;
                has_more |= r.has_more;
                let items: Vec<Value> =
                    crate::reply::decode_printed(Some(shard), "execute", &r.data_json)?;
                rows.extend(items);
            }
            // Not a permission matter: a shard is down or refused, or (a
            // DELETE's) `_token` was used.
            Err(e) if e.kind.spec().http_status >= 500 => return Err(e),
            Err(e) if e.kind == ErrorKind::InvalidParameters => return Err(e),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if !ok {
        return Err(first_err.unwrap_or_else(|| KintoError::unavailable("no shard answered")));
    }
    check_list_preconditions(method, if_match, if_none_match, timestamp)?;
    query::sort_by_keys(&mut rows, &sort, |v| v);
    if q.limit > 0 && rows.len() as u64 > q.limit {
        rows.truncate(q.limit as usize);
        has_more = true;
    }
    Ok(OpResult {
        status: 200,
        data_json: bytes_of(&Value::Array(rows)),
        permissions_json: None,
        timestamp,
        total,
        has_more,
        cache_expires: None,
        last_json: None,
        served_slots: Vec::new(),
    })
}

/// Kinto's plural preconditions: `If-None-Match` equal to the list
/// timestamp is a 304 on reads; `If-None-Match: *` (a plural always exists)
/// or a different `If-Match` is a 412.
fn check_list_preconditions(
    method: i32,
    if_match: Option<pb::Precondition>,
    if_none_match: Option<pb::Precondition>,
    timestamp: u64,
) -> Result<(), KintoError> {
    use pb::precondition::Value as P;
    let value = |p: Option<pb::Precondition>| p.and_then(|p| p.value);
    let (if_match, if_none_match) = (value(if_match), value(if_none_match));
    let read = method != pb::Method::Delete as i32;
    if read && if_none_match == Some(P::Timestamp(timestamp)) {
        return Err(KintoError::new(ErrorKind::NotModified).with_timestamp(timestamp));
    }
    let modified = matches!(if_match, Some(P::Timestamp(t)) if t != timestamp);
    if matches!(if_none_match, Some(P::Any(_))) || modified {
        return Err(KintoError::new(ErrorKind::PreconditionFailed).with_timestamp(timestamp));
    }
    Ok(())
}

fn object_response(
    shard: Option<usize>,
    method: pb::Method,
    fields: Option<&[String]>,
    r: OpResult,
) -> Result<KResponse, KintoError> {
    let mut resp = if method == pb::Method::Head {
        KResponse::empty(200).with("content-type", "application/json")
    } else if let Some(f) = fields.filter(|_| method == pb::Method::Get) {
        // Kinto's `get` cuts the object, its permissions included; its
        // other methods ignore `_fields`.
        let data: Value = crate::reply::decode_printed(shard, "execute", &r.data_json)?;
        KResponse::json(
            r.status as u16,
            object([("data", query::project(&data, f))]),
        )
    } else {
        // The shard printed the object and its ACL: passed through as is.
        let perms = r.permissions_json.as_deref();
        let mut out = Vec::with_capacity(r.data_json.len() + perms.map_or(0, <[u8]>::len) + 24);
        out.extend_from_slice(b"{\"data\":");
        out.extend_from_slice(or_json(&r.data_json, b"null"));
        if let Some(p) = perms {
            out.extend_from_slice(b",\"permissions\":");
            out.extend_from_slice(or_json(p, b"{}"));
        }
        out.push(b'}');
        KResponse::printed(r.status as u16, out)
    };
    resp.set_timestamp(r.timestamp);
    if matches!(method, pb::Method::Get | pb::Method::Head) {
        match r.cache_expires {
            Some(seconds) => resp.set_cache_expires(seconds),
            None => resp.set("cache-control", "no-cache, no-store"),
        }
    }
    Ok(resp)
}

/// A shard's printed JSON, or `default` where it sent none.
fn or_json<'a>(printed: &'a [u8], default: &'a [u8]) -> &'a [u8] {
    if printed.is_empty() {
        default
    } else {
        printed
    }
}

fn list_response(
    app: &App,
    req: &KRequest,
    shard: Option<usize>,
    method: pb::Method,
    params: &ListParams,
    r: OpResult,
) -> Result<KResponse, KintoError> {
    if method == pb::Method::Head {
        // Kinto answers a HEAD with the count alone: no page, no `Next-Page`.
        let mut resp = KResponse::empty(200).with("content-type", "application/json");
        resp.set("total-objects", r.total.to_string());
        resp.set("total-records", r.total.to_string());
        return Ok(list_headers(resp, method, params, &r, None));
    }
    let last = r.last_json.as_deref().filter(|_| r.has_more);
    if (!r.has_more || last.is_some()) && params.fields.is_none() {
        // Nothing to read in the page but its last row (the next page's
        // keyset): the shard's printed list passes through.
        let next = match last {
            Some(last) => {
                let last: Value = crate::reply::decode_printed(shard, "execute", last)?;
                Some(next_page(app, req, params, &last, page_size(app, params)))
            }
            None => None,
        };
        let mut out = Vec::with_capacity(r.data_json.len() + 10);
        out.extend_from_slice(b"{\"data\":");
        out.extend_from_slice(or_json(&r.data_json, b"[]"));
        out.push(b'}');
        let resp = KResponse::printed(200, out);
        return Ok(list_headers(resp, method, params, &r, next));
    }
    let mut items: Vec<Value> = crate::reply::decode_printed(shard, "execute", &r.data_json)?;
    let next = if r.has_more {
        items
            .last()
            .map(|last| next_page(app, req, params, last, page_size(app, params)))
    } else {
        None
    };
    if let Some(f) = &params.fields {
        items = items.iter().map(|o| query::project(o, f)).collect();
    }
    let resp = KResponse::json(200, object([("data", Value::Array(items))]));
    Ok(list_headers(resp, method, params, &r, next))
}

/// A list answer's headers: ETag, caching, next page, deprecation alert.
fn list_headers(
    mut resp: KResponse,
    method: pb::Method,
    params: &ListParams,
    r: &OpResult,
    next: Option<String>,
) -> KResponse {
    resp.set_timestamp(r.timestamp);
    if method != pb::Method::Delete {
        match r.cache_expires {
            Some(seconds) => resp.set_cache_expires(seconds),
            None => resp.set("cache-control", "no-cache, no-store"),
        }
    }
    if let Some(url) = next {
        resp.set("next-page", url);
    }
    if params.deprecated_to {
        resp.set(
            "alert",
            json!({
                "code": "soft-eol",
                "message": "_to is now deprecated, you should use _before instead",
                "url": "https://kinto.readthedocs.io/en/2.4.0/api/resource.html#list-of-available-url-parameters"
            })
            .to_string(),
        );
    }
    resp
}

/// The absolute URL of the next page: the same query with `_limit` and a
/// `_token` holding the keyset of the last row.
pub(super) fn next_page(
    app: &App,
    req: &KRequest,
    params: &ListParams,
    last: &Value,
    limit: u64,
) -> String {
    let keyset = query::keyset_of(last, &params.sort);
    let offset = params.token_offset + limit;
    let token = match &params.next_nonce {
        Some(nonce) => query::encode_token_with_nonce(&keyset, offset, nonce),
        None => query::encode_token(&keyset, offset),
    };
    // Kinto keeps the parameters' order, replacing `_limit` and `_token` in
    // place (appended when absent); a repeated key keeps its first place.
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in req.query_pairs() {
        match params.iter_mut().find(|(key, _)| *key == k) {
            Some(p) => p.1 = v,
            None => params.push((k, v)),
        }
    }
    for (k, v) in [("_limit", limit.to_string()), ("_token", token)] {
        match params.iter_mut().find(|(key, _)| key == k) {
            Some(p) => p.1 = v,
            None => params.push((k.to_owned(), v)),
        }
    }
    let mut qs = form_urlencoded::Serializer::new(String::new());
    qs.extend_pairs(&params);
    format!("{}{}?{}", app.base_url(req), req.path, qs.finish())
}
