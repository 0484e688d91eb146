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

/// What happened.
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
    Artifact {
        /// Its id.
        artifact_id: ArtifactId,
        /// Its name.
        name: String,
        /// What it is.
        artifact_type: ArtifactType,
    },
    /// The log cap was reached; later log bytes are counted, not kept.
    Truncated {
        /// The cap, in bytes.
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
