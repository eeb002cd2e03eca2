//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! operator replicas exactly one runs moves at a time.
//!
//! Why not compare the lease's `renewTime` with this replica's clock: the
//! clocks of two pods may disagree by more than a lease. A candidate
//! instead measures, on its own monotonic clock, how long the lease record
//! has stayed unchanged since it first saw it, and takes it over only after
//! a whole lease duration (client-go's rule). The holder believes it leads
//! for `duration - margin` counted from when it *sent* its last successful
//! renewal, which precedes any candidate's first sight of that renewal: the
//! holder always stops acting before a candidate may start. A map change is
//! a compare-and-set besides, so even a paused leader's late step fails.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    margin: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The lease record (its resourceVersion) last seen held by another
    /// replica, and when this replica first saw it.
    seen: Option<(String, Instant)>,
    /// Until when this replica may act as the leader.
    leading_until: Option<Instant>,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Elector {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            margin: duration / 5,
            state: Mutex::new(State::default()),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this replica may act now.
    pub fn is_leader(&self) -> bool {
        self.lock()
            .leading_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// How often [`Elector::tick`] should run: three renewals per lease.
    pub fn period(&self) -> Duration {
        self.duration / 3
    }

    /// One round: create, renew or take over the lease if this replica may.
    /// Returns whether it leads afterwards.
    pub async fn tick(&self) -> Result<bool, kube::Error> {
        let sent = Instant::now();
        let leads = match self.api.get_opt(&self.name).await? {
            None => self.write(None).await?,
            Some(lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.as_deref().unwrap_or_default();
                if holder == self.identity || self.expired(&lease, &spec, sent) {
                    self.write(Some(lease)).await?
                } else {
                    false
                }
            }
        };
        let mut state = self.lock();
        state.leading_until = match leads {
            true => Some(sent + self.duration.saturating_sub(self.margin)),
            false => None,
        };
        Ok(leads)
    }

    /// Gives the lease up (on shutdown), so another replica need not wait
    /// a whole lease. Best effort: a failure only delays the next leader.
    pub async fn release(&self) {
        let was = self.lock().leading_until.take().is_some();
        if !was {
            return;
        }
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            if let Some(spec) = lease.spec.as_mut() {
                if spec.holder_identity.as_deref() == Some(&self.identity) {
                    spec.holder_identity = None;
                    let _ = self
                        .api
                        .replace(&self.name, &PostParams::default(), &lease)
                        .await;
                }
            }
        }
    }

    /// Has the record held by another replica stayed unchanged for a whole
    /// lease since this replica first saw it (or does nobody hold it)?
    fn expired(&self, lease: &Lease, spec: &LeaseSpec, now: Instant) -> bool {
        if spec
            .holder_identity
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return true;
        }
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let seconds = spec.lease_duration_seconds.unwrap_or(0).max(1);
        let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(1));
        let mut state = self.lock();
        match &state.seen {
            Some((v, first)) if *v == version => now.duration_since(*first) >= duration,
            _ => {
                state.seen = Some((version, now));
                false
            }
        }
    }

    /// Creates the lease (`current` = None) or replaces `current` with this
    /// replica as holder. A conflict (another replica wrote first) is not an
    /// error: this replica simply does not lead.
    async fn write(&self, current: Option<Lease>) -> Result<bool, kube::Error> {
        let stamp = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(stamp.clone()),
                        renew_time: Some(stamp),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(&self.identity) {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(stamp.clone());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(stamp);
                // The resourceVersion in `lease` makes this a compare-and-set.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
