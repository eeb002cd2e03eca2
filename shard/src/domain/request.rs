//! One operation as the domain sees it, decoded once from protobuf, and its
//! outcome.

use super::resource::Target;
use crate::storage::StoredObject;
use kinto_proto::pb;
use kinto_proto::query::{Filter, Op, SortKey};
use kinto_proto::KintoError;
use serde_json::{Map, Value};

/// An `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pre {
    Any,
    At(u64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    pub limit: Option<u64>,
    pub after: Option<Map<String, Value>>,
    pub include_tombstones: bool,
    /// Plural DELETE: the nonce of the `_token` to consume, and the one to
    /// keep for the `Next-Page` token (`tokens.rs`).
    pub used_nonce: Option<String>,
    pub next_nonce: Option<String>,
    /// Plural DELETE: select only, as a list (`DELETE /buckets`' first step).
    pub dry_run: bool,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub method: pb::Method,
    pub caller: pb::Caller,
    pub body: Option<Value>,
    pub permissions: Option<Value>,
    pub patch_kind: pb::PatchKind,
    pub if_match: Option<Pre>,
    pub if_none_match: Option<Pre>,
    pub query: ListQuery,
    pub forced_last_modified: Option<u64>,
    pub generation: u64,
    /// Default bucket: create the bucket / collection of the path first.
    pub implicit_bucket: bool,
    pub implicit_collection: bool,
    /// Set by the caller of [`Request::decode`]: how long it may run.
    pub budget: super::budget::Budget,
}

fn json(bytes: &[u8]) -> Result<Value, KintoError> {
    serde_json::from_slice(bytes)
        .map_err(|e| KintoError::invalid("body", None, format!("Invalid JSON: {e}")))
}

/// The gateway refuses long or deep field paths with a 400; a shard checks
/// again, since what it evaluates costs up to depth × length per row.
fn field_path(field: &str) -> Result<(), KintoError> {
    kinto_proto::limits::check_field_path(field)
        .map_err(|why| KintoError::invalid("querystring", Some(field), why))
}

fn pre(p: Option<pb::Precondition>) -> Option<Pre> {
    match p?.value? {
        pb::precondition::Value::Any(_) => Some(Pre::Any),
        pb::precondition::Value::Timestamp(t) => Some(Pre::At(t)),
    }
}

/// The gateway always names the operator: an unset (0) or unknown one is
/// its bug, never read as `EQ`.
fn op(o: i32) -> Result<Op, KintoError> {
    use pb::FilterOp as F;
    Ok(
        match F::try_from(o).map_err(|_| KintoError::internal("unknown filter op"))? {
            F::Unspecified => return Err(KintoError::internal("filter without op")),
            F::Eq => Op::Eq,
            F::Not => Op::Not,
            F::Lt => Op::Lt,
            F::Gt => Op::Gt,
            F::Min => Op::Min,
            F::Max => Op::Max,
            F::In => Op::In,
            F::Exclude => Op::Exclude,
            F::Like => Op::Like,
            F::Has => Op::Has,
            F::Contains => Op::Contains,
            F::ContainsAny => Op::ContainsAny,
        },
    )
}

/// A PATCH names its kind (the gateway sets it from the content type): an
/// unset (0) or unknown one is the gateway's bug, never read as a merge.
/// Other methods carry none.
fn patch_kind(method: pb::Method, kind: i32) -> Result<pb::PatchKind, KintoError> {
    if method != pb::Method::Patch {
        return Ok(pb::PatchKind::Unspecified);
    }
    match pb::PatchKind::try_from(kind) {
        Ok(pb::PatchKind::Unspecified) => Err(KintoError::internal("PATCH without patch kind")),
        Ok(kind) => Ok(kind),
        Err(_) => Err(KintoError::internal("unknown patch kind")),
    }
}

impl ListQuery {
    pub fn decode(q: pb::ListQuery) -> Result<ListQuery, KintoError> {
        let filters = q
            .filters
            .iter()
            .map(|f| {
                field_path(&f.field)?;
                Ok(Filter {
                    field: f.field.clone(),
                    op: op(f.op)?,
                    value: json(&f.value_json)?,
                })
            })
            .collect::<Result<Vec<_>, KintoError>>()?;
        let sort = q
            .sort
            .iter()
            .map(|s| {
                field_path(&s.field)?;
                Ok(SortKey {
                    field: s.field.clone(),
                    descending: s.descending,
                })
            })
            .collect::<Result<Vec<_>, KintoError>>()?;
        let after = if q.after_json.is_empty() {
            None
        } else {
            match json(&q.after_json)? {
                Value::Object(m) => Some(m),
                _ => return Err(KintoError::internal("pagination keyset is not an object")),
            }
        };
        Ok(ListQuery {
            filters,
            sort,
            limit: (q.limit > 0).then_some(q.limit),
            after,
            include_tombstones: q.include_tombstones,
            used_nonce: q.used_nonce,
            next_nonce: q.next_nonce,
            dry_run: q.dry_run,
        })
    }
}

impl Request {
    pub fn decode(o: pb::Operation) -> Result<Request, KintoError> {
        let target = Target::from_pb(
            o.target
                .as_ref()
                .ok_or_else(|| KintoError::internal("operation without target"))?,
        )?;
        // 0 (unset) is no method, as an unknown one: the gateway's bug.
        let method = pb::Method::try_from(o.method)
            .ok()
            .filter(|m| *m != pb::Method::Unspecified)
            .ok_or_else(|| KintoError::internal("operation without method"))?;
        let query = ListQuery::decode(o.query.unwrap_or_default())?;
        Ok(Request {
            target,
            method,
            caller: o.caller.unwrap_or_default(),
            body: o.body_json.as_deref().map(json).transpose()?,
            permissions: o.permissions_json.as_deref().map(json).transpose()?,
            patch_kind: patch_kind(method, o.patch_kind)?,
            if_match: pre(o.if_match),
            if_none_match: pre(o.if_none_match),
            query,
            forced_last_modified: o.forced_last_modified,
            generation: o.generation,
            implicit_bucket: o.implicit_bucket,
            implicit_collection: o.implicit_collection,
            budget: Default::default(),
        })
    }
}

/// What an operation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u32,
    pub data: Data,
    pub permissions: Option<Value>,
    pub timestamp: u64,
    pub total: u64,
    pub has_more: bool,
    /// Record reads by anonymous callers: the collection's `cache_expires`.
    pub cache_expires: Option<i64>,
    /// A list page with more to come: its last object, printed.
    pub last: Option<Vec<u8>>,
}

/// An outcome's JSON: built as a value (lists), or one object printed
/// straight from what is stored, without copying it into a value first.
#[derive(Debug, Clone)]
pub enum Data {
    Value(Value),
    Printed(Vec<u8>),
}

impl Outcome {
    pub fn object(
        status: u32,
        object: &StoredObject,
        permissions: Option<Value>,
        timestamp: u64,
    ) -> Self {
        Outcome {
            status,
            data: Data::Printed(object.print_json()),
            permissions,
            timestamp,
            total: 0,
            has_more: false,
            cache_expires: None,
            last: None,
        }
    }

    pub fn list(data: Value, timestamp: u64, total: u64, has_more: bool) -> Self {
        Outcome {
            status: 200,
            data: Data::Value(data),
            permissions: None,
            timestamp,
            total,
            has_more,
            cache_expires: None,
            last: None,
        }
    }

    /// A list page printed straight from the stored objects (no JSON value
    /// is built for it), with its last object when more remain.
    pub fn page<'a>(
        rows: impl ExactSizeIterator<Item = (&'a StoredObject, Option<&'a [u8]>)>,
        timestamp: u64,
        total: u64,
        has_more: bool,
    ) -> Self {
        let n = rows.len();
        let mut out = Vec::with_capacity(n.saturating_mul(128).saturating_add(2));
        let mut last = None;
        out.push(b'[');
        for (i, (o, printed)) in rows.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let start = out.len();
            match printed {
                Some(bytes) => out.extend_from_slice(bytes),
                None => o.print_into(&mut out),
            }
            if has_more && i + 1 == n {
                last = out.get(start..).map(<[u8]>::to_vec);
            }
        }
        out.push(b']');
        Outcome {
            data: Data::Printed(out),
            last,
            ..Outcome::list(Value::Null, timestamp, total, has_more)
        }
    }

    /// A list page the store printed whole ([`crate::storage::Storage::print_page`]).
    pub fn printed_page(page: crate::storage::PrintedPage, timestamp: u64) -> Self {
        let last = (page.has_more)
            .then(|| page.json.get(page.last.clone()).map(<[u8]>::to_vec))
            .flatten();
        Outcome {
            data: Data::Printed(page.json),
            last,
            ..Outcome::list(Value::Null, timestamp, 0, page.has_more)
        }
    }

    pub fn into_pb(self) -> pb::OpResult {
        pb::OpResult {
            status: self.status,
            data_json: match self.data {
                Data::Value(v) => serde_json::to_vec(&v).unwrap_or_default(),
                Data::Printed(bytes) => bytes,
            },
            permissions_json: self
                .permissions
                .map(|p| serde_json::to_vec(&p).unwrap_or_default()),
            timestamp: self.timestamp,
            total: self.total,
            has_more: self.has_more,
            cache_expires: self.cache_expires,
            last_json: self.last,
            served_slots: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::ErrorKind;

    fn operation(method: pb::Method) -> pb::Operation {
        pb::Operation {
            target: Some(pb::Target {
                kind: pb::Kind::Bucket as i32,
                bucket_id: "b".into(),
                object_id: "b".into(),
                ..Default::default()
            }),
            method: method as i32,
            ..Default::default()
        }
    }

    fn refused(o: pb::Operation) -> bool {
        matches!(Request::decode(o), Err(e) if e.kind == ErrorKind::Internal)
    }

    #[test]
    fn a_patch_without_its_kind_is_refused_not_merged() {
        let mut o = operation(pb::Method::Patch);
        assert!(refused(o.clone()), "unset patch kind");
        o.patch_kind = 99;
        assert!(refused(o.clone()), "unknown patch kind");
        o.patch_kind = pb::PatchKind::Merge as i32;
        let r = Request::decode(o).map(|r| r.patch_kind);
        assert!(matches!(r, Ok(pb::PatchKind::Merge)));
        // Other methods carry no patch kind.
        assert!(Request::decode(operation(pb::Method::Get)).is_ok());
    }

    #[test]
    fn a_filter_without_its_op_is_refused_not_read_as_eq() {
        let with_op = |op: i32| {
            let mut o = operation(pb::Method::Get);
            if let Some(t) = o.target.as_mut() {
                t.object_id.clear();
            }
            o.query = Some(pb::ListQuery {
                filters: vec![pb::Filter {
                    field: "x".into(),
                    op,
                    value_json: b"1".to_vec(),
                }],
                ..Default::default()
            });
            o
        };
        assert!(refused(with_op(pb::FilterOp::Unspecified as i32)));
        assert!(refused(with_op(99)));
        let r = Request::decode(with_op(pb::FilterOp::Eq as i32));
        assert!(matches!(r, Ok(r) if r.query.filters[0].op == Op::Eq));
    }

    #[test]
    fn an_operation_without_its_method_is_refused() {
        assert!(refused(operation(pb::Method::Unspecified)));
    }
}
