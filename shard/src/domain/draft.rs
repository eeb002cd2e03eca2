//! What a write proposes, before it is checked and stamped: the data and
//! ACL of the new object, from the request's body (PUT, POST) or its patch
//! (PATCH) over the existing object, and the client's `last_modified`.

use super::cache_expires;
use super::patch;
use super::request::Request;
use super::resource::Kind;
use crate::storage::{Acl, StoredObject};
use kinto_proto::{pb, KintoError};
use serde_json::{Map, Value};

pub(super) struct Draft {
    pub data: Map<String, Value>,
    pub acl: Acl,
    /// The body's integer `last_modified`, kept only where Kinto keeps it.
    pub client_ts: Option<u64>,
}

impl Draft {
    /// A PUT: the body replaces the data (or keeps the existing data when it
    /// has none), `permissions` replace the ACL.
    pub fn replacing(
        req: &Request,
        id: &str,
        existing: Option<&StoredObject>,
    ) -> Result<Draft, KintoError> {
        let kind = req.target.kind;
        let body = body_object(req.body.as_ref())?;
        let had_data = body.is_some();
        let mut data = match body {
            Some(d) => d,
            None => existing.map(|o| o.data.clone()).unwrap_or_default(),
        };
        if kind == Kind::Collection {
            cache_expires::coerce(&mut data, "data.cache_expires")?;
        }
        default_members(kind, &mut data, had_data);
        let client_ts = split_reserved(&mut data, id)?;
        let client_ts = match existing {
            Some(o) => client_ts.filter(|ts| *ts > o.last_modified),
            None => client_ts,
        };
        let mut acl = match &req.permissions {
            Some(p) => patch::replace_acl(patch::parse_permissions(kind, p)?),
            None => existing.map(|o| o.permissions.clone()).unwrap_or_default(),
        };
        patch::add_writer(&mut acl, req.writer(id).as_deref());
        Ok(Draft {
            data,
            acl,
            client_ts,
        })
    }

    /// A POST that creates: `data` from [`body_data`], with its id checked.
    /// `permissions`: the request's, parsed (a POST checks them before it
    /// looks for an existing object, as Kinto does).
    pub fn creating(
        req: &Request,
        id: &str,
        mut data: Map<String, Value>,
        permissions: Option<patch::AclChange>,
    ) -> Result<Draft, KintoError> {
        let client_ts = split_reserved(&mut data, id)?;
        let mut acl = permissions.map(patch::replace_acl).unwrap_or_default();
        patch::add_writer(&mut acl, req.writer(id).as_deref());
        Ok(Draft {
            data,
            acl,
            client_ts,
        })
    }

    /// An object created implicitly (Kinto's default bucket): empty, owned
    /// by the caller.
    pub fn implicit(req: &Request, id: &str) -> Draft {
        let mut acl = Acl::new();
        patch::add_writer(&mut acl, req.writer(id).as_deref());
        Draft {
            data: Map::new(),
            acl,
            client_ts: None,
        }
    }

    /// A PATCH of `existing`: merge, JSON merge patch or JSON patch.
    pub fn patching(req: &Request, id: &str, existing: &StoredObject) -> Result<Draft, KintoError> {
        let kind = req.target.kind;
        // Kinto's `patch()` asks for a change only after its 404 and 412.
        if req.patch_kind != pb::PatchKind::JsonPatch
            && req.body.is_none()
            && req.permissions.is_none()
        {
            return Err(KintoError::invalid(
                "body",
                Some("data"),
                "Provide at least one of data or permissions",
            ));
        }
        let mut data = existing.data.clone();
        let mut acl = existing.permissions.clone();
        let mut client_ts = None;
        match req.patch_kind {
            pb::PatchKind::JsonPatch => {
                let ops = req.body.clone().unwrap_or(Value::Array(vec![]));
                data.insert("id".into(), Value::String(id.to_owned()));
                patch::json_patch(kind, &mut data, &mut acl, &ops)?;
                client_ts = split_reserved(&mut data, id)?;
            }
            patch_kind => {
                if let Some(mut change) = body_object(req.body.as_ref())? {
                    client_ts = split_reserved(&mut change, id)?;
                    if patch_kind == pb::PatchKind::MergePatch {
                        patch::merge_patch_data(&mut data, change);
                    } else {
                        patch::merge_data(&mut data, change);
                    }
                }
                if let Some(p) = &req.permissions {
                    let change = patch::parse_permissions(kind, p)?;
                    if patch_kind == pb::PatchKind::MergePatch {
                        patch::merge_patch_acl(&mut acl, change);
                    } else {
                        patch::merge_acl(&mut acl, change);
                    }
                }
            }
        }
        if kind == Kind::Collection {
            cache_expires::coerce(&mut data, "cache_expires")?;
        }
        // Kinto validates the patched group: `members` appears, whatever changed.
        default_members(kind, &mut data, true);
        let client_ts = client_ts.filter(|ts| *ts > existing.last_modified);
        patch::add_writer(&mut acl, req.writer(id).as_deref());
        Ok(Draft {
            data,
            acl,
            client_ts,
        })
    }
}

/// A POSTed body's `data` (empty without one), before its id is known.
pub(super) fn body_data(req: &Request) -> Result<Map<String, Value>, KintoError> {
    let body = body_object(req.body.as_ref())?;
    let had_data = body.is_some();
    let mut data = body.unwrap_or_default();
    default_members(req.target.kind, &mut data, had_data);
    Ok(data)
}

/// Takes `id` and `last_modified` out of a body's data: the id must match
/// the URL, and only an integer `last_modified` is kept (Kinto drops others).
fn split_reserved(data: &mut Map<String, Value>, id: &str) -> Result<Option<u64>, KintoError> {
    if let Some(body_id) = data.remove("id") {
        if body_id.as_str() != Some(id) {
            return Err(KintoError::invalid(
                "body",
                Some("id"),
                "Object id does not match existing object",
            ));
        }
    }
    Ok(data.remove("last_modified").and_then(|v| v.as_u64()))
}

fn body_object(value: Option<&Value>) -> Result<Option<Map<String, Value>>, KintoError> {
    match value {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(KintoError::invalid(
            "body",
            Some("data"),
            format!("{other} is not a mapping type"),
        )),
    }
}

/// Kinto's group schema gives `members: []` to a body's `data` (and to any
/// patched group); a group PUT or POSTed with permissions only has none.
fn default_members(kind: Kind, data: &mut Map<String, Value>, had_data: bool) {
    if kind == Kind::Group && had_data {
        data.entry("members")
            .or_insert_with(|| Value::Array(vec![]));
    }
}
