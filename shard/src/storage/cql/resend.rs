//! A commit is sent until Cassandra answers it for certain (docs/placement.md,
//! section 6, "CQL", path 1). A write timeout or a broken connection says
//! nothing of whether the batch landed, or will (its batchlog may replay
//! it): the same batch, with the same values and `USING TIMESTAMP`s, is sent
//! again until it is acknowledged or refused. A resend writes the same
//! cells with the same timestamps, so it changes nothing if the first send
//! landed; and once it is acknowledged, a late copy of the first send is a
//! no-op too. That is what lets a freeze's drain end with every commit of
//! its slots in the keyspace or refused.

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::serialize::batch::BatchValues;
use scylla::statement::batch::Batch;
use std::time::Duration;

const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Whether the batch may have landed (or may still) although it failed.
fn uncertain(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::RequestTimeout(_) => true,
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::DbError(db, _) => matches!(
                db,
                DbError::WriteTimeout { .. } | DbError::WriteFailure { .. } | DbError::ServerError
            ),
            // Sent, and what came back (if anything) cannot be read.
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::BodyExtensionsParseError(_)
            | RequestAttemptError::CqlResultParseError(_)
            | RequestAttemptError::CqlErrorParseError(_)
            | RequestAttemptError::UnexpectedResponse(_) => true,
            // Never sent.
            _ => false,
        },
        // Refused before any node was asked.
        _ => false,
    }
}

/// Whether Cassandra refused the request for want of permission: on a
/// shard's own role, a rebalance revoked it (docs/placement.md, section 6).
pub fn fenced(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Unauthorized, _))
    )
}

/// Sends `batch` until it is acknowledged (`Ok`) or refused for certain.
pub async fn until_answered(
    session: &Session,
    batch: &Batch,
    values: impl BatchValues,
) -> Result<(), ExecutionError> {
    let mut pause = FIRST_PAUSE;
    let mut tries = 0u32;
    loop {
        tries += 1;
        match session.batch(batch, &values).await {
            Ok(_) => {
                if tries > 1 {
                    tracing::info!(tries, "a resent commit was acknowledged");
                }
                return Ok(());
            }
            Err(e) if uncertain(&e) => {
                tracing::warn!(error = %e, tries, "a commit has no definite answer: resending it unchanged");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_say_nothing_are_resent() {
        let timeout = ExecutionError::RequestTimeout(Duration::from_secs(1));
        assert!(uncertain(&timeout));
        let write_timeout = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout {
                consistency: scylla::statement::Consistency::Quorum,
                received: 0,
                required: 1,
                write_type: scylla::errors::WriteType::Batch,
            },
            String::new(),
        ));
        assert!(uncertain(&write_timeout));
        let unavailable = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unavailable {
                consistency: scylla::statement::Consistency::Quorum,
                required: 2,
                alive: 1,
            },
            String::new(),
        ));
        assert!(!uncertain(&unavailable));
        assert!(!uncertain(&ExecutionError::EmptyPlan));
        let revoked = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unauthorized,
            "User has no MODIFY permission".into(),
        ));
        assert!(!uncertain(&revoked) && fenced(&revoked));
        assert!(!fenced(&unavailable) && !fenced(&timeout));
    }
}
