//! Reading a run's events: replay for streams, and the log text of `GET /runs/{id}`.

use std::sync::Arc;

use tlao_domain::{EventPayload, Run, RunEvent, RunId, keys};
use tlao_ports::{Cursor, Direction, Query};

use crate::codec::Step;
use crate::context::{Caller, Core};
use crate::error::ServiceError;

/// The most events one read returns.
pub const MAX_EVENTS_PER_READ: usize = 1000;

/// The page size of internal reads: small pages are served inline by SQLite and most
/// runs' logs fit in a few of them.
const LOG_PAGE: usize = 100;

/// Reads run events.
pub struct EventService {
    core: Arc<Core>,
}

impl EventService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        EventService { core }
    }

    /// The run (for access checks and its status) and up to `limit` of its events with
    /// a sequence number above `after`, in order.
    pub async fn after(
        &self,
        caller: &Caller,
        run_id: &RunId,
        after: u64,
        limit: usize,
    ) -> Result<(Run, Vec<RunEvent>), ServiceError> {
        let run = self.core.run_for(caller, run_id).await?;
        let events = read_after(&self.core, run_id, after, limit).await?;
        Ok((run, events))
    }
}

/// Up to `limit` events of a run after sequence number `after`, without access checks.
pub async fn read_after(
    core: &Core,
    run_id: &RunId,
    after: u64,
    limit: usize,
) -> Result<Vec<RunEvent>, ServiceError> {
    let limit = limit.clamp(1, MAX_EVENTS_PER_READ);
    let cursor = (after > 0).then(|| Cursor::after(keys::run_step(run_id, after).sk));
    let (steps, _) = core
        .store
        .query::<Step>(Query::new(keys::run_steps(run_id), Direction::Forward, limit).after(cursor))
        .await?;
    Ok(steps.into_iter().map(|step| step.event).collect())
}

/// The sequence number of a run's last stored event, 0 when it has none (sequence
/// numbers are gap-free from 1, so this is also how many events it has). Without access
/// checks; one query of one item.
pub async fn last_seq(core: &Core, run_id: &RunId) -> Result<u64, ServiceError> {
    let (steps, _) = core
        .store
        .query::<Step>(Query::new(keys::run_steps(run_id), Direction::Backward, 1))
        .await?;
    Ok(steps.first().map_or(0, |step| step.event.seq))
}

/// The run's kept log lines, joined with newlines (at most the log cap, requirement 7.6).
pub async fn log_text(core: &Core, run_id: &RunId) -> Result<String, ServiceError> {
    let mut text = String::new();
    let mut after = 0;
    loop {
        let events = read_after(core, run_id, after, LOG_PAGE).await?;
        let Some(last) = events.last() else {
            return Ok(text);
        };
        after = last.seq;
        for event in &events {
            if let EventPayload::Log { text: line, .. } = &event.payload {
                text.push_str(line);
                text.push('\n');
            }
        }
        if events.len() < LOG_PAGE {
            return Ok(text);
        }
    }
}
