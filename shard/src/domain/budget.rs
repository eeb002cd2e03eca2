//! How long one operation may still run, and whether anyone still waits.
//!
//! Dropping an operation's future stops it at its next `.await` (the
//! gateway's deadline, a client that hung up), but CPU work between awaits
//! — filtering and sorting a list — would run on. That work checks a
//! [`Budget`] every few rows and gives up with a 503 once the deadline has
//! passed or the future that started it is gone.

use kinto_proto::KintoError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

/// Cancels its budget when dropped: hold it in the future that waits for
/// the work, so the work stops if that future is dropped.
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Budget {
    /// Until `timeout` from now.
    pub fn lasting(timeout: Duration) -> Self {
        Budget {
            deadline: Instant::now().checked_add(timeout),
            cancelled: Arc::default(),
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A 503 (errno 201) once the deadline has passed or the caller is gone.
    pub fn check(&self) -> Result<(), KintoError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(KintoError::unavailable("the request was abandoned"));
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(KintoError::unavailable(
                "the request did not finish before its deadline",
            )),
            _ => Ok(()),
        }
    }

    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Arc::clone(&self.cancelled))
    }
}

/// The deadline a gRPC caller sent (`grpc-timeout`: digits and a unit,
/// `H M S m u n`), as tonic's clients write it for `Request::set_timeout`.
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
    if raw.len() < 2 || raw.len() > 9 {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_ends_at_its_deadline_or_when_dropped() {
        let b = Budget::lasting(Duration::from_secs(60));
        assert!(b.check().is_ok());
        drop(b.cancel_on_drop());
        assert!(b.check().is_err());
        let late = Budget::lasting(Duration::ZERO);
        assert!(late.check().is_err());
        assert!(Budget::default().check().is_ok());
    }

    #[test]
    fn reads_the_timeouts_tonic_writes() {
        let mut r = tonic::Request::new(());
        r.set_timeout(Duration::from_millis(1500));
        let t = grpc_timeout(r.metadata()).expect("a timeout");
        assert!(t >= Duration::from_millis(1499) && t <= Duration::from_millis(1500));
        let mut m = tonic::metadata::MetadataMap::new();
        for bad in ["", "5", "5x", "abcS", "1234567890S"] {
            if let Ok(v) = bad.parse() {
                m.insert("grpc-timeout", v);
                assert_eq!(grpc_timeout(&m), None, "{bad:?}");
            }
        }
    }
}
