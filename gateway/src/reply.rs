//! What the gateway does with a shard reply it cannot use: a gRPC failure
//! that carries no Kinto error, an outcome without a result, the wrong count
//! of outcomes, JSON that does not decode. Each is logged (shard index,
//! method and fault only: no user data), counted in
//! `kinto_gateway_shard_reply_errors_total`, and answered as Kinto's 503
//! (errno 201, with `Retry-After`), never read as an empty or default
//! value: a client must not mistake a broken shard for an empty bucket.

use kinto_proto::pb::{outcome, OpResult, Outcome};
use kinto_proto::KintoError;
use serde::de::DeserializeOwned;

/// Why a shard reply was unusable: the `kind` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A gRPC failure without a Kinto error (shard down, timeout, codec).
    Transport,
    /// An `ExecuteMany` outcome with neither result nor error.
    MissingResult,
    /// `ExecuteMany` answered another count of outcomes than operations.
    OutcomeCount,
    /// A Kinto error (status details or outcome) that does not decode,
    /// an unknown error kind included.
    UndecodableError,
    /// Data JSON (objects, lists, permissions) that does not decode as the
    /// shape the method promises.
    UndecodableData,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::Transport => "transport",
            Fault::MissingResult => "missing_result",
            Fault::OutcomeCount => "outcome_count",
            Fault::UndecodableError => "undecodable_error",
            Fault::UndecodableData => "undecodable_data",
        }
    }
}

/// Logs and counts an unusable reply of `shard` to `method`; the client's
/// 503. `cause` must not carry user data (a gRPC code, a decoder's
/// position, a count).
pub fn unusable(
    shard: Option<usize>,
    method: &'static str,
    fault: Fault,
    cause: impl std::fmt::Display,
) -> KintoError {
    let shard_label = shard.map_or_else(|| "all".to_owned(), |i| i.to_string());
    match fault {
        // A shard down or slow: expected in operation, not a bug.
        Fault::Transport => tracing::warn!(
            shard = %shard_label, method, kind = fault.label(), %cause, "shard call failed"
        ),
        _ => tracing::error!(
            shard = %shard_label, method, kind = fault.label(), %cause, "unusable shard reply"
        ),
    }
    crate::metrics::shard_reply_error(&shard_label, fault.label());
    KintoError::unavailable(format!(
        "shard {shard_label} {method}: {}: {cause}",
        fault.label()
    ))
}

/// A failed gRPC call: the Kinto error the shard sent in the status
/// details, else an unusable reply (`NotRun` if it never reached the shard).
pub fn from_status(shard: usize, method: &'static str, status: &tonic::Status) -> KintoError {
    if status.details().is_empty() {
        // The source says why a shard was unreachable (refused, timed out, a
        // TLS handshake that failed): what an operator needs to fix it.
        let cause = match std::error::Error::source(status) {
            Some(source) => format!("{}: {}", status.code(), kinto_runtime::tls::causes(source)),
            None => status.code().to_string(),
        };
        let mut e = unusable(Some(shard), method, Fault::Transport, cause);
        if crate::retry::unreached(status) {
            // Never reached the shard: retried (`retry`), a 503 only at the deadline.
            e.kind = kinto_proto::ErrorKind::NotRun;
        }
        return e;
    }
    serde_json::from_slice::<KintoError>(status.details()).unwrap_or_else(|e| {
        unusable(
            Some(shard),
            method,
            Fault::UndecodableError,
            format_args!("{:?}: {e}", status.code()),
        )
    })
}

/// `ExecuteMany`'s outcomes, one per operation in order. When the count is
/// wrong, no outcome can be paired with its operation: all are unusable.
pub fn outcomes(
    shard: usize,
    count: usize,
    outcomes: Vec<Outcome>,
) -> Vec<Result<OpResult, KintoError>> {
    const METHOD: &str = "execute_many";
    if outcomes.len() != count {
        let e = unusable(
            Some(shard),
            METHOD,
            Fault::OutcomeCount,
            format_args!("{} outcomes for {count} operations", outcomes.len()),
        );
        return vec![Err(e); count];
    }
    outcomes
        .into_iter()
        .map(|o| match o.result {
            Some(outcome::Result::Ok(r)) => Ok(r),
            Some(outcome::Result::ErrorJson(e)) => Err(serde_json::from_slice(&e)
                .unwrap_or_else(|e| unusable(Some(shard), METHOD, Fault::UndecodableError, e))),
            None => Err(unusable(
                Some(shard),
                METHOD,
                Fault::MissingResult,
                "no result",
            )),
        })
        .collect()
}

/// Decodes JSON a shard printed (`data_json`, `entries_json`).
pub fn decode<T: DeserializeOwned>(
    shard: Option<usize>,
    method: &'static str,
    bytes: &[u8],
) -> Result<T, KintoError> {
    serde_json::from_slice(bytes).map_err(|e| unusable(shard, method, Fault::UndecodableData, e))
}

/// [`decode`], where the protocol lets a shard print nothing (an empty
/// field is its absence, as the gateway's pass-through also reads it).
pub fn decode_printed<T: DeserializeOwned + Default>(
    shard: Option<usize>,
    method: &'static str,
    bytes: &[u8],
) -> Result<T, KintoError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    decode(shard, method, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::ErrorKind;

    fn ok() -> Outcome {
        Outcome {
            result: Some(outcome::Result::Ok(OpResult::default())),
        }
    }

    fn is_503(r: &Result<OpResult, KintoError>) -> bool {
        matches!(r, Err(e) if e.kind == ErrorKind::Unavailable && e.body()["errno"] == 201)
    }

    #[test]
    fn a_wrong_count_of_outcomes_fails_every_operation() {
        let fewer = outcomes(0, 2, vec![ok()]);
        assert_eq!(fewer.len(), 2);
        assert!(fewer.iter().all(is_503));
        let more = outcomes(0, 1, vec![ok(), ok()]);
        assert_eq!(more.len(), 1);
        assert!(more.iter().all(is_503));
    }

    #[test]
    fn an_outcome_without_result_or_with_a_bad_error_is_a_503() {
        let bad_error = Outcome {
            result: Some(outcome::Result::ErrorJson(
                b"{\"kind\":\"NoSuchKind\"}".to_vec(),
            )),
        };
        let kinto = KintoError::new(ErrorKind::PreconditionFailed);
        let good_error = Outcome {
            result: Some(outcome::Result::ErrorJson(kinto.to_json())),
        };
        let r = outcomes(
            1,
            4,
            vec![Outcome { result: None }, bad_error, good_error, ok()],
        );
        assert!(is_503(&r[0]));
        assert!(is_503(&r[1]));
        assert!(matches!(&r[2], Err(e) if *e == kinto));
        assert!(r[3].is_ok());
    }

    #[test]
    fn a_status_without_a_kinto_error_is_a_503() {
        let foreign = tonic::Status::internal("codec error");
        assert_eq!(
            from_status(0, "execute", &foreign).kind,
            ErrorKind::Unavailable
        );
        let garbled =
            tonic::Status::with_details(tonic::Code::Internal, "x", b"not json".to_vec().into());
        assert_eq!(
            from_status(0, "execute", &garbled).kind,
            ErrorKind::Unavailable
        );
        let kinto = KintoError::new(ErrorKind::Forbidden);
        assert_eq!(from_status(0, "execute", &kinto.to_status()), kinto);
    }

    #[test]
    fn undecodable_data_is_a_503_not_a_default() {
        let r: Result<serde_json::Value, _> = decode(Some(2), "execute", b"[1,");
        assert!(matches!(r, Err(e) if e.kind == ErrorKind::Unavailable));
    }

    #[test]
    fn every_fault_is_counted_by_shard_and_kind() {
        let before = counted("7", "missing_result");
        let _ = unusable(Some(7), "execute", Fault::MissingResult, "test");
        assert_eq!(counted("7", "missing_result"), before + 1);
    }

    fn counted(shard: &str, kind: &str) -> u64 {
        crate::metrics::SHARD_REPLY_ERRORS
            .as_ref()
            .map_or(0, |c| c.with_label_values(&[shard, kind]).get())
    }
}
