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

/// Against a real node (`KINTO_TEST_CQL`, as the conformance suite).
#[cfg(test)]
mod tests {
    use super::super::tests::{drop_keyspace, fresh_cluster};
    use kinto_placement::live::{LiveMap, Placement};
    use kinto_placement::map::ShardMap;
    use kinto_placement::store::{open_or_init, MapSource, MapStore, Swap};
    use std::sync::Arc;

    #[tokio::test]
    async fn the_map_changes_only_by_compare_and_set_on_its_generation() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let store = cluster.map_store().await.expect("store");
        assert_eq!(store.load().await.expect("empty"), None);
        let first = ShardMap::initial(2, &[]);
        let cas = |expected: Option<u64>, next: ShardMap| {
            let store = &store;
            async move {
                store
                    .compare_and_set(expected, &next)
                    .await
                    .expect("compare-and-set")
            }
        };
        assert_eq!(cas(None, first.clone()).await, Swap::Done);
        // A second "first" loses and sees the stored map.
        assert_eq!(
            cas(None, first.clone()).await,
            Swap::Stale(Some(first.clone()))
        );
        let next = first.announce(&[3], 1);
        assert_eq!(cas(Some(1), next.clone()).await, Swap::Done);
        // A writer that read generation 1 cannot overwrite generation 2,
        assert!(matches!(
            cas(Some(1), first.with_owner(0, 1)).await,
            Swap::Stale(Some(m)) if m == next
        ));
        // nor can a change that does not raise the generation.
        assert!(matches!(
            cas(Some(2), next.clone()).await,
            Swap::Stale(Some(m)) if m.generation == 2
        ));
        assert_eq!(store.load().await.expect("load"), Some(next.clone()));
        // The stored map wins over the count a process is started with.
        assert_eq!(open_or_init(&store, 5).await.expect("stored"), next);
        // A live map over the keyspace sees a change by polling.
        let live = LiveMap::from_source(Arc::new(store), Placement::of(&next));
        assert!(!live.poll().await.expect("unchanged"));
        let store = cluster.map_store().await.expect("store");
        let handed = next.hand_off(&[3]);
        assert_eq!(
            store
                .compare_and_set(Some(2), &handed)
                .await
                .expect("hand off"),
            Swap::Done
        );
        assert!(live.poll().await.expect("changed"));
        assert_eq!(live.current().owner_of_slot(3), 1);
        drop_keyspace(&settings).await;
    }

    #[tokio::test]
    async fn concurrent_swaps_from_one_generation_let_exactly_one_win() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let store = Arc::new(cluster.map_store().await.expect("store"));
        let first = ShardMap::initial(4, &[]);
        assert_eq!(
            store.compare_and_set(None, &first).await.expect("first"),
            Swap::Done
        );
        let tries = (0..8u32).map(|i| {
            let (store, next) = (Arc::clone(&store), first.with_owner(i, 3));
            async move { store.compare_and_set(Some(1), &next).await }
        });
        let outcomes = futures::future::join_all(tries).await;
        let wins = outcomes
            .iter()
            .filter(|r| matches!(r, Ok(Swap::Done)))
            .count();
        assert_eq!(wins, 1, "{outcomes:?}");
        let stored = store.load().await.expect("load").expect("a map");
        assert_eq!(stored.generation, 2);
        drop_keyspace(&settings).await;
    }
}
