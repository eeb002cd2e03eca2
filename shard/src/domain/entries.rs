//! `/permissions` entries of this shard, and the page of them a GET asks
//! for: each shard sends its first `limit + 1` entries past the token, in
//! the sort's order, and the gateway merges the shards' pages.
//!
//! Every field an entry is filtered or sorted on (`uri`, `resource_name`,
//! the ids) comes from the principal index's key, so the candidates are
//! filtered, sorted and cut before any object is read; then objects are read
//! in that order until the page is full. Only `permissions` needs the object
//! (an object whose ACL no longer grants the caller anything has no entry).

use super::acl::Principals;
use super::request::ListQuery;
use super::resource::{Kind, Target};
use super::walk::Found;
use super::Shard;
use kinto_proto::query;
use kinto_proto::KintoError;
use serde_json::{json, Value};

/// An entry without its permissions (`null` in their place, which no filter
/// or sort may name: the gateway refuses them).
fn skeleton(t: &Target, id: &str) -> Value {
    let mut e = json!({
        "uri": t.object_uri(id),
        "resource_name": t.kind.name(),
        "permissions": Value::Null,
        "id": id,
    });
    if t.kind != Kind::Account {
        e["bucket_id"] = t.bucket.clone().into();
    }
    if t.kind == Kind::Record {
        e["collection_id"] = t.collection.clone().into();
    }
    e[format!("{}_id", t.kind.name())] = id.into();
    e
}

/// The value of an entry's top-level field `name` (`None`: it has none).
fn field(t: &Target, id: &str, name: &str) -> Option<Value> {
    let kind = t.kind.name();
    let v = match name {
        "uri" => t.object_uri(id),
        "resource_name" => kind.to_owned(),
        "permissions" => return Some(Value::Null),
        "id" => id.to_owned(),
        "bucket_id" if t.kind != Kind::Account => t.bucket.clone(),
        "collection_id" if t.kind == Kind::Record => t.collection.clone(),
        _ if name.strip_suffix("_id") == Some(kind) => id.to_owned(),
        _ => return None,
    };
    Some(Value::String(v))
}

/// The part of [`skeleton`] the query's fields `names` reach (a path reaches
/// the top-level field it starts with): what filters and sorts read of each
/// candidate, without building whole entries for those never listed.
fn view(t: &Target, id: &str, names: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for name in names {
        let cuts = name.match_indices('.').map(|(i, _)| i);
        for cut in cuts.chain([name.len()]) {
            let key = name.get(..cut).unwrap_or_default();
            if m.contains_key(key) {
                continue;
            }
            if let Some(v) = field(t, id, key) {
                m.insert(key.to_owned(), v);
            }
        }
    }
    Value::Object(m)
}

/// The entries of `page`'s query among `entries`, sorted, past its token,
/// at most one more than its limit; all of them without a page.
pub(super) fn page_of(mut entries: Vec<Value>, page: Option<&ListQuery>) -> Vec<Value> {
    let Some(q) = page else {
        return entries;
    };
    entries.retain(|e| selected(e, q));
    query::sort_by_keys(&mut entries, &q.sort, |e| e);
    if let Some(want) = wanted(q) {
        entries.truncate(want);
    }
    entries
}

/// Matches the filters (as Kinto filters entries) and lies past the token.
fn selected(e: &Value, q: &ListQuery) -> bool {
    query::matches_in_order(e, &q.filters)
        && q.after
            .as_ref()
            .is_none_or(|a| query::is_after(e, &q.sort, a))
}

/// One more than the page: the merge then knows whether more remain.
fn wanted(q: &ListQuery) -> Option<usize> {
    q.limit
        .map(|l| usize::try_from(l.saturating_add(1)).unwrap_or(usize::MAX))
}

impl Shard {
    /// The entry of one object: `None` when `who` holds nothing on it.
    pub(super) fn entry(&self, f: &Found, who: &Principals) -> Option<Value> {
        let perms = self.held(f, who);
        if perms.is_empty() {
            return None;
        }
        let mut e = skeleton(&f.target, &f.object.id);
        e["permissions"] = perms.into_iter().collect::<Vec<_>>().into();
        Some(e)
    }

    /// The entries of the objects the principal index names for `who`: the
    /// candidates selected and ordered from the index alone, then read in
    /// that order until `page` is full.
    pub(super) async fn granted_entries(
        &self,
        who: &Principals,
        page: Option<&ListQuery>,
    ) -> Result<Vec<Value>, KintoError> {
        let targets = self.granted_targets(&who.all, false).await?;
        let names: Vec<&str> = page.map_or(Vec::new(), |q| {
            let filters = q.filters.iter().map(|f| f.field.as_str());
            filters
                .chain(q.sort.iter().map(|k| k.field.as_str()))
                .collect()
        });
        let mut candidates: Vec<(Value, _)> = targets
            .into_iter()
            .filter_map(|(g, t)| {
                let e = view(&t, &g.id, &names);
                page.is_none_or(|q| selected(&e, q)).then_some((e, (g, t)))
            })
            .collect();
        if let Some(q) = page {
            query::sort_by_keys(&mut candidates, &q.sort, |c| &c.0);
        }
        let want = page.and_then(wanted).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for (_, (g, target)) in candidates {
            if out.len() >= want {
                break;
            }
            let Some(object) = self.live(&g).await? else {
                continue;
            };
            out.extend(self.entry(&Found { target, object }, who));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter or sort finds in a candidate's view what it finds in the
    /// whole entry, for every kind and every field (present or absent).
    #[test]
    fn a_view_holds_what_the_query_fields_reach() {
        let at = |kind, bucket: &str, collection: &str| Target {
            kind,
            bucket: bucket.into(),
            collection: collection.into(),
            id: Some("x".into()),
        };
        let kinds = ["bucket", "collection", "group", "record", "account"];
        let ids: Vec<String> = kinds.iter().map(|k| format!("{k}_id")).collect();
        let names: Vec<&str> = ["uri", "resource_name", "id", "bucket_id.a", "deleted"]
            .into_iter()
            .chain(ids.iter().map(String::as_str))
            .collect();
        for t in [
            at(Kind::Bucket, "x", ""),
            at(Kind::Group, "b", ""),
            at(Kind::Collection, "b", ""),
            at(Kind::Record, "b", "c"),
            at(Kind::Account, "", ""),
        ] {
            let whole = skeleton(&t, "x");
            let v = view(&t, "x", &names);
            for &name in &names {
                assert_eq!(
                    query::lookup(&v, name),
                    query::lookup(&whole, name),
                    "{name}"
                );
            }
            assert!(view(&t, "x", &["uri"])
                .as_object()
                .is_some_and(|m| m.len() == 1));
        }
    }
}
