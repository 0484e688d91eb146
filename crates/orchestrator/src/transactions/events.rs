//! Appending a batch of a worker's events to its run: the events, numbered after the
//! run's counter, and the run's log accounting and heartbeat, in one run write.

use tlao_domain::{EventPayload, LeaseId, Run, RunEvent, RunId, RunStatus, WorkspaceId};

use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store::{attempt, check_lease, retry_on_race};

/// What [`append_events`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The run as written.
    pub run: Run,
    /// The last sequence number stored.
    pub last_seq: u64,
    /// The events as stored, with their sequence numbers.
    pub events: Vec<RunEvent>,
}

/// Appends up to [`crate::run_store::MAX_EVENTS_PER_WRITE`] events to a run held by
/// `lease_id` (applying the log cap of `max_log_bytes`) and, while it runs, records the
/// heartbeat. `Conflict` when the lease does not hold the run.
pub async fn append_events(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    lease_id: &LeaseId,
    events: Vec<EventPayload>,
    max_log_bytes: u64,
) -> Result<Appended, ServiceError> {
    Ok(retry_on_race(core, ws, run_id, |stored| {
        check_lease(&stored.run, lease_id)?;
        let now = core.now();
        let mut after = stored.run.clone();
        let admitted = after.admit_events(events.clone(), max_log_bytes);
        if after.status == RunStatus::Running {
            after.heartbeat_at = Some(now);
        }
        let write = attempt(&stored, &after, admitted, now)?;
        let appended = Appended {
            last_seq: stored.last_seq + write.events.len() as u64,
            events: write.events.clone(),
            run: after,
        };
        Ok((write, appended))
    })
    .await?)
}
