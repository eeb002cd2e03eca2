//! Operations on one object: GET, PUT, POST (create in a plural), PATCH and
//! DELETE, with Kinto's 401/403/404/412 decision table (kinto-api §3.5, §5.2).

use super::acl::{allowed, Chain, Need, Principals};
use super::cache_expires;
use super::clock::stamp;
use super::history::Change;
use super::patch;
use super::request::{Outcome, Pre, Request};
use super::resource::{self, Kind, Target};
use super::schema;
use super::{deny, visible_acl, Shard};
use crate::storage::{Acl, StoredObject, Write};
use kinto_proto::limits::MAX_PRINCIPAL_BYTES;
use kinto_proto::{pb, ErrorKind, KintoError};
use serde_json::{Map, Value};

/// Everything one object operation reads before deciding.
struct Loaded {
    bucket: Option<std::sync::Arc<StoredObject>>,
    collection: Option<std::sync::Arc<StoredObject>>,
    /// The row at the target, tombstone included (its timestamp is indexed).
    raw: Option<StoredObject>,
}

impl Loaded {
    fn existing(&self) -> Option<&StoredObject> {
        self.raw.as_ref().filter(|o| !o.deleted)
    }

    fn chain(&self, with_object: bool) -> Chain<'_> {
        Chain {
            bucket: self.bucket.as_deref(),
            collection: self.collection.as_deref(),
            object: if with_object { self.existing() } else { None },
        }
    }
}

fn precondition_failed(existing: Option<&StoredObject>) -> KintoError {
    let e = KintoError::new(ErrorKind::PreconditionFailed);
    match existing {
        Some(o) => e
            .with_details(serde_json::json!({ "existing": o.to_json() }))
            .with_timestamp(o.last_modified),
        None => e,
    }
}

/// `If-Match` / `If-None-Match: *` against the current object.
fn check_preconditions(req: &Request, existing: Option<&StoredObject>) -> Result<(), KintoError> {
    if let (Some(Pre::Any), Some(o)) = (req.if_none_match, existing) {
        return Err(precondition_failed(Some(o)));
    }
    match (req.if_match, existing) {
        (Some(_), None) => Err(precondition_failed(None)),
        (Some(Pre::At(ts)), Some(o)) if ts != o.last_modified => Err(precondition_failed(Some(o))),
        _ => Ok(()),
    }
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

/// A group's `members`, when present: a list of user ids; group URIs and
/// `system.Everyone` cannot be members.
fn check_members(data: &Map<String, Value>) -> Result<Vec<String>, KintoError> {
    let Some(members) = data.get("members") else {
        return Ok(vec![]);
    };
    let Value::Array(items) = members else {
        return Err(KintoError::invalid(
            "body",
            Some("data.members"),
            format!("{members} is not iterable"),
        ));
    };
    items
        .iter()
        .map(|m| match m.as_str() {
            // Members are keys of the membership index: bounded like every key.
            Some(s) if s.len() > MAX_PRINCIPAL_BYTES => Err(KintoError::invalid(
                "body",
                Some("data.members"),
                format!("a member is longer than {MAX_PRINCIPAL_BYTES} bytes"),
            )),
            Some(s) if !s.starts_with("/buckets/") && s != "system.Everyone" => Ok(s.to_owned()),
            _ => Err(KintoError::invalid(
                "body",
                Some("data.members"),
                format!(
                    "'{}' is not a valid user ID.",
                    m.as_str().unwrap_or(&m.to_string())
                ),
            )),
        })
        .collect()
}

fn members_of(o: Option<&StoredObject>) -> Vec<String> {
    o.and_then(|o| o.data.get("members"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Shard {
    /// [`check_preconditions`] under the write lock: Kinto's 412 for a
    /// missing object carries the list's timestamp.
    async fn check_preconditions_locked(
        &self,
        req: &Request,
        existing: Option<&StoredObject>,
    ) -> Result<(), KintoError> {
        match check_preconditions(req, existing) {
            Err(e) if existing.is_none() => {
                Err(e.with_timestamp(self.list_timestamp_locked(&req.target).await?))
            }
            other => other,
        }
    }

    async fn load(&self, t: &Target, id: &str) -> Result<Loaded, KintoError> {
        let (bucket, collection) = self.parents(t).await?;
        let raw = self.storage.get(&t.parent_id(), t.kind.name(), id).await?;
        Ok(Loaded {
            bucket,
            collection,
            raw,
        })
    }

    /// Records need their collection; its absence is a 404 errno 111.
    fn require_parent(t: &Target, l: &Loaded) -> Result<(), KintoError> {
        if t.kind == Kind::Record && l.collection.is_none() {
            return Err(resource::missing_collection(&t.collection));
        }
        Ok(())
    }

    /// The object is missing: 404 if the caller could see it (even with an
    /// `If-Match`, as Kinto 26 answers), else 401/403 so existence does not leak.
    fn missing(t: &Target, l: &Loaded, who: &Principals, visible: bool) -> KintoError {
        if !visible {
            return deny(who);
        }
        if let Err(e) = Self::require_parent(t, l) {
            return e;
        }
        let id = t.id.as_deref().unwrap_or_default();
        KintoError::not_found(ErrorKind::ObjectNotFound, id, t.kind.name())
    }

    fn read_need(kind: Kind) -> Need {
        match kind {
            Kind::Bucket | Kind::Collection => Need::ReadAttributes,
            _ => Need::Read,
        }
    }

    /// The common start of PATCH and DELETE: lock the bucket, load, apply
    /// the missing-object rules, require `write`, check preconditions.
    async fn load_for_update(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<(super::WriteGuard<'_>, Loaded), KintoError> {
        let t = &req.target;
        let id = t.id.clone().unwrap_or_default();
        let guard = self.lock_for_write(t).await;
        let l = self.load(t, &id).await?;
        Self::require_parent(t, &l)?;
        let g = &self.settings.grants;
        let Some(existing) = l.existing() else {
            let visible = allowed(t.kind, Need::Write, l.chain(false), who, g)
                || allowed(t.kind, Need::Read, l.chain(false), who, g);
            return Err(Self::missing(t, &l, who, visible));
        };
        if !allowed(t.kind, Need::Write, l.chain(true), who, g) {
            return Err(deny(who));
        }
        Self::require_parent(t, &l)?;
        check_preconditions(req, Some(existing))?;
        Ok((guard, l))
    }

    pub(super) async fn get(&self, req: &Request, who: &Principals) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let id = t.id.as_deref().unwrap_or_default();
        let l = self.load(t, id).await?;
        let g = &self.settings.grants;
        if !allowed(t.kind, Self::read_need(t.kind), l.chain(true), who, g) {
            return Err(deny(who));
        }
        let Some(o) = l.existing() else {
            return Err(Self::missing(t, &l, who, true));
        };
        Self::require_parent(t, &l)?;
        check_preconditions(req, Some(o))?;
        if req.if_none_match == Some(Pre::At(o.last_modified)) {
            return Err(KintoError::new(ErrorKind::NotModified).with_timestamp(o.last_modified));
        }
        let mut outcome = Outcome::object(
            200,
            o,
            Some(visible_acl(&o.permissions, who)),
            o.last_modified,
        );
        if t.kind == Kind::Record && who.user_id.is_none() {
            outcome.cache_expires = cache_expires::of(l.collection.as_deref());
        }
        Ok(outcome)
    }

    pub(super) async fn put(&self, req: &Request, who: &Principals) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let id = t.id.clone().unwrap_or_default();
        self.check_account_owner(req, who, &id)?;
        let _guard = self.lock_for_write(t).await;
        let l = self.load(t, &id).await?;
        let existing = l.existing();
        let need = if existing.is_some() && req.if_none_match != Some(Pre::Any) {
            Need::Write
        } else {
            Need::Create
        };
        // Kinto finds a record's collection missing before any permission.
        Self::require_parent(t, &l)?;
        if !allowed(t.kind, need, l.chain(true), who, &self.settings.grants) {
            return Err(deny(who));
        }
        self.check_preconditions_locked(req, existing).await?;
        let body = body_object(req.body.as_ref())?;
        let had_data = body.is_some();
        let mut data = match body {
            Some(d) => d,
            None => existing.map(|o| o.data.clone()).unwrap_or_default(),
        };
        if t.kind == Kind::Collection {
            cache_expires::coerce(&mut data, "data.cache_expires")?;
        }
        default_members(t.kind, &mut data, had_data);
        let client_ts = split_reserved(&mut data, &id)?;
        let client_ts = match existing {
            Some(o) => client_ts.filter(|ts| *ts > o.last_modified),
            None => client_ts,
        };
        let mut acl = match &req.permissions {
            Some(p) => patch::replace_acl(patch::parse_permissions(t.kind, p)?),
            None => existing.map(|o| o.permissions.clone()).unwrap_or_default(),
        };
        patch::add_writer(&mut acl, req.writer(&id).as_deref());
        let status = if existing.is_some() { 200 } else { 201 };
        self.write_object(t, &l, id, data, acl, client_ts, who, status)
            .await
    }

    pub(super) async fn create(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let body = body_object(req.body.as_ref())?;
        let had_data = body.is_some();
        let mut data = body.unwrap_or_default();
        default_members(t.kind, &mut data, had_data);
        let id = match data.get("id") {
            Some(Value::String(s)) if resource::valid_id_for(t.kind, s) => s.clone(),
            Some(_) => return Err(resource::invalid_id()),
            None => resource::generate_id(t.kind),
        };
        self.check_account_owner(req, who, &id)?;
        // A new bucket was placed by its id: it must be the one routed on.
        if matches!(t.kind, Kind::Bucket | Kind::Account)
            && resource::placement_key(t.kind, &t.bucket, &id) != t.bucket
        {
            return Err(KintoError::internal(
                "bucket created on a shard not routed by its id",
            ));
        }
        let _guard = self.lock_for_write(t).await;
        let l = self.load(t, &id).await?;
        let g = &self.settings.grants;
        Self::require_parent(t, &l)?;
        if !allowed(t.kind, Need::Create, l.chain(false), who, g) {
            return Err(deny(who));
        }
        if t.kind == Kind::Collection {
            cache_expires::coerce(&mut data, "data.cache_expires")?;
        }
        // Validated before the existing object is answered, as Kinto does.
        let permissions = match &req.permissions {
            Some(p) => Some(patch::parse_permissions(t.kind, p)?),
            None => None,
        };
        if let Some(o) = l.existing() {
            // Kinto answers 200 with the existing object, unchanged.
            if !allowed(t.kind, Self::read_need(t.kind), l.chain(true), who, g) {
                return Err(deny(who));
            }
            check_preconditions(req, Some(o))?;
            return Ok(Outcome::object(
                200,
                o,
                Some(visible_acl(&o.permissions, who)),
                o.last_modified,
            ));
        }
        self.check_preconditions_locked(req, None).await?;
        let client_ts = split_reserved(&mut data, &id)?;
        let mut acl = permissions.map(patch::replace_acl).unwrap_or_default();
        patch::add_writer(&mut acl, req.writer(&id).as_deref());
        let target = Target {
            id: Some(id.clone()),
            ..t.clone()
        };
        self.write_object(&target, &l, id, data, acl, client_ts, who, 201)
            .await
    }

    /// Kinto's default bucket: the caller's bucket, and the collection of the
    /// path, spring into existence on first use, owned by the caller. No
    /// permission is checked (the gateway derived the bucket from the
    /// caller's id); an existing object is left as it is.
    pub(super) async fn create_implicit(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<(), KintoError> {
        let t = &req.target;
        let bucket = Target {
            kind: Kind::Bucket,
            bucket: t.bucket.clone(),
            collection: String::new(),
            id: Some(t.bucket.clone()),
        };
        let cid = match t.kind {
            Kind::Record => Some(t.collection.clone()),
            Kind::Collection => t.id.clone(),
            _ => None,
        };
        let mut todo = Vec::new();
        if req.implicit_bucket {
            todo.push(bucket);
        }
        if let (true, Some(cid)) = (req.implicit_collection, cid) {
            todo.push(Target {
                kind: Kind::Collection,
                bucket: t.bucket.clone(),
                collection: String::new(),
                id: Some(cid),
            });
        }
        for target in todo {
            let id = target.id.clone().unwrap_or_default();
            // Through the parents cache: the operation reads the same bucket
            // and collection next, so a cold one costs one read, not two. A
            // hit needs no lock: only a deletion makes it stale, and the
            // operation then finds the parent missing as it would have.
            let (parent, resource) = (target.parent_id(), target.kind.name());
            let uri = target.object_uri(&id);
            if self.parent(&parent, resource, &id, uri).await?.is_some() {
                continue;
            }
            let _guard = self.lock_for_write(&target).await;
            let l = self.load(&target, &id).await?;
            if l.existing().is_some() {
                continue;
            }
            if target.kind == Kind::Collection && l.bucket.is_none() {
                continue;
            }
            let mut acl = Acl::new();
            patch::add_writer(&mut acl, req.writer(&id).as_deref());
            self.write_object(&target, &l, id, Map::new(), acl, None, who, 201)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn patch(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let id = t.id.clone().unwrap_or_default();
        // Kinto checks `write` on the account before its owner: another
        // user's account is a 403, not a 400.
        let (_guard, l) = self.load_for_update(req, who).await?;
        self.check_account_owner(req, who, &id)?;
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
        let Some(existing) = l.existing() else {
            return Err(KintoError::internal("load_for_update returned no object"));
        };
        let mut data = existing.data.clone();
        let mut acl = existing.permissions.clone();
        let mut client_ts = None;
        match req.patch_kind {
            pb::PatchKind::JsonPatch => {
                let ops = req.body.clone().unwrap_or(Value::Array(vec![]));
                data.insert("id".into(), Value::String(id.clone()));
                patch::json_patch(t.kind, &mut data, &mut acl, &ops)?;
                client_ts = split_reserved(&mut data, &id)?;
            }
            kind => {
                if let Some(mut change) = body_object(req.body.as_ref())? {
                    client_ts = split_reserved(&mut change, &id)?;
                    if kind == pb::PatchKind::MergePatch {
                        patch::merge_patch_data(&mut data, change);
                    } else {
                        patch::merge_data(&mut data, change);
                    }
                }
                if let Some(p) = &req.permissions {
                    let change = patch::parse_permissions(t.kind, p)?;
                    if kind == pb::PatchKind::MergePatch {
                        patch::merge_patch_acl(&mut acl, change);
                    } else {
                        patch::merge_acl(&mut acl, change);
                    }
                }
            }
        }
        if t.kind == Kind::Collection {
            cache_expires::coerce(&mut data, "cache_expires")?;
        }
        // Kinto validates the patched group: `members` appears, whatever changed.
        default_members(t.kind, &mut data, true);
        let client_ts = client_ts.filter(|ts| *ts > existing.last_modified);
        patch::add_writer(&mut acl, req.writer(&id).as_deref());
        self.write_object(t, &l, id, data, acl, client_ts, who, 200)
            .await
    }

    /// Stamps and commits a created or replaced object.
    #[allow(clippy::too_many_arguments)]
    async fn write_object(
        &self,
        t: &Target,
        l: &Loaded,
        id: String,
        mut data: Map<String, Value>,
        acl: Acl,
        client_ts: Option<u64>,
        who: &Principals,
        status: u32,
    ) -> Result<Outcome, KintoError> {
        let parent = t.parent_id();
        let resource = t.kind.name();
        let mut writes = Vec::with_capacity(4);
        if t.kind == Kind::Group {
            let uri = t.object_uri(&id);
            let new = check_members(&data)?;
            for principal in members_of(l.existing()) {
                if !new.contains(&principal) {
                    writes.push(Write::RemoveMember {
                        principal,
                        group_uri: uri.clone(),
                    });
                }
            }
            for principal in new {
                writes.push(Write::AddMember {
                    principal,
                    group_uri: uri.clone(),
                });
            }
        }
        self.check_schemas(t, l, &id, &mut data)?;
        let list_ts = self.locked_timestamp(&parent, resource).await?.unwrap_or(0);
        let (ts, new_list_ts) = stamp(list_ts, client_ts);
        let object = StoredObject {
            id,
            last_modified: ts,
            deleted: false,
            data,
            permissions: acl,
        };
        // An account's writer may be its anonymous sign-up or an
        // administrator: both see the ACL, which names only the account.
        let acl_json = if t.kind == Kind::Account {
            serde_json::to_value(&object.permissions).unwrap_or_default()
        } else {
            visible_acl(&object.permissions, who)
        };
        let out = Outcome::object(status, &object, Some(acl_json), ts);
        if self.tracks_history(t.kind) {
            let change = Change {
                target: t,
                action: if l.existing().is_some() {
                    "update"
                } else {
                    "create"
                },
                object: &object,
                bucket: l.bucket.as_deref(),
                collection: l.collection.as_deref(),
            };
            let user = who.user_id.as_deref();
            writes.extend(self.history_writes(&t.bucket, user, &[change]).await?);
        }
        writes.push(Write::Put {
            parent: parent.clone(),
            resource,
            object,
            previous_last_modified: l.raw.as_ref().map(|o| o.last_modified),
        });
        writes.push(Write::Timestamp {
            parent,
            resource,
            value: new_list_ts,
        });
        self.commit(writes).await?;
        Ok(out)
    }

    pub(super) async fn delete(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let (_guard, l) = self.load_for_update(req, who).await?;
        let Some(existing) = l.existing() else {
            return Err(KintoError::internal("load_for_update returned no object"));
        };
        let list_ts = self
            .locked_timestamp(&t.parent_id(), t.kind.name())
            .await?
            .unwrap_or(0);
        let forced = req
            .forced_last_modified
            .filter(|ts| *ts > existing.last_modified);
        let (tombstone, mut writes) = self.tombstone_writes(t, existing, list_ts, forced).await?;
        // A deleted bucket takes its history with it: nothing to record.
        if self.tracks_history(t.kind) && t.kind != Kind::Bucket {
            let change = Change {
                target: t,
                action: "delete",
                object: &tombstone,
                bucket: l.bucket.as_deref(),
                collection: l.collection.as_deref(),
            };
            let user = who.user_id.as_deref();
            writes.extend(self.history_writes(&t.bucket, user, &[change]).await?);
        }
        writes.push(Write::Timestamp {
            parent: t.parent_id(),
            resource: t.kind.name(),
            value: list_ts.max(tombstone.last_modified),
        });
        self.commit(writes).await?;
        let ts = tombstone.last_modified;
        Ok(Outcome::object(200, &tombstone, None, ts))
    }

    /// The writes that delete `existing`: its tombstone and the cascade below
    /// it (children, their tombstones and timestamps, group memberships).
    /// The caller writes the list timestamp once: a batch never sets a key twice.
    pub(super) async fn tombstone_writes(
        &self,
        t: &Target,
        existing: &StoredObject,
        list_ts: u64,
        forced: Option<u64>,
    ) -> Result<(StoredObject, Vec<Write>), KintoError> {
        let parent = t.parent_id();
        let resource = t.kind.name();
        let (ts, _) = stamp(list_ts, forced);
        let tombstone = StoredObject::tombstone(&existing.id, ts);
        let mut writes = vec![Write::Put {
            parent,
            resource,
            object: tombstone.clone(),
            previous_last_modified: Some(existing.last_modified),
        }];
        match t.kind {
            Kind::Bucket => {
                let uri = resource::bucket_uri(&existing.id);
                for group in self.storage.list(&uri, "group", None, false).await? {
                    let group_uri = format!("{uri}/groups/{}", group.id);
                    for principal in members_of(Some(&group)) {
                        writes.push(Write::RemoveMember {
                            principal,
                            group_uri: group_uri.clone(),
                        });
                    }
                }
                writes.push(Write::PurgeTree { parent: uri });
            }
            Kind::Collection => writes.push(Write::PurgeTree {
                parent: resource::collection_uri(&t.bucket, &existing.id),
            }),
            Kind::Group => {
                let group_uri = t.object_uri(&existing.id);
                for principal in members_of(Some(existing)) {
                    writes.push(Write::RemoveMember {
                        principal,
                        group_uri: group_uri.clone(),
                    });
                }
            }
            // Deleting an account leaves its owner's data, as in Kinto.
            Kind::Record | Kind::Account | Kind::History => {}
        }
        Ok((tombstone, writes))
    }
}

impl Shard {
    /// Kinto's schema rules for an object about to be written: stored
    /// schemas must be schemas (always, as Kinto's views check them), and
    /// with validation on, objects must match the schemas of their parents;
    /// a valid record is stamped with its collection's version (`schema`).
    fn check_schemas(
        &self,
        t: &Target,
        l: &Loaded,
        id: &str,
        data: &mut Map<String, Value>,
    ) -> Result<(), KintoError> {
        let on = self.settings.features.schema_validation;
        let bucket = l.bucket.as_deref();
        match t.kind {
            Kind::Bucket => {
                for field in schema::BUCKET_SCHEMA_FIELDS {
                    schema::check_schema_field(data, field)?;
                }
            }
            Kind::Collection => {
                schema::check_schema_field(data, "schema")?;
                if let (true, Some(s)) = (on, schema::bucket_schema(bucket, "collection:schema")) {
                    self.schemas.validate(s, data, id)?;
                }
            }
            Kind::Group => {
                if let (true, Some(s)) = (on, schema::bucket_schema(bucket, "group:schema")) {
                    self.schemas.validate(s, data, id)?;
                }
            }
            Kind::Record if on => {
                if let Some(c) = l.collection.as_ref() {
                    if let Some(s) = c.data.get("schema").filter(|s| s.is_object()) {
                        self.schemas.validate(s, data, id)?;
                        data.insert("schema".into(), Value::from(c.last_modified));
                    }
                }
                if let Some(s) = schema::bucket_schema(bucket, "record:schema") {
                    self.schemas.validate(s, data, id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Request {
    pub fn caller_user(&self) -> Option<&str> {
        (!self.caller.user_id.is_empty()).then_some(self.caller.user_id.as_str())
    }

    /// Who gets `write` on the object written: the caller, except that an
    /// account is always owned by its own `account:<id>` principal (an
    /// anonymous sign-up or an administrator creates it for its user).
    pub fn writer(&self, id: &str) -> Option<String> {
        if self.target.kind == Kind::Account {
            return Some(format!("account:{id}"));
        }
        self.caller_user().map(str::to_owned)
    }
}

impl Shard {
    /// Kinto's accounts rule: a signed-in user writes only its own account,
    /// unless it is an administrator (`account_write_principals`).
    pub(super) fn check_account_owner(
        &self,
        req: &Request,
        who: &Principals,
        id: &str,
    ) -> Result<(), KintoError> {
        if req.target.kind != Kind::Account {
            return Ok(());
        }
        let Some(user) = req.caller_user() else {
            return Ok(());
        };
        let admin = self
            .settings
            .grants
            .get("account_write_principals")
            .is_some_and(|l| who.contains_any(l));
        if admin || user == format!("account:{id}") {
            return Ok(());
        }
        Err(KintoError::invalid(
            "body",
            Some("data.id"),
            "Username and account ID do not match.",
        ))
    }
}
