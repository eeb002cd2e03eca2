//! The shard map of a CQL deployment, in its keyspace (docs/placement.md,
//! section 3): one row `placement('map') → (generation, body)`, the body the
//! map's JSON, changed only by a lightweight transaction on the generation.
//! One Paxos round per change of the map, none per request.

use kinto_placement::map::ShardMap;
use kinto_placement::store::{check_successor, MapSource, MapStore, StoreError, StoreFuture, Swap};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use std::sync::Arc;

pub struct CqlMapStore {
    session: Arc<Session>,
    keyspace: String,
    load: PreparedStatement,
    insert: PreparedStatement,
    update: PreparedStatement,
}

fn remote(e: impl std::fmt::Display) -> StoreError {
    StoreError::Remote(e.to_string())
}

impl CqlMapStore {
    pub async fn new(session: Arc<Session>, keyspace: &str) -> Result<Self, String> {
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                session
                    .prepare(cql.clone())
                    .await
                    .map_err(|e| format!("preparing `{cql}`: {e}"))
            }
        };
        let ks = keyspace;
        Ok(CqlMapStore {
            load: prepare(format!(
                "SELECT generation, body FROM {ks}.placement WHERE name = 'map'"
            ))
            .await?,
            insert: prepare(format!(
                "INSERT INTO {ks}.placement (name, generation, body) VALUES ('map', ?, ?) \
                 IF NOT EXISTS"
            ))
            .await?,
            update: prepare(format!(
                "UPDATE {ks}.placement SET generation = ?, body = ? WHERE name = 'map' \
                 IF generation = ?"
            ))
            .await?,
            session,
            keyspace: keyspace.to_owned(),
        })
    }

    async fn read(&self) -> Result<Option<ShardMap>, StoreError> {
        let rows = self
            .session
            .execute_unpaged(&self.load, ())
            .await
            .map_err(remote)?
            .into_rows_result()
            .map_err(remote)?;
        let Some((generation, body)) = rows.maybe_first_row::<(i64, Vec<u8>)>().map_err(remote)?
        else {
            return Ok(None);
        };
        let map = ShardMap::from_json(&body)
            .map_err(|e| StoreError::Remote(format!("{}.placement: {e}", self.keyspace)))?;
        if map.generation != generation as u64 {
            return Err(StoreError::Remote(format!(
                "{}.placement: the row's generation {generation} is not its body's {}",
                self.keyspace, map.generation
            )));
        }
        Ok(Some(map))
    }

    async fn swap(&self, expected: Option<u64>, next: &ShardMap) -> Result<Swap, StoreError> {
        if !check_successor(expected, next).map_err(remote)? {
            return Ok(Swap::Stale(self.read().await?));
        }
        let generation = i64::try_from(next.generation).map_err(remote)?;
        let body = next.to_json();
        let result = match expected {
            None => {
                self.session
                    .execute_unpaged(&self.insert, (generation, body))
                    .await
            }
            Some(g) => {
                let g = i64::try_from(g).map_err(remote)?;
                self.session
                    .execute_unpaged(&self.update, (generation, body, g))
                    .await
            }
        }
        .map_err(remote)?;
        // An LWT's first column is `[applied]`; the others (the row as it
        // is) vary with the outcome, so the row is read untyped.
        let rows = result.into_rows_result().map_err(remote)?;
        let applied = rows
            .maybe_first_row::<Row>()
            .map_err(remote)?
            .and_then(|row| row.columns.into_iter().next().flatten());
        match applied {
            Some(CqlValue::Boolean(true)) => Ok(Swap::Done),
            Some(CqlValue::Boolean(false)) => Ok(Swap::Stale(self.read().await?)),
            other => Err(StoreError::Remote(format!(
                "a compare-and-set of the map answered {other:?}, not [applied]"
            ))),
        }
    }
}

impl MapSource for CqlMapStore {
    fn load(&self) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(self.read())
    }
}

impl MapStore for CqlMapStore {
    fn compare_and_set<'a>(
        &'a self,
        expected: Option<u64>,
        next: &'a ShardMap,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(self.swap(expected, next))
    }
}
