//! Reading a run's events: replay for streams, the log text of `GET /runs/{id}`, and
//! the log read page by page ([`EventService::log_page`]) for the console's run page and
//! its `log.txt` download.

use std::sync::Arc;

use tlao_domain::{EventPayload, Run, RunEvent, RunId, keys};
use tlao_ports::{Cursor, Direction, Query};

use crate::codec::Step;
use crate::context::{Caller, Core};
use crate::error::ServiceError;

/// The most events one read returns.
pub const MAX_EVENTS_PER_READ: usize = 1000;

/// The most events one [`EventService::log_page`] returns.
pub const MAX_LOG_PAGE: usize = 10_000;

/// The page size of internal reads: small pages are served inline by SQLite and most
/// runs' logs fit in a few of them.
const LOG_PAGE: usize = 100;

/// A page of a run's log: its events after a sequence number, in order, and where the
/// log stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The run, as read for the access check (its status, its log counters).
    pub run: Run,
    /// The events of the page, in sequence order: log lines, and the progress, status,
    /// artifact and truncation events between them.
    pub events: Vec<RunEvent>,
    /// Where the next page starts (pass it as `after_seq`): the last event's sequence
    /// number, or `after_seq` when the page is empty.
    pub next_seq: u64,
    /// How many events the run had when read (its last sequence number; sequence
    /// numbers are gap-free from 1).
    pub total: u64,
    /// Whether events after this page were left out because it reached its `limit`.
    pub truncated: bool,
}

impl LogPage {
    /// The text of the page's log lines (progress, status and other events left out).
    pub fn log_lines(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|event| match &event.payload {
            EventPayload::Log { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }
}

/// Reads run events.
pub struct EventService {
    core: Arc<Core>,
}

impl EventService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        EventService { core }
    }

    /// Up to `limit` (1 to [`MAX_LOG_PAGE`]) events of a run of a workspace the caller
    /// belongs to, after sequence number `after_seq` (0: from the start), with where
    /// the log stands: read page after page, a log of any length is read whole.
    ///
    /// Errors: `NotFound` when the run does not exist, `Forbidden` when the caller is
    /// not a member of its workspace, `Unavailable` when storage does not answer.
    pub async fn log_page(
        &self,
        caller: &Caller,
        run_id: &RunId,
        after_seq: u64,
        limit: usize,
    ) -> Result<LogPage, ServiceError> {
        let run = self.core.run_for(caller, run_id).await?;
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let mut events: Vec<RunEvent> = Vec::new();
        let mut next_seq = after_seq;
        while events.len() < limit {
            let wanted = (limit - events.len()).min(MAX_EVENTS_PER_READ);
            let read = read_after(&self.core, run_id, next_seq, wanted).await?;
            let more = read.len() == wanted;
            next_seq = read.last().map_or(next_seq, |event| event.seq);
            events.extend(read);
            if !more {
                break;
            }
        }
        // A page cut short by the table is the whole rest of the log; a full or empty
        // one is measured with one more (one-item) query.
        let total = if events.len() == limit || events.is_empty() {
            last_seq(&self.core, run_id).await?
        } else {
            next_seq
        };
        Ok(LogPage {
            run,
            events,
            next_seq,
            total,
            truncated: total > next_seq,
        })
    }
}

/// Up to `limit` events of a run after sequence number `after`, without access checks.
pub(crate) async fn read_after(
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
pub(crate) async fn log_text(core: &Core, run_id: &RunId) -> Result<String, ServiceError> {
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
