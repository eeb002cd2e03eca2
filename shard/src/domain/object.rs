//! Operations on one object: GET, PUT, POST (create in a plural), PATCH and
//! DELETE, with Kinto's 401/403/404/412 decision table (kinto-api §3.5, §5.2).
//! Each write is the domain's pipeline (see the module comment of `domain`):
//! lock, load, authorize, check preconditions, stamp, commit.

use super::acl::{allowed, Need, Principals};
use super::authorize::visible_acl;
use super::cache_expires;
use super::draft::{self, Draft};
use super::history::Change;
use super::load::Loaded;
use super::lock::WriteGuard;
use super::members::membership_writes;
use super::patch;
use super::preconditions::check_preconditions;
use super::request::{Outcome, Pre, Request};
use super::resource::{self, Kind, Target};
use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_placement::PlacementKey;
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;

impl Shard {
    pub(super) async fn get(&self, req: &Request, who: &Principals) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let id = t.id.as_deref().unwrap_or_default();
        let l = self.load(t, id).await?;
        self.authorize(t.kind, Self::read_need(t.kind), l.chain(true), who)?;
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
        self.authorize(t.kind, need, l.chain(true), who)?;
        self.check_preconditions_locked(req, existing).await?;
        let draft = Draft::replacing(req, &id, existing)?;
        let status = if existing.is_some() { 200 } else { 201 };
        self.write_object(t, &l, id, draft, who, status).await
    }

    pub(super) async fn create(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        let t = &req.target;
        let mut data = draft::body_data(req)?;
        let id = self.id_to_create(req, who, &data).await?;
        let _guard = self.lock_for_write(t).await;
        let l = self.load(t, &id).await?;
        Self::require_parent(t, &l)?;
        self.authorize(t.kind, Need::Create, l.chain(false), who)?;
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
            self.authorize(t.kind, Self::read_need(t.kind), l.chain(true), who)?;
            check_preconditions(req, Some(o))?;
            return Ok(Outcome::object(
                200,
                o,
                Some(visible_acl(&o.permissions, who)),
                o.last_modified,
            ));
        }
        self.check_preconditions_locked(req, None).await?;
        let draft = Draft::creating(req, &id, data, permissions)?;
        let target = Target {
            id: Some(id.clone()),
            ..t.clone()
        };
        self.write_object(&target, &l, id, draft, who, 201).await
    }

    /// The id a POST creates: the body's (checked) or a new one.
    async fn id_to_create(
        &self,
        req: &Request,
        who: &Principals,
        data: &serde_json::Map<String, Value>,
    ) -> Result<String, KintoError> {
        let t = &req.target;
        let id = match data.get("id") {
            Some(Value::String(s)) if resource::valid_id_for(t.kind, s) => s.clone(),
            Some(_) => return Err(resource::invalid_id()),
            None => resource::generate_id(t.kind),
        };
        self.check_account_owner(req, who, &id)?;
        // A new bucket or account is placed by its id: the gateway routed by
        // the same id (a bucket's also names the target), so this shard owns it.
        match t.kind {
            Kind::Bucket if id != t.bucket => Err(KintoError::internal(
                "bucket created on a shard not routed by its id",
            )),
            Kind::Account => {
                self.check_placed_here(PlacementKey::Account(&id), req.generation)
                    .await?;
                Ok(id)
            }
            _ => Ok(id),
        }
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
            let draft = Draft::implicit(req, &id);
            self.write_object(&target, &l, id, draft, who, 201).await?;
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
        let Some(existing) = l.existing() else {
            return Err(KintoError::internal("load_for_update returned no object"));
        };
        let draft = Draft::patching(req, &id, existing)?;
        self.write_object(t, &l, id, draft, who, 200).await
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
            writes.extend(self.history_of(t, &l, "delete", &tombstone, who).await?);
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

    /// The start of PATCH and DELETE: lock the bucket, load, apply the
    /// missing-object rules, require `write`, check preconditions.
    async fn load_for_update(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<(WriteGuard<'_>, Loaded), KintoError> {
        let t = &req.target;
        let id = t.id.clone().unwrap_or_default();
        let guard = self.lock_for_write(t).await;
        let l = self.load(t, &id).await?;
        Self::require_parent(t, &l)?;
        let Some(existing) = l.existing() else {
            let g = &self.settings.grants;
            let visible = allowed(t.kind, Need::Write, l.chain(false), who, g)
                || allowed(t.kind, Need::Read, l.chain(false), who, g);
            return Err(Self::missing(t, &l, who, visible));
        };
        self.authorize(t.kind, Need::Write, l.chain(true), who)?;
        Self::require_parent(t, &l)?;
        check_preconditions(req, Some(existing))?;
        Ok((guard, l))
    }

    /// The end of every object write, once authorized: check the proposed
    /// object, stamp it, commit it with its memberships and history entry.
    async fn write_object(
        &self,
        t: &Target,
        l: &Loaded,
        id: String,
        mut draft: Draft,
        who: &Principals,
        status: u32,
    ) -> Result<Outcome, KintoError> {
        let parent = t.parent_id();
        let resource = t.kind.name();
        let mut writes = membership_writes(t, &id, &draft.data, l.existing())?;
        self.check_schemas(t, l, &id, &mut draft.data)?;
        let (object, new_list_ts) = self.stamp(&parent, resource, id, draft).await?;
        // An account's writer may be its anonymous sign-up or an
        // administrator: both see the ACL, which names only the account.
        let acl_json = if t.kind == Kind::Account {
            serde_json::to_value(&object.permissions).unwrap_or_default()
        } else {
            visible_acl(&object.permissions, who)
        };
        let out = Outcome::object(status, &object, Some(acl_json), object.last_modified);
        if self.tracks_history(t.kind) {
            let action = if l.existing().is_some() {
                "update"
            } else {
                "create"
            };
            writes.extend(self.history_of(t, l, action, &object, who).await?);
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

    /// The history entry of one change of the object `l` loaded.
    async fn history_of(
        &self,
        t: &Target,
        l: &Loaded,
        action: &'static str,
        object: &StoredObject,
        who: &Principals,
    ) -> Result<Vec<Write>, KintoError> {
        let change = Change {
            target: t,
            action,
            object,
            bucket: l.bucket.as_deref(),
            collection: l.collection.as_deref(),
        };
        let user = who.user_id.as_deref();
        self.history_writes(&t.bucket, user, &[change]).await
    }
}
