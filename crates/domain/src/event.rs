//! Run events: the timeline of a run (`PK=RUN#{run}, SK=STEP#{seq}`).
//!
//! Events carry a server-assigned, gap-free sequence number per run, which is also the SSE
//! `id:`, so a client that reconnects resumes exactly after the last event it saw.

use serde::{Deserialize, Serialize};

use crate::artifact::ArtifactType;
use crate::id::ArtifactId;
use crate::run::RunStatus;
use crate::time::Timestamp;

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The executor's standard output.
    Stdout,
    /// The executor's standard error.
    Stderr,
    /// The worker itself (setup, artifact upload, ...).
    System,
}

/// What happened. On the wire (and in storage) `{"type": "log", ...}` with camelCase
/// fields; the snake_case field names of earlier versions are still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventPayload {
    /// A line of output, ANSI-free.
    Log {
        /// Where it came from.
        stream: LogStream,
        /// The text, without the trailing newline.
        text: String,
    },
    /// A progress report.
    Progress {
        /// What is happening.
        message: String,
        /// How far along, 0 to 100, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
    },
    /// The run's status changed.
    Status {
        /// The new status.
        status: RunStatus,
    },
    /// An artifact was stored.
    #[serde(rename_all = "camelCase")]
    Artifact {
        /// Its id.
        #[serde(alias = "artifact_id")]
        artifact_id: ArtifactId,
        /// Its name.
        name: String,
        /// What it is.
        #[serde(alias = "artifact_type")]
        artifact_type: ArtifactType,
    },
    /// The agent called a tool (or a call it made changed: started, finished, failed).
    /// Calls are told apart by `id`; a later event with the same id updates the call.
    #[serde(rename = "tool_call")]
    ToolCall(ToolCall),
    /// The agent's plan as it stands now (each plan event replaces the previous one).
    Plan {
        /// Its entries, in order.
        entries: Vec<PlanEntry>,
    },
    /// Text the agent addressed to the user, merged into whole lines.
    Message {
        /// The text.
        text: String,
    },
    /// What the run has cost so far, as the agent reports it (each usage event replaces
    /// the previous one; the run's `usage` is the last).
    Usage {
        /// The usage so far.
        usage: crate::run::Usage,
    },
    /// The log cap was reached; later log bytes are counted, not kept.
    #[serde(rename_all = "camelCase")]
    Truncated {
        /// The cap, in bytes.
        #[serde(alias = "max_log_bytes")]
        max_log_bytes: u64,
    },
}

impl EventPayload {
    /// The bytes this event adds to the run's log, for the log cap.
    pub fn log_bytes(&self) -> u64 {
        match self {
            EventPayload::Log { text, .. } => text.len() as u64 + 1,
            _ => 0,
        }
    }
}

/// A tool call of the agent, as the run's timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    /// The agent's id of the call (unique within the run).
    pub id: String,
    /// What the call does, in the agent's words (`Write src/main.rs`, `cargo test`).
    pub title: String,
    /// What kind of tool it is.
    pub kind: ToolKind,
    /// Where the call is.
    pub status: ToolStatus,
    /// The files it reads or changes, relative to the workspace where they are in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A command's exit code, when it ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A short summary of what it changed (`+12 -3`), when it edited files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// What kind of tool a call uses (ACP's kinds, the rare ones folded into `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    /// Changes files.
    Edit,
    /// Reads files.
    Read,
    /// Runs a command.
    Execute,
    /// Searches files or the web.
    Search,
    /// Fetches a URL.
    Fetch,
    /// Anything else (thinking, deleting, moving, switching modes, ...).
    Other,
}

/// Where a tool call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// Announced, not started (e.g. waiting for permission).
    Pending,
    /// Running.
    InProgress,
    /// Finished successfully.
    Completed,
    /// Failed, or was refused.
    Failed,
}

/// One entry of an agent's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    /// What is to be done.
    pub content: String,
    /// How far it is.
    pub status: PlanStatus,
}

/// Where a plan entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Not started.
    Pending,
    /// Being done.
    InProgress,
    /// Done.
    Completed,
}

/// One item of a worker's report: an event to store, or a declaration that the worker
/// dropped events it could not deliver (counted on the run, said in its log; see
/// [`crate::Run::admit_dropped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// An event to store (a log line, a progress report).
    Event(EventPayload),
    /// The worker dropped `lines` events holding `bytes` log bytes.
    Dropped {
        /// How many events.
        lines: u64,
        /// Their log bytes.
        bytes: u64,
    },
}

/// One stored event of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    /// The sequence number, from 1, gap-free per run.
    pub seq: u64,
    /// When the server stored it.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub payload: EventPayload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Ulid;

    #[test]
    fn events_are_camel_case_json_with_their_type_and_sequence() {
        let artifact_id = ArtifactId::new(Ulid::from_parts(1, 2));
        let event = RunEvent {
            seq: 7,
            at: Timestamp::from_unix_millis(0),
            payload: EventPayload::Artifact {
                artifact_id: artifact_id.clone(),
                name: "plan.json".into(),
                artifact_type: ArtifactType::Plan,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 7, "at": "1970-01-01T00:00:00.000Z", "type": "artifact",
                "artifactId": artifact_id.to_string(), "name": "plan.json", "artifactType": "plan"
            })
        );
        assert_eq!(serde_json::from_value::<RunEvent>(json).unwrap(), event);
        let truncated = EventPayload::Truncated { max_log_bytes: 24 };
        assert_eq!(
            serde_json::to_value(&truncated).unwrap(),
            serde_json::json!({"type": "truncated", "maxLogBytes": 24})
        );
    }

    #[test]
    fn events_stored_with_snake_case_fields_still_read() {
        let old: EventPayload =
            serde_json::from_str(r#"{"type": "truncated", "max_log_bytes": 10}"#).unwrap();
        assert_eq!(old, EventPayload::Truncated { max_log_bytes: 10 });
    }
}
