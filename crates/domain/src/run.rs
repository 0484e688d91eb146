//! Runs and their state machine.
//!
//! ```text
//! queued --start--> running --complete--> completed
//!    |                 |------fail------> failed        (error details stored)
//!    |                 |----time_out----> timed_out
//!    |                 '---lose_worker--> failed        (code: worker_lost)
//!    |--expire--> failed                   (code: queue_timeout; no worker leased it in time)
//!    '--cancel--> cancelled                (running --cancel--> cancelled too)
//! ```
//!
//! [`Run::apply`] is the only way to change a run's status. Storage writes each change
//! conditionally on the status it started from, so two racing writers (a worker and the
//! reaper, say) can never both win.
//!
//! A lease is the right to write a run, and only while the run is `running`:
//! [`Run::fence`] refuses every write under a lease that does not hold the run or whose
//! run has ended, so a worker that lost contact cannot add events or artifacts after the
//! end. The worker numbers its events; [`Run::accept_worker_events`] keeps the last
//! number applied, so a batch sent again after a lost answer is stored once, and
//! [`Run::admit_dropped`] records events a worker declares it could not deliver.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::{EventPayload, LogStream};
use crate::executor::ExecutorName;
use crate::id::{ArtifactId, LeaseId, RunId, TaskId, UserId, WorkspaceId};
use crate::task_spec::TaskType;
use crate::time::Timestamp;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker (and for a free slot in its workspace).
    Queued,
    /// A worker holds a lease on it and is executing it.
    Running,
    /// The executor finished successfully.
    Completed,
    /// The executor, the worker or the platform failed.
    Failed,
    /// It ran past its deadline and was stopped.
    TimedOut,
    /// Somebody cancelled it.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
    ];

    /// The wire name, e.g. `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over; a terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a run status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {0:?} is not one of queued, running, completed, failed, timed_out, cancelled")]
pub struct UnknownRunStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownRunStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownRunStatus(text.to_owned()))
    }
}

/// Why a run failed, in a form a program can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorCode {
    /// The executor exited with an error.
    ExecutorFailed,
    /// The executor could not be started or is not set up (missing binary, not logged in).
    ExecutorUnavailable,
    /// The worker stopped sending heartbeats.
    WorkerLost,
    /// No worker leased the run before it had waited in the queue for as long as it may.
    QueueTimeout,
    /// The workspace archive could not be fetched or was refused (unsafe or too large).
    InvalidArchive,
    /// An artifact could not be stored.
    UploadFailed,
    /// Anything else.
    Internal,
}

/// What went wrong with a failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// The machine-readable reason.
    pub code: RunErrorCode,
    /// The human-readable explanation (e.g. the tail of the executor's stderr).
    pub message: String,
    /// The executor's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// What running the agent cost, when the agent reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Usage {
    /// The executor did not report usage; never a fake zero.
    #[default]
    Unmeasured,
    /// The executor reported usage, e.g. kiro-cli's `Credits: 0.42 • Time: 5s`.
    #[serde(rename_all = "camelCase")]
    Reported {
        /// The credits charged, as printed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credits: Option<String>,
        /// The whole usage line, ANSI-free (for agents that report numbers, a line made
        /// of them: `1,204 input / 318 output tokens, 0.0123 USD`).
        summary: String,
        /// Input (prompt) tokens, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_tokens: Option<u64>,
        /// Output (completion) tokens, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_tokens: Option<u64>,
        /// Input tokens served from a cache, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cached_tokens: Option<u64>,
        /// What it cost, when reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Cost>,
    },
}

impl Usage {
    /// Usage reported as a line of text (kiro-cli's), with the credits when it names them.
    pub fn reported(credits: Option<String>, summary: impl Into<String>) -> Usage {
        Usage::Reported {
            credits,
            summary: summary.into(),
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            cost: None,
        }
    }
}

/// An amount of money, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// The amount, a decimal number as text (`0.0123`): never rounded through a float.
    pub amount: String,
    /// Its ISO 4217 currency (`USD`).
    pub currency: String,
}

/// A status change asked of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A worker leased the queued run.
    Start {
        /// The lease the worker holds.
        lease_id: LeaseId,
        /// When the run must be over.
        deadline: Timestamp,
    },
    /// The executor finished successfully.
    Complete,
    /// The executor or worker failed.
    Fail(RunError),
    /// The deadline passed.
    TimeOut,
    /// Somebody cancelled the run.
    Cancel,
    /// The run waited in the queue for as long as it may: it fails with `error`
    /// (see [`RunError::queue_timeout`]).
    Expire(RunError),
}

impl Transition {
    /// The status this transition leads to.
    pub fn target(&self) -> RunStatus {
        match self {
            Transition::Start { .. } => RunStatus::Running,
            Transition::Complete => RunStatus::Completed,
            Transition::Fail(_) | Transition::Expire(_) => RunStatus::Failed,
            Transition::TimeOut => RunStatus::TimedOut,
            Transition::Cancel => RunStatus::Cancelled,
        }
    }

    /// Whether a run in `from` may take this transition.
    pub fn allowed_from(&self, from: RunStatus) -> bool {
        match self {
            Transition::Start { .. } => from == RunStatus::Queued,
            Transition::Complete | Transition::Fail(_) | Transition::TimeOut => {
                from == RunStatus::Running
            }
            Transition::Cancel => !from.is_terminal(),
            Transition::Expire(_) => from == RunStatus::Queued,
        }
    }
}

/// A status change that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run is {from}; it cannot become {to}")]
pub struct TransitionError {
    /// The run's status.
    pub from: RunStatus,
    /// The status asked for.
    pub to: RunStatus,
}

/// Why a lease may not write its run any more (fencing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    /// The lease is not the run's lease: it never was, or another lease replaced it.
    #[error("the lease does not hold the run")]
    LeaseSuperseded,
    /// The run ended (or never started); its status says how.
    #[error("the run has ended ({0})")]
    RunEnded(RunStatus),
}

/// A batch of worker events numbered past the next one the run expects: the events in
/// between never arrived (or the numbering starts at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "firstSeq {first_seq} skips worker events: the run has applied them up to {applied}, so a batch must start at {next} or earlier (numbering starts at 1)",
    next = .applied + 1
)]
pub struct SequenceGap {
    /// The first number of the batch.
    pub first_seq: u64,
    /// The last number the run applied.
    pub applied: u64,
}

/// One execution of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Its id; sorts by creation time.
    pub run_id: RunId,
    /// The task it executes.
    pub task_id: TaskId,
    /// The task's workspace.
    pub workspace_id: WorkspaceId,
    /// The task's type, kept here so lists need not load tasks.
    pub task_type: TaskType,
    /// The executor chosen for it.
    pub executor: ExecutorName,
    /// Why run creation chose [`Run::executor`] (requested, seen available, or the first
    /// serving the task type); runs from before selection reasons have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// Where it is in its life; change it only through [`Run::apply`].
    pub status: RunStatus,
    /// Who asked for it.
    pub created_by: UserId,
    /// When it was created (queued).
    pub created_at: Timestamp,
    /// When a worker started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The longest it may run, in seconds, once started.
    pub max_run_seconds: u32,
    /// When it must be over; set on start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// The current worker's lease; set on start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<LeaseId>,
    /// The last time the worker was heard from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<Timestamp>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// What it cost, when known.
    #[serde(default)]
    pub usage: Usage,
    /// The artifacts it produced.
    #[serde(default)]
    pub artifact_ids: Vec<ArtifactId>,
    /// Log bytes kept (up to the log cap).
    #[serde(default)]
    pub log_bytes: u64,
    /// Log bytes not kept: past the log cap, and those the worker declared it dropped
    /// ([`Run::worker_dropped_bytes`]).
    #[serde(default)]
    pub dropped_log_bytes: u64,
    /// Whether the log has a gap: the log cap was reached, or the worker dropped events.
    #[serde(default)]
    pub logs_truncated: bool,
    /// The last number of the worker's events applied (0: none yet); see
    /// [`Run::accept_worker_events`].
    #[serde(default)]
    pub worker_seq: u64,
    /// Events the worker declared it dropped (could not deliver).
    #[serde(default)]
    pub worker_dropped_lines: u64,
    /// The log bytes of the events the worker declared it dropped.
    #[serde(default)]
    pub worker_dropped_bytes: u64,
}

impl Run {
    /// Applies a status change at `now`, or explains why it is not allowed. On error
    /// the run is unchanged.
    pub fn apply(&mut self, transition: Transition, now: Timestamp) -> Result<(), TransitionError> {
        if !transition.allowed_from(self.status) {
            return Err(TransitionError {
                from: self.status,
                to: transition.target(),
            });
        }
        self.status = transition.target();
        match transition {
            Transition::Start { lease_id, deadline } => {
                self.started_at = Some(now);
                self.heartbeat_at = Some(now);
                self.lease_id = Some(lease_id);
                self.deadline = Some(deadline);
                // A lease numbers its events from 1.
                self.worker_seq = 0;
            }
            Transition::Fail(error) | Transition::Expire(error) => {
                self.error = Some(error);
                self.finished_at = Some(now);
            }
            Transition::Complete | Transition::TimeOut | Transition::Cancel => {
                self.finished_at = Some(now);
            }
        }
        Ok(())
    }

    /// `Ok` when `lease_id` may write this run: it is the run's lease and the run is
    /// `running`. Every write a worker makes (events, heartbeats, artifacts, their
    /// finalization, completion) is checked here, in the transaction that writes.
    pub fn fence(&self, lease_id: &LeaseId) -> Result<(), Fenced> {
        if self.lease_id.as_ref() != Some(lease_id) {
            return Err(Fenced::LeaseSuperseded);
        }
        if self.status != RunStatus::Running {
            return Err(Fenced::RunEnded(self.status));
        }
        Ok(())
    }

    /// Takes a batch of `count` worker events numbered from `first_seq` (the worker
    /// numbers its events 1, 2, ... per lease): returns how many of its first events were
    /// applied before (a batch sent again because its answer was lost) and are to be
    /// skipped, and records the rest as applied. A batch starting past the next
    /// expected number is refused: events in between never arrived.
    pub fn accept_worker_events(&mut self, first_seq: u64, count: u64) -> Result<u64, SequenceGap> {
        if first_seq == 0 || first_seq > self.worker_seq + 1 {
            return Err(SequenceGap {
                first_seq,
                applied: self.worker_seq,
            });
        }
        let seen = (self.worker_seq + 1 - first_seq).min(count);
        if count > 0 {
            self.worker_seq = self.worker_seq.max(first_seq + count - 1);
        }
        Ok(seen)
    }

    /// Records that the worker dropped `lines` events holding `bytes` log bytes (it
    /// could not deliver them, and says so rather than leave a quiet gap): they count
    /// in `dropped_log_bytes` and mark the log truncated. Returns the line that says so
    /// in the run's log; it is always kept, even past the log cap.
    pub fn admit_dropped(&mut self, lines: u64, bytes: u64) -> EventPayload {
        self.worker_dropped_lines += lines;
        self.worker_dropped_bytes += bytes;
        self.dropped_log_bytes += bytes;
        self.logs_truncated = true;
        let notice = EventPayload::Log {
            stream: LogStream::System,
            text: format!(
                "the worker dropped {lines} events ({bytes} log bytes) here that it could not deliver; the log has a gap"
            ),
        };
        self.log_bytes += notice.log_bytes();
        notice
    }

    /// Whether the log cap was reached: bytes were dropped besides those the worker
    /// declared (a line past the cap always counts at least its newline).
    pub fn log_cap_reached(&self) -> bool {
        self.dropped_log_bytes > self.worker_dropped_bytes
    }

    /// Admits a batch of events under the log cap (requirement 7.6): log lines are kept
    /// while the run's kept log bytes stay within `max_log_bytes`; the first line past
    /// the cap is replaced by one `truncated` marker, and it and every later line are
    /// only counted in `dropped_log_bytes`. Other events always pass. Returns the events
    /// to store, in order.
    pub fn admit_events(
        &mut self,
        batch: Vec<EventPayload>,
        max_log_bytes: u64,
    ) -> Vec<EventPayload> {
        let mut admitted = Vec::with_capacity(batch.len());
        for event in batch {
            let bytes = event.log_bytes();
            if bytes == 0 {
                admitted.push(event);
            } else if self.log_cap_reached() {
                self.dropped_log_bytes += bytes;
            } else if self.log_bytes + bytes > max_log_bytes {
                self.logs_truncated = true;
                self.dropped_log_bytes += bytes;
                admitted.push(EventPayload::Truncated { max_log_bytes });
            } else {
                self.log_bytes += bytes;
                admitted.push(event);
            }
        }
        admitted
    }

    /// How long it ran (or has been running at `now`), in milliseconds.
    pub fn duration_millis(&self, now: Timestamp) -> Option<i64> {
        let start = self.started_at?;
        Some(self.finished_at.unwrap_or(now).millis_since(start))
    }

    /// Whether its deadline has passed at `now`.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.status == RunStatus::Running && self.deadline.is_some_and(|d| now >= d)
    }

    /// Whether its worker has been silent for longer than `timeout_seconds` at `now`.
    pub fn heartbeat_expired(&self, now: Timestamp, timeout_seconds: u64) -> bool {
        self.status == RunStatus::Running
            && self
                .heartbeat_at
                .or(self.started_at)
                .is_some_and(|beat| now >= beat.plus_seconds(timeout_seconds))
    }

    /// Whether it is still queued at `now` after waiting `max_queue_seconds` or more
    /// since it was created: no worker leased it in time, and it is to
    /// [`Transition::Expire`].
    pub fn queue_expired(&self, now: Timestamp, max_queue_seconds: u64) -> bool {
        self.status == RunStatus::Queued && now >= self.created_at.plus_seconds(max_queue_seconds)
    }
}

impl RunError {
    /// The error of a run that waited `max_queue_seconds` in the queue without a worker
    /// leasing it: says why, and that its daily quota unit was given back.
    pub fn queue_timeout(max_queue_seconds: u64) -> RunError {
        RunError {
            code: RunErrorCode::QueueTimeout,
            message: format!(
                "no worker leased the run within {max_queue_seconds} s of its creation \
                 (guardrails.max_queue_seconds); it left the queue and its daily run \
                 quota unit was given back. Check that workers are running and serve its \
                 executor, then run it again"
            ),
            exit_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogStream;
    use crate::id::Ulid;

    fn queued_run() -> Run {
        Run {
            run_id: RunId::new(Ulid::from_parts(1, 1)),
            task_id: TaskId::new(Ulid::from_parts(1, 2)),
            workspace_id: WorkspaceId::new(Ulid::from_parts(1, 3)),
            task_type: TaskType::SpecGenerate,
            executor: "kiro".parse().unwrap(),
            selection: None,
            status: RunStatus::Queued,
            created_by: UserId::new(Ulid::from_parts(1, 4)),
            created_at: Timestamp::from_unix_millis(1_000),
            started_at: None,
            finished_at: None,
            max_run_seconds: 480,
            deadline: None,
            lease_id: None,
            heartbeat_at: None,
            error: None,
            usage: Usage::Unmeasured,
            artifact_ids: vec![],
            log_bytes: 0,
            dropped_log_bytes: 0,
            logs_truncated: false,
            worker_seq: 0,
            worker_dropped_lines: 0,
            worker_dropped_bytes: 0,
        }
    }

    fn start() -> Transition {
        Transition::Start {
            lease_id: LeaseId::new(Ulid::from_parts(2, 9)),
            deadline: Timestamp::from_unix_millis(10_000),
        }
    }

    fn failure() -> RunError {
        RunError {
            code: RunErrorCode::ExecutorFailed,
            message: "boom".into(),
            exit_code: Some(1),
        }
    }

    fn transitions() -> Vec<Transition> {
        vec![
            start(),
            Transition::Complete,
            Transition::Fail(failure()),
            Transition::TimeOut,
            Transition::Cancel,
            Transition::Expire(RunError::queue_timeout(60)),
        ]
    }

    #[test]
    fn a_queued_run_expires_once_it_waited_its_limit_and_fails_with_queue_timeout() {
        let mut run = queued_run();
        let created = run.created_at;
        assert!(!run.queue_expired(created.plus_seconds(3_599), 3_600));
        assert!(run.queue_expired(created.plus_seconds(3_600), 3_600));

        run.apply(
            Transition::Expire(RunError::queue_timeout(3_600)),
            created.plus_seconds(3_600),
        )
        .unwrap();

        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.finished_at, Some(created.plus_seconds(3_600)));
        let error = run.error.unwrap();
        assert_eq!(error.code, RunErrorCode::QueueTimeout);
        assert!(error.message.contains("3600 s"), "{}", error.message);
    }

    #[test]
    fn only_a_queued_run_expires() {
        let mut running = queued_run();
        running
            .apply(start(), Timestamp::from_unix_millis(2_000))
            .unwrap();
        assert!(!running.queue_expired(Timestamp::from_unix_millis(1 << 50), 1));

        let refused = running.apply(
            Transition::Expire(RunError::queue_timeout(1)),
            Timestamp::from_unix_millis(3_000),
        );

        assert_eq!(
            refused,
            Err(TransitionError {
                from: RunStatus::Running,
                to: RunStatus::Failed
            })
        );
        assert_eq!(running.status, RunStatus::Running);
    }

    #[test]
    fn a_started_run_records_its_lease_and_deadline() {
        let mut run = queued_run();
        run.apply(start(), Timestamp::from_unix_millis(2_000))
            .unwrap();
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.started_at, Some(Timestamp::from_unix_millis(2_000)));
        assert!(run.lease_id.is_some());
        assert!(run.is_overdue(Timestamp::from_unix_millis(10_000)));
        assert!(!run.is_overdue(Timestamp::from_unix_millis(9_999)));
        assert!(run.heartbeat_expired(Timestamp::from_unix_millis(32_000), 30));
        assert!(!run.heartbeat_expired(Timestamp::from_unix_millis(31_999), 30));
    }

    #[test]
    fn a_failed_run_keeps_its_error() {
        let mut run = queued_run();
        run.apply(start(), Timestamp::from_unix_millis(2_000))
            .unwrap();
        run.apply(
            Transition::Fail(failure()),
            Timestamp::from_unix_millis(3_000),
        )
        .unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.error, Some(failure()));
        assert_eq!(
            run.duration_millis(Timestamp::from_unix_millis(9_000)),
            Some(1_000)
        );
    }

    #[test]
    fn a_queued_run_cannot_complete_without_starting() {
        let mut run = queued_run();
        let before = run.clone();
        let error = run
            .apply(Transition::Complete, Timestamp::from_unix_millis(2_000))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "run is queued; it cannot become completed"
        );
        assert_eq!(run, before);
    }

    #[test]
    fn the_transition_table_matches_the_lifecycle_diagram() {
        use RunStatus::*;
        // Failing from `queued` is allowed only as an expiry (queue_timeout).
        let allowed = |from: RunStatus, transition: &Transition| {
            matches!(
                (from, transition.target(), transition),
                (Queued, Running, _)
                    | (Queued, Cancelled, _)
                    | (Queued, Failed, Transition::Expire(_))
                    | (Running, Completed, _)
                    | (Running, Failed, Transition::Fail(_))
                    | (Running, TimedOut, _)
                    | (Running, Cancelled, _)
            )
        };
        for from in RunStatus::ALL {
            for transition in transitions() {
                let mut run = queued_run();
                run.status = from;
                let to = transition.target();
                let expected = allowed(from, &transition);
                let result = run.apply(transition, Timestamp::from_unix_millis(5));
                assert_eq!(result.is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    fn line(text: &str) -> EventPayload {
        EventPayload::Log {
            stream: LogStream::Stdout,
            text: text.into(),
        }
    }

    #[test]
    fn logs_past_the_cap_are_counted_not_kept_with_one_marker() {
        let mut run = queued_run();
        // Each line costs its length plus a newline: 4 bytes.
        let admitted = run.admit_events(vec![line("abc"), line("def")], 10);
        assert_eq!(admitted.len(), 2);
        let admitted = run.admit_events(
            vec![
                line("ghi"),
                EventPayload::Progress {
                    message: "half".into(),
                    percent: Some(50),
                },
                line("jkl"),
            ],
            10,
        );
        assert_eq!(
            admitted,
            vec![
                EventPayload::Truncated { max_log_bytes: 10 },
                EventPayload::Progress {
                    message: "half".into(),
                    percent: Some(50)
                },
            ]
        );
        assert!(run.logs_truncated);
        assert_eq!(run.log_bytes, 8);
        assert_eq!(run.dropped_log_bytes, 8);
        assert!(run.admit_events(vec![line("x")], 10).is_empty());
        assert_eq!(run.dropped_log_bytes, 10);
    }

    #[test]
    fn only_the_runs_lease_may_write_it_and_only_while_it_runs() {
        let mut run = queued_run();
        let lease = LeaseId::new(Ulid::from_parts(2, 9));
        assert_eq!(run.fence(&lease), Err(Fenced::LeaseSuperseded));
        run.apply(start(), Timestamp::from_unix_millis(2_000))
            .unwrap();
        assert_eq!(run.fence(&lease), Ok(()));
        let other = LeaseId::new(Ulid::from_parts(2, 10));
        assert_eq!(run.fence(&other), Err(Fenced::LeaseSuperseded));
        run.apply(
            Transition::Fail(failure()),
            Timestamp::from_unix_millis(3_000),
        )
        .unwrap();
        assert_eq!(run.fence(&lease), Err(Fenced::RunEnded(RunStatus::Failed)));
        assert_eq!(run.fence(&other), Err(Fenced::LeaseSuperseded));
    }

    #[test]
    fn worker_events_sent_again_are_skipped_and_a_gap_is_refused() {
        let mut run = queued_run();
        assert_eq!(run.accept_worker_events(1, 3), Ok(0));
        assert_eq!(run.worker_seq, 3);
        // The same batch again (its answer was lost): all seen.
        assert_eq!(run.accept_worker_events(1, 3), Ok(3));
        // Resent with more events after it: the first three are skipped.
        assert_eq!(run.accept_worker_events(1, 5), Ok(3));
        assert_eq!(run.worker_seq, 5);
        // A heartbeat (no events) changes nothing.
        assert_eq!(run.accept_worker_events(6, 0), Ok(0));
        assert_eq!(run.worker_seq, 5);
        let gap = run.accept_worker_events(8, 1).unwrap_err();
        assert_eq!(
            gap.to_string(),
            "firstSeq 8 skips worker events: the run has applied them up to 5, so a batch must start at 6 or earlier (numbering starts at 1)"
        );
        assert!(run.accept_worker_events(0, 1).is_err());
        assert_eq!(run.worker_seq, 5);
    }

    #[test]
    fn events_the_worker_dropped_are_counted_declared_and_do_not_stop_later_lines() {
        let mut run = queued_run();
        let notice = run.admit_dropped(12, 480);
        assert!(
            matches!(&notice, EventPayload::Log { stream: LogStream::System, text }
                if text.contains("dropped 12 events (480 log bytes)")),
            "{notice:?}"
        );
        assert!(run.logs_truncated);
        assert_eq!(run.dropped_log_bytes, 480);
        assert_eq!(
            (run.worker_dropped_lines, run.worker_dropped_bytes),
            (12, 480)
        );
        assert!(!run.log_cap_reached());
        // Later lines are still kept: the cap was not reached.
        let admitted = run.admit_events(vec![line("after")], 1_000);
        assert_eq!(admitted, vec![line("after")]);
        assert_eq!(run.dropped_log_bytes, 480);
    }

    #[test]
    fn terminal_statuses_never_change() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for transition in transitions() {
                let mut run = queued_run();
                run.status = from;
                assert!(
                    run.apply(transition, Timestamp::from_unix_millis(5))
                        .is_err()
                );
                assert_eq!(run.status, from);
            }
        }
    }
}
