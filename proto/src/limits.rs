//! Bounds on what one request may ask for, shared by the gateway (which
//! answers 400 at the edge) and the shards (which check again before they
//! write, since a shard must never trust the bytes it stores).
//!
//! Kinto itself bounds none of these (PostgreSQL `TEXT` ids, any field
//! path), but unbounded inputs let one request occupy a core or crash a
//! storage engine: fjall and Cassandra refuse keys of 64 KiB and more.
//! Every bound here is far above what Kinto's clients send (storage.sync ids
//! are ~47 bytes, remote-settings ids are UUIDs, filters name short fields).

/// How long a request may take before it answers 503
/// (`request_timeout_seconds`, read by gateways and shards alike).
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 10;

/// gRPC metadata a shard under pressure puts on its replies: the seconds of
/// Kinto's `Backoff` header the gateway then sets.
pub const BACKOFF_METADATA: &str = "kinto-backoff";

/// An object id (bucket, collection, group, record, account), in bytes.
/// Three ids make the longest stored key (a record's), plus a few bytes of
/// separators and a timestamp: well under the engines' 64 KiB.
pub const MAX_ID_BYTES: usize = 8192;

/// A principal written into a key (a group member): the longest real one is
/// a group URI, `/buckets/{id}/groups/{id}`.
pub const MAX_PRINCIPAL_BYTES: usize = 2 * MAX_ID_BYTES + 64;

/// A field path in a filter, a sort key or `_fields`, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;

/// Dotted segments of a field path (`a.b.c` has 3). Looking a path up costs
/// up to depth × length; both bounds keep it small.
pub const MAX_FIELD_DEPTH: usize = 32;

/// Filters in one querystring.
pub const MAX_FILTERS: usize = 32;

/// Sort keys in `_sort`.
pub const MAX_SORT_KEYS: usize = 16;

/// Fields in `_fields`.
pub const MAX_FIELDS: usize = 64;

/// A `like_` pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// Why `field` is not an acceptable field path, if it is not.
pub fn check_field_path(field: &str) -> Result<(), String> {
    if field.len() > MAX_FIELD_BYTES {
        return Err(format!("field path is longer than {MAX_FIELD_BYTES} bytes"));
    }
    if field.split('.').count() > MAX_FIELD_DEPTH {
        return Err(format!(
            "field path has more than {MAX_FIELD_DEPTH} dotted parts"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_are_bounded_in_length_and_depth() {
        assert!(check_field_path("addr.city").is_ok());
        assert!(check_field_path(&"a".repeat(MAX_FIELD_BYTES)).is_ok());
        assert!(check_field_path(&"a".repeat(MAX_FIELD_BYTES + 1)).is_err());
        let deep = vec!["a"; MAX_FIELD_DEPTH].join(".");
        assert!(check_field_path(&deep).is_ok());
        assert!(check_field_path(&format!("{deep}.a")).is_err());
    }

    #[test]
    fn the_longest_record_key_fits_the_engines() {
        // parent URI + resource + id + separators + 8-byte timestamp
        let longest = 3 * MAX_ID_BYTES + 64;
        assert!(longest < 65_536);
        const { assert!(MAX_PRINCIPAL_BYTES + 2 * MAX_ID_BYTES + 64 < 65_536) };
    }
}
