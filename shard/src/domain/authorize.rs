//! Step 3 of a write: authorize. Who the caller is (its principals, with
//! the groups of this shard it belongs to), whether it holds what the
//! operation needs (the rules are in [`super::acl`]), and Kinto's
//! 401/403/404 decision table, which keeps an object's existence hidden from
//! callers who may not see it (kinto-api §3.5, §5.2).

use super::acl::{allowed, Chain, Need, Principals};
use super::load::Loaded;
use super::request::Request;
use super::resource::{self, Kind, Target};
use super::Shard;
use crate::storage::Acl;
use kinto_proto::{pb, ErrorKind, KintoError};

impl Shard {
    pub(super) async fn principals(&self, caller: &pb::Caller) -> Result<Principals, KintoError> {
        let mut all: foldhash::HashSet<String> = caller.principals.iter().cloned().collect();
        all.insert("system.Everyone".into());
        for p in &caller.principals {
            let groups = match self.cache.groups_of(p) {
                Some(g) => g,
                None => {
                    let g = self.storage.groups_of(std::slice::from_ref(p)).await?;
                    self.cache.remember_groups(p, g.clone());
                    g
                }
            };
            all.extend(groups);
        }
        Ok(Principals {
            user_id: (!caller.user_id.is_empty()).then(|| caller.user_id.clone()),
            all,
        })
    }

    /// `need` on an object of `kind`, granted by `chain` or the settings;
    /// else 401/403.
    pub(super) fn authorize(
        &self,
        kind: Kind,
        need: Need,
        chain: Chain<'_>,
        who: &Principals,
    ) -> Result<(), KintoError> {
        if allowed(kind, need, chain, who, &self.settings.grants) {
            Ok(())
        } else {
            Err(deny(who))
        }
    }

    /// Records need their collection; its absence is a 404 errno 111.
    pub(super) fn require_parent(t: &Target, l: &Loaded) -> Result<(), KintoError> {
        if t.kind == Kind::Record && l.collection.is_none() {
            return Err(resource::missing_collection(&t.collection));
        }
        Ok(())
    }

    /// The object is missing: 404 if the caller could see it (even with an
    /// `If-Match`, as Kinto 26 answers), else 401/403 so existence does not leak.
    pub(super) fn missing(t: &Target, l: &Loaded, who: &Principals, visible: bool) -> KintoError {
        if !visible {
            return deny(who);
        }
        if let Err(e) = Self::require_parent(t, l) {
            return e;
        }
        let id = t.id.as_deref().unwrap_or_default();
        KintoError::not_found(ErrorKind::ObjectNotFound, id, t.kind.name())
    }

    pub(super) fn read_need(kind: Kind) -> Need {
        match kind {
            Kind::Bucket | Kind::Collection => Need::ReadAttributes,
            _ => Need::Read,
        }
    }

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

/// 401 for anonymous callers, 403 for the others.
pub(super) fn deny(who: &Principals) -> KintoError {
    if who.user_id.is_some() {
        KintoError::new(ErrorKind::Forbidden)
    } else {
        KintoError::new(ErrorKind::Unauthorized)
    }
}

/// The ACL as the caller may see it: all of it for writers, `{}` otherwise.
pub(super) fn visible_acl(acl: &Acl, who: &Principals) -> serde_json::Value {
    let writer = acl.get("write").is_some_and(|w| who.contains_any(w));
    if writer {
        serde_json::to_value(acl).unwrap_or_default()
    } else {
        serde_json::json!({})
    }
}
