//! The worker protocol: how the execution plane talks to the control plane over HTTP.
//!
//! Every call carries `Authorization: Bearer <worker token>` (`TLAO_WORKER_TOKEN`), and
//! every call about a run carries its `leaseId`; a `409` means the lease is gone (the run
//! was cancelled or failed elsewhere) and the worker must stop.
//!
//! | call | body → answer |
//! |---|---|
//! | `POST /worker/lease` | [`LeaseRequest`] → 200 [`Assignment`], or 204 when nothing is leasable within `waitSeconds` |
//! | `GET /worker/runs/{id}/assignment?leaseId=` | → 200 [`Assignment`] of a run leased for this worker |
//! | `POST /worker/runs/{id}/events` | [`EventBatch`] → 200 [`EventReport`] (also the heartbeat) |
//! | `POST /worker/runs/{id}/artifacts` | [`ArtifactRequest`] → 201 [`ArtifactUploadSlot`] |
//! | `POST /worker/runs/{id}/artifacts/{artifactId}/finalize` | [`FinalizeRequest`] → 200 [`ArtifactView`] |
//! | `POST /worker/runs/{id}/complete` | [`CompleteRequest`] → 200 [`RunView`] |

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tlao_domain::{ArtifactName, EventPayload, ExecutorName, LeaseId, Timestamp};

use crate::artifacts::ArtifactView;
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
}

/// The shortest heartbeat interval a server announces or a worker accepts.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// The heartbeat interval for a server that fails runs silent for `timeout`: a third of
/// it, so two heartbeats may be lost before the reaper gives up on a worker, between
/// [`MIN_HEARTBEAT_INTERVAL`] and 10 s.
pub fn heartbeat_interval(timeout: Duration) -> Duration {
    (timeout / 3).clamp(MIN_HEARTBEAT_INTERVAL, Duration::from_secs(10))
}

/// An event as a worker reports it; the server numbers and stamps it. Status, artifact
/// and truncation events are the server's own and cannot be sent. (Its schema is written
/// out in `schema.rs`.)
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
            EventPayload::Status { .. }
            | EventPayload::Artifact { .. }
            | EventPayload::Truncated { .. } => None,
        }
    }
}

impl From<WorkerEvent> for EventPayload {
    fn from(event: WorkerEvent) -> Self {
        match event {
            WorkerEvent::Log { stream, text } => EventPayload::Log {
                stream: stream.into(),
                text,
            },
            WorkerEvent::Progress { message, percent } => EventPayload::Progress {
                message,
                percent: percent.map(|p| p.min(100)),
            },
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
    /// The events, in order.
    pub events: Vec<WorkerEvent>,
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
            EventPayload::from(line),
            EventPayload::Log {
                stream: tlao_domain::LogStream::Stdout,
                text: "hi".into()
            }
        );
    }
}
