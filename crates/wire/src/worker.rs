//! The worker protocol: how the execution plane talks to the control plane over HTTP.
//!
//! Every call carries `Authorization: Bearer <worker token>` (`TLAO_WORKER_TOKEN`), and
//! every call about a run carries its `leaseId`. A lease may write its run only while the
//! run runs (fencing): once the run has ended (cancelled, timed out, failed by the reaper)
//! or another lease holds it, every write under it — events and heartbeats, artifacts,
//! finalization, uploads to the URLs it was given — is refused with `409`
//! (`urn:tlao:problem:lease-revoked`, whose `reason` says `run_ended` with the `runStatus`,
//! or `lease_superseded`), and nothing is stored: the worker must stop. Completing an
//! ended run is answered `200` with the outcome that stands, to the run's own lease.
//!
//! Events are numbered by the worker ([`EventBatch::first_seq`]) when the server says it
//! takes numbered batches ([`Assignment::numbered_events`]): a batch sent again after a
//! lost answer is then applied once. Events a worker could not deliver are declared with
//! [`WorkerEvent::Dropped`], never left as a quiet gap. A worker out of contact for
//! longer than [`Assignment::heartbeat_timeout_ms`] stops and writes nothing more: the
//! server has failed its run by then.
//!
//! | call | body → answer |
//! |---|---|
//! | `POST /worker/lease` | [`LeaseRequest`] → 200 [`Assignment`], or 204 when nothing is leasable within `waitSeconds` |
//! | `GET /worker/runs/{id}/assignment?leaseId=` | → 200 [`Assignment`] of a run leased for this worker |
//! | `POST /worker/runs/{id}/events` | [`EventBatch`] → 200 [`EventReport`] (also the heartbeat) |
//! | `POST /worker/runs/{id}/artifacts` | [`ArtifactRequest`] → 201 [`ArtifactUploadSlot`] |
//! | `POST /worker/runs/{id}/artifacts/{artifactId}/finalize` | [`FinalizeRequest`] → 200 [`ArtifactView`] |
//! | `POST /worker/runs/{id}/complete` | [`CompleteRequest`] → 200 [`RunView`] |

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tlao_domain::{ArtifactName, EventPayload, ExecutorName, LeaseId, Reported, Timestamp};

use crate::artifacts::ArtifactView;
use crate::events::{PlanEntryView, ToolCallView};
use crate::executors::ExecutorView;
use crate::names::{ArtifactTypeName, LogStreamName, RunStatusName};
use crate::runs::{RunErrorView, RunView, UsageView};
use crate::workspaces::ArchiveView;

/// The longest a lease request may wait for a run, in seconds.
pub const MAX_LEASE_WAIT_SECONDS: u32 = 30;

/// A presigned URL as the worker receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignedUrl {
    /// The absolute URL.
    pub url: String,
    /// `GET` or `PUT`.
    pub method: String,
    /// When it stops working (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// Headers the request must carry exactly as given (they are signed into the URL):
    /// an upload to S3 carries `If-None-Match: *` and the declared checksum. Absent when
    /// there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `POST /worker/lease`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseRequest {
    /// Only runs of these executors (their names); any executor when absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<crate::executors::ExecutorNameText>>))]
    pub executors: Option<Vec<ExecutorName>>,
    /// How long to wait for a leasable run (long-poll), 0 to 30 seconds.
    #[serde(default, deserialize_with = "crate::de::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30))]
    pub wait_seconds: u32,
    /// Which executor programs this worker can run (requirement 2.2); older workers
    /// omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityReport>,
}

/// What a worker found of the executor programs it knows of: for each executor, whether
/// its program is on the worker's `PATH` and its version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AvailabilityReport {
    /// The reporting worker, an id it chose at start (1 to 64 characters of letters,
    /// digits, `-`, `_`, `.`): the server counts distinct workers by it.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub worker: String,
    /// One entry per executor (at most 100).
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub executors: Vec<ExecutorProbe>,
}

/// One executor's program, as a worker found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorProbe {
    /// The executor's name.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::executors::ExecutorNameText))]
    pub name: ExecutorName,
    /// The program its record starts (a path, or a name looked up on `PATH`).
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub program: String,
    /// Whether the worker found it (an executable file).
    pub found: bool,
    /// The first line `PROGRAM --version` printed, when it answered in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub version: Option<String>,
}

impl AvailabilityReport {
    /// Whether the report is within the documented bounds (the worker id's characters
    /// and length, how many entries, the program and version lengths in characters).
    pub fn is_valid(&self) -> bool {
        let worker_ok = (1..=64).contains(&self.worker.len())
            && self
                .worker
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        worker_ok
            && self.executors.len() <= 100
            && self.executors.iter().all(|probe| {
                // Characters, as the document's `maxLength` counts them.
                probe.program.chars().count() <= 1024
                    && probe
                        .version
                        .as_ref()
                        .is_none_or(|v| v.chars().count() <= 200)
            })
    }
}

/// The workspace archive of an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ArchiveDownload {
    /// The archive (key, size, sha256).
    pub archive: ArchiveView,
    /// Where to download it.
    pub url: SignedUrl,
}

/// Everything a worker needs to execute a leased run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The run, `running`.
    pub run: RunView,
    /// The lease every later call carries (`lease_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub lease_id: LeaseId,
    /// The executor record to run it with.
    pub executor: ExecutorView,
    /// The TaskSpec's blob key (requirement 5.1).
    pub task_spec_key: String,
    /// Where to download the TaskSpec.
    pub task_spec_url: SignedUrl,
    /// The workspace archive, when the task has one (requirement 5.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveDownload>,
    /// When the run must be over.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub deadline: Timestamp,
    /// How often the server wants an event batch (an empty one is a heartbeat) while the
    /// executor is quiet, in milliseconds: [`heartbeat_interval`] of its heartbeat
    /// timeout. Workers send at least this often; servers before it left it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
    /// How long the server lets a worker be silent before it fails the run as
    /// `worker_lost`, in milliseconds. A worker that has not reached the server for this
    /// long stops its agent and ends the run without writing anything more. Servers
    /// before it left it out (a worker then takes three heartbeat intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Whether the server takes numbered event batches ([`EventBatch::first_seq`],
    /// [`WorkerEvent::Dropped`]). Servers before them left it out: a worker then sends
    /// neither.
    #[serde(default)]
    pub numbered_events: bool,
}

/// A run handed to a standby worker over its pipe instead of over HTTP: what
/// `GET /worker/runs/{id}/assignment` would answer, and the TaskSpec itself when it is
/// small, so the worker starts its agent without a request (see the local launcher's
/// standby workers). One line of JSON on the worker's standard input; not an HTTP body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    /// The run's assignment.
    pub assignment: Assignment,
    /// The TaskSpec at [`Assignment::task_spec_url`], as stored; absent when it is
    /// larger than [`MAX_HANDED_TASK_SPEC_BYTES`] (the worker downloads it then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_spec: Option<serde_json::Value>,
}

/// The largest TaskSpec a [`Handover`] carries.
pub const MAX_HANDED_TASK_SPEC_BYTES: u64 = 256 * 1024;

/// The largest [`Handover`] line a standby worker reads: room for the TaskSpec (its
/// JSON escaped again) and the rest of the assignment.
pub const MAX_HANDOVER_BYTES: u64 = 1024 * 1024;

/// The shortest heartbeat interval a server announces or a worker accepts.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// The heartbeat interval for a server that fails runs silent for `timeout`: a third of
/// it, so two heartbeats may be lost before the reaper gives up on a worker, between
/// [`MIN_HEARTBEAT_INTERVAL`] and 10 s.
pub fn heartbeat_interval(timeout: Duration) -> Duration {
    (timeout / 3).clamp(MIN_HEARTBEAT_INTERVAL, Duration::from_secs(10))
}

/// An event as a worker reports it; the server numbers and stamps it. Status, artifact
/// and truncation events are the server's own and cannot be sent.
///
/// `dropped` is not stored as such: it adds to the run's `droppedLogBytes`, sets
/// `logsTruncated`, and a line in the run's log says what was lost, where.
///
/// (Its schema is written out in `schema.rs`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum WorkerEvent {
    /// A line of output, ANSI-free.
    Log {
        /// Where it came from.
        stream: LogStreamName,
        /// The text, without the trailing newline.
        text: String,
    },
    /// A progress report.
    Progress {
        /// What is happening.
        message: String,
        /// How far along, 0 to 100, when known.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::de::percent_or_null"
        )]
        percent: Option<u8>,
    },
    /// The agent called a tool, or a call changed (same `call.id`).
    #[serde(rename = "tool_call")]
    ToolCall {
        /// The call.
        call: ToolCallView,
    },
    /// The agent's plan as it stands now.
    Plan {
        /// Its entries, in order.
        entries: Vec<PlanEntryView>,
    },
    /// Text the agent addressed to the user, in whole lines.
    Message {
        /// The text.
        text: String,
    },
    /// What the run has cost so far.
    Usage {
        /// The usage so far.
        usage: UsageView,
    },
    /// Events the worker could not deliver and dropped (its buffer overflowed while the
    /// server was unreachable, or the server refused the batch that held them).
    Dropped {
        /// How many events (log lines and progress reports).
        #[serde(deserialize_with = "crate::de::whole")]
        lines: u64,
        /// The log bytes among them (each line's text plus its newline).
        #[serde(deserialize_with = "crate::de::whole")]
        bytes: u64,
    },
}

impl WorkerEvent {
    /// The event a worker reports for `payload`; `None` for the kinds only the server
    /// records (status, artifact, truncation).
    pub fn from_payload(payload: EventPayload) -> Option<WorkerEvent> {
        match payload {
            EventPayload::Log { stream, text } => Some(WorkerEvent::Log {
                stream: stream.into(),
                text,
            }),
            EventPayload::Progress { message, percent } => {
                Some(WorkerEvent::Progress { message, percent })
            }
            EventPayload::ToolCall(call) => Some(WorkerEvent::ToolCall { call: call.into() }),
            EventPayload::Plan { entries } => Some(WorkerEvent::Plan {
                entries: entries.into_iter().map(Into::into).collect(),
            }),
            EventPayload::Message { text } => Some(WorkerEvent::Message { text }),
            EventPayload::Usage { usage } => Some(WorkerEvent::Usage {
                usage: usage.into(),
            }),
            EventPayload::Status { .. }
            | EventPayload::Artifact { .. }
            | EventPayload::Truncated { .. } => None,
        }
    }
}

impl From<WorkerEvent> for Reported {
    fn from(event: WorkerEvent) -> Self {
        match event {
            WorkerEvent::Log { stream, text } => Reported::Event(EventPayload::Log {
                stream: stream.into(),
                text,
            }),
            WorkerEvent::Progress { message, percent } => Reported::Event(EventPayload::Progress {
                message,
                percent: percent.map(|p| p.min(100)),
            }),
            WorkerEvent::ToolCall { call } => Reported::Event(EventPayload::ToolCall(call.into())),
            WorkerEvent::Plan { entries } => Reported::Event(EventPayload::Plan {
                entries: entries.into_iter().map(Into::into).collect(),
            }),
            WorkerEvent::Message { text } => Reported::Event(EventPayload::Message { text }),
            WorkerEvent::Usage { usage } => Reported::Event(EventPayload::Usage {
                usage: usage.into(),
            }),
            WorkerEvent::Dropped { lines, bytes } => Reported::Dropped { lines, bytes },
        }
    }
}

/// `POST /worker/runs/{id}/events`: a batch of events, possibly empty (a heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventBatch {
    /// The lease (`lease_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub lease_id: LeaseId,
    /// The worker's number of the first event. A worker numbers the events of a lease
    /// 1, 2, 3, ... and sends a batch again, from the same number, until it is answered;
    /// the server skips the events it already applied, so each is stored once. A batch
    /// starting past the next number the run expects is refused (`400`). Without it
    /// (older workers) every event is stored.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::whole_or_null"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub first_seq: Option<u64>,
    /// The events, in order.
    pub events: Vec<WorkerEvent>,
    /// Which executor programs this worker can run (requirement 2.2), when it reports
    /// them with this heartbeat; older workers omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityReport>,
}

/// The answer to an event batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    /// The run's status now.
    pub status: RunStatusName,
    /// Whether to stop the executor now (the run was cancelled or ended elsewhere).
    pub stop: bool,
    /// The run's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deadline: Option<Timestamp>,
    /// The last sequence number stored.
    pub last_seq: u64,
}

/// `POST /worker/runs/{id}/artifacts`: an artifact about to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactRequest {
    /// The lease (`lease_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub lease_id: LeaseId,
    /// Its name, a relative path that is also part of its blob key: `/`-separated
    /// segments of `A-Z`, `a-z`, `0-9`, `.`, `_`, `-` (not `.` or `..`), at most 255
    /// characters.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 255, pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+))*$"))]
    pub name: ArtifactName,
    /// What it is.
    pub artifact_type: ArtifactTypeName,
    /// Its size in bytes.
    #[serde(deserialize_with = "crate::de::whole")]
    pub size: u64,
    /// The lower-case hex SHA-256 of its bytes.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Its media type.
    pub content_type: String,
}

/// A pending artifact and where to upload its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ArtifactUploadSlot {
    /// The record, `pending`.
    pub artifact: ArtifactView,
    /// A presigned PUT for the bytes.
    pub upload: SignedUrl,
}

/// `POST /worker/runs/{id}/artifacts/{artifactId}/finalize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalizeRequest {
    /// The lease (`lease_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub lease_id: LeaseId,
    /// Why every upload attempt failed, when they did; the artifact becomes `upload_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How the run ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    /// The executor succeeded.
    Completed,
    /// The executor or the worker failed (`error` says why).
    Failed,
    /// The worker stopped the executor at the deadline.
    TimedOut,
    /// The worker stopped the executor because the run was cancelled.
    Cancelled,
}

/// `POST /worker/runs/{id}/complete`: `error` is required with `failed`. (Its schema is
/// written out in `schema.rs`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteRequest {
    /// The lease (`lease_...`).
    pub lease_id: LeaseId,
    /// How it ended.
    pub status: CompletionStatus,
    /// Why it failed; required with `failed`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::object_or_null"
    )]
    pub error: Option<RunErrorView>,
    /// What it cost, when the executor reported it.
    #[serde(default)]
    pub usage: UsageView,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn the_heartbeat_interval_is_a_third_of_the_timeout_within_bounds() {
        assert_eq!(
            heartbeat_interval(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_secs(600)),
            Duration::from_secs(10)
        );
        assert_eq!(
            heartbeat_interval(Duration::from_millis(90)),
            MIN_HEARTBEAT_INTERVAL
        );
        assert_eq!(heartbeat_interval(Duration::ZERO), MIN_HEARTBEAT_INTERVAL);
    }

    #[test]
    fn a_worker_cannot_send_the_servers_own_events() {
        for forged in [
            json!({"type": "status", "status": "completed"}),
            json!({"type": "truncated", "maxLogBytes": 1}),
            json!({"type": "log", "stream": "stdout", "text": "x", "seq": 4}),
        ] {
            assert!(
                serde_json::from_value::<WorkerEvent>(forged.clone()).is_err(),
                "{forged}"
            );
        }
        let line: WorkerEvent =
            serde_json::from_value(json!({"type": "log", "stream": "stdout", "text": "hi"}))
                .unwrap();
        assert_eq!(
            Reported::from(line),
            Reported::Event(EventPayload::Log {
                stream: tlao_domain::LogStream::Stdout,
                text: "hi".into()
            })
        );
    }

    #[test]
    fn a_numbered_batch_declares_what_its_worker_dropped() {
        let batch: EventBatch = serde_json::from_value(json!({
            "leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "firstSeq": 41,
            "events": [{"type": "dropped", "lines": 12, "bytes": 480}]
        }))
        .unwrap();
        assert_eq!(batch.first_seq, Some(41));
        assert_eq!(
            batch.events,
            [WorkerEvent::Dropped {
                lines: 12,
                bytes: 480
            }]
        );
        assert_eq!(
            Reported::from(batch.events[0].clone()),
            Reported::Dropped {
                lines: 12,
                bytes: 480
            }
        );
        // An older worker's batch has no number.
        let old: EventBatch = serde_json::from_value(
            json!({"leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV", "events": []}),
        )
        .unwrap();
        assert_eq!(old.first_seq, None);
        // Integers may be spelled as whole floats, as JSON Schema reads them; fractions
        // may not.
        let floats: EventBatch = serde_json::from_value(json!({
            "leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "firstSeq": 41.0,
            "events": [{"type": "dropped", "lines": 12.0, "bytes": 480.0}]
        }))
        .unwrap();
        assert_eq!(floats, batch);
        for fraction in [
            json!({"leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV", "firstSeq": 41.5, "events": []}),
            json!({"leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV", "events": [{"type": "dropped", "lines": 1.5, "bytes": 4}]}),
        ] {
            assert!(
                serde_json::from_value::<EventBatch>(fraction.clone()).is_err(),
                "{fraction}"
            );
        }
    }
}
