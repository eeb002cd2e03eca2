//! A group's `members`: checked on every group write, and mirrored into the
//! storage's membership index (principal → group URIs) in the same commit.

use super::resource::{Kind, Target};
use crate::storage::{StoredObject, Write};
use kinto_proto::limits::MAX_PRINCIPAL_BYTES;
use kinto_proto::KintoError;
use serde_json::{Map, Value};

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

pub(super) fn members_of(o: Option<&StoredObject>) -> Vec<String> {
    o.and_then(|o| o.data.get("members"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The start of a write's batch: for a group, its checked members'
/// index changes from `existing` to `data`; empty for other kinds.
pub(super) fn membership_writes(
    t: &Target,
    id: &str,
    data: &Map<String, Value>,
    existing: Option<&StoredObject>,
) -> Result<Vec<Write>, KintoError> {
    let mut writes = Vec::with_capacity(4);
    if t.kind == Kind::Group {
        let uri = t.object_uri(id);
        let new = check_members(data)?;
        for principal in members_of(existing) {
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
    Ok(writes)
}
