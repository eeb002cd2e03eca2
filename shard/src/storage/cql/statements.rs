//! Every CQL statement of the backend, prepared once per process.
//!
//! Writes carry `USING TIMESTAMP ?` (see `Cluster::timestamps`): INSERTs take
//! it as their last value, UPDATEs and DELETEs as their first.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

pub struct Statements {
    pub get_object: PreparedStatement,
    pub list_objects: PreparedStatement,
    pub changes_since: PreparedStatement,
    pub get_timestamp: PreparedStatement,
    pub groups_of: PreparedStatement,
    pub lists_of_tenant: PreparedStatement,
    pub insert_object: PreparedStatement,
    pub insert_change: PreparedStatement,
    pub delete_change: PreparedStatement,
    pub touch_list: PreparedStatement,
    pub set_timestamp: PreparedStatement,
    pub drop_objects: PreparedStatement,
    pub drop_changes: PreparedStatement,
    pub drop_list: PreparedStatement,
    pub add_member: PreparedStatement,
    pub remove_member: PreparedStatement,
    pub health: PreparedStatement,
    /// Every object of the keyspace (the one-time re-index, `reindex.rs`).
    pub every_object: PreparedStatement,
    pub get_count: PreparedStatement,
    pub set_count: PreparedStatement,
    pub drop_count: PreparedStatement,
    pub grantees_of: PreparedStatement,
    pub add_grantee: PreparedStatement,
    pub remove_grantee: PreparedStatement,
    pub grants_of_tenant: PreparedStatement,
    pub add_grant: PreparedStatement,
    pub remove_grant: PreparedStatement,
    /// Ordered reads (`scan.rs`), each run unpaged with a LIMIT: Cassandra
    /// orders rows across the partitions of an IN only without paging.
    pub scan_id_asc: PreparedStatement,
    pub scan_id_desc: PreparedStatement,
    pub scan_id_desc_first: PreparedStatement,
    pub scan_changes_asc: PreparedStatement,
    pub scan_changes_desc: PreparedStatement,
}

impl Statements {
    pub async fn prepare(session: &Session, ks: &str, page_size: i32) -> Result<Self, String> {
        let prepare = |cql: String| async move {
            let mut p = session
                .prepare(cql.clone())
                .await
                .map_err(|e| format!("preparing `{cql}`: {e}"))?;
            p.set_page_size(page_size);
            // Every write here can be replayed: explicit timestamps make a
            // retried statement a no-op, so the driver may retry it.
            p.set_is_idempotent(true);
            Ok::<_, String>(p)
        };
        Ok(Statements {
            get_object: prepare(format!(
                "SELECT body FROM {ks}.objects WHERE parent = ? AND resource = ? AND part = ? AND id = ?"
            ))
            .await?,
            list_objects: prepare(format!(
                "SELECT body FROM {ks}.objects WHERE parent = ? AND resource = ? AND part IN ?"
            ))
            .await?,
            changes_since: prepare(format!(
                "SELECT body FROM {ks}.changes WHERE parent = ? AND resource = ? AND part IN ? \
                 AND last_modified > ?"
            ))
            .await?,
            get_timestamp: prepare(format!(
                "SELECT timestamp FROM {ks}.lists WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            groups_of: prepare(format!(
                "SELECT group_uri FROM {ks}.members WHERE principal = ?"
            ))
            .await?,
            lists_of_tenant: prepare(format!(
                "SELECT parent, resource FROM {ks}.lists WHERE tenant = ?"
            ))
            .await?,
            insert_object: prepare(format!(
                "INSERT INTO {ks}.objects (parent, resource, part, id, last_modified, body) \
                 VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            insert_change: prepare(format!(
                "INSERT INTO {ks}.changes (parent, resource, part, last_modified, id, body) \
                 VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            delete_change: prepare(format!(
                "DELETE FROM {ks}.changes USING TIMESTAMP ? WHERE parent = ? AND resource = ? \
                 AND part = ? AND last_modified = ? AND id = ?"
            ))
            .await?,
            touch_list: prepare(format!(
                "INSERT INTO {ks}.lists (tenant, parent, resource) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            set_timestamp: prepare(format!(
                "UPDATE {ks}.lists USING TIMESTAMP ? SET timestamp = ? \
                 WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            drop_objects: prepare(format!(
                "DELETE FROM {ks}.objects USING TIMESTAMP ? WHERE parent = ? AND resource = ? AND part = ?"
            ))
            .await?,
            drop_changes: prepare(format!(
                "DELETE FROM {ks}.changes USING TIMESTAMP ? WHERE parent = ? AND resource = ? AND part = ?"
            ))
            .await?,
            drop_list: prepare(format!(
                "DELETE FROM {ks}.lists USING TIMESTAMP ? WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            add_member: prepare(format!(
                "INSERT INTO {ks}.members (principal, group_uri) VALUES (?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            remove_member: prepare(format!(
                "DELETE FROM {ks}.members USING TIMESTAMP ? WHERE principal = ? AND group_uri = ?"
            ))
            .await?,
            health: prepare(format!(
                "SELECT version FROM {ks}.schema_version WHERE component = 'storage'"
            ))
            .await?,
            every_object: prepare(format!(
                "SELECT parent, resource, body FROM {ks}.objects"
            ))
            .await?,
            get_count: prepare(format!(
                "SELECT live FROM {ks}.counts WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            set_count: prepare(format!(
                "UPDATE {ks}.counts USING TIMESTAMP ? SET live = ? \
                 WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            drop_count: prepare(format!(
                "DELETE FROM {ks}.counts USING TIMESTAMP ? WHERE tenant = ? AND parent = ? AND resource = ?"
            ))
            .await?,
            grantees_of: prepare(format!(
                "SELECT parent, resource, id FROM {ks}.grantees WHERE principal = ?"
            ))
            .await?,
            add_grantee: prepare(format!(
                "INSERT INTO {ks}.grantees (principal, parent, resource, id) VALUES (?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            remove_grantee: prepare(format!(
                "DELETE FROM {ks}.grantees USING TIMESTAMP ? \
                 WHERE principal = ? AND parent = ? AND resource = ? AND id = ?"
            ))
            .await?,
            grants_of_tenant: prepare(format!(
                "SELECT parent, resource, id, principal FROM {ks}.grants WHERE tenant = ?"
            ))
            .await?,
            add_grant: prepare(format!(
                "INSERT INTO {ks}.grants (tenant, parent, resource, id, principal) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            remove_grant: prepare(format!(
                "DELETE FROM {ks}.grants USING TIMESTAMP ? \
                 WHERE tenant = ? AND parent = ? AND resource = ? AND id = ? AND principal = ?"
            ))
            .await?,
            scan_id_asc: prepare(format!(
                "SELECT body FROM {ks}.objects WHERE parent = ? AND resource = ? AND part IN ? \
                 AND id > ? ORDER BY id ASC LIMIT ?"
            ))
            .await?,
            scan_id_desc: prepare(format!(
                "SELECT body FROM {ks}.objects WHERE parent = ? AND resource = ? AND part IN ? \
                 AND id < ? ORDER BY id DESC LIMIT ?"
            ))
            .await?,
            scan_id_desc_first: prepare(format!(
                "SELECT body FROM {ks}.objects WHERE parent = ? AND resource = ? AND part IN ? \
                 ORDER BY id DESC LIMIT ?"
            ))
            .await?,
            scan_changes_asc: prepare(format!(
                "SELECT body FROM {ks}.changes WHERE parent = ? AND resource = ? AND part IN ? \
                 AND (last_modified, id) > (?, ?) AND (last_modified, id) < (?, ?) \
                 ORDER BY last_modified ASC, id ASC LIMIT ?"
            ))
            .await?,
            scan_changes_desc: prepare(format!(
                "SELECT body FROM {ks}.changes WHERE parent = ? AND resource = ? AND part IN ? \
                 AND (last_modified, id) < (?, ?) AND (last_modified, id) >= (?, ?) \
                 ORDER BY last_modified DESC, id DESC LIMIT ?"
            ))
            .await?,
        })
    }
}
