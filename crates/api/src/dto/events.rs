//! The messages of `GET /runs/{runId}/events`, described for the OpenAPI document.
//!
//! The stream writes the domain's [`tlao_domain::RunEvent`] and the SDK's
//! [`tlao_sdk::events::StreamEnd`] directly; these types only describe them, so clients
//! (the TypeScript SDK generates its event types from them) follow every change. A test
//! below decodes every kind of stored event into [`RunEventMessage`] with unknown fields
//! refused and checks it re-encodes to the same JSON, so the description cannot drift
//! from what the stream sends.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ArtifactTypeName, RunStatusName};

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStreamName {
    /// The executor's standard output.
    Stdout,
    /// The executor's standard error.
    Stderr,
    /// The worker itself (setup, artifact upload, ...).
    System,
}

/// The data of one stored-event message of the stream: its SSE `id:` is `seq`, its SSE
/// `event:` is `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RunEvent)]
pub enum RunEventMessage {
    /// A line of output, ANSI-free.
    #[serde(rename_all = "camelCase")]
    Log {
        /// The sequence number, from 1, gap-free per run.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[schema(format = DateTime)]
        at: String,
        /// Where it came from.
        stream: LogStreamName,
        /// The text, without the trailing newline.
        text: String,
    },
    /// A progress report.
    #[serde(rename_all = "camelCase")]
    Progress {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[schema(format = DateTime)]
        at: String,
        /// What is happening.
        message: String,
        /// How far along, 0 to 100, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
    },
    /// The run's status changed.
    #[serde(rename_all = "camelCase")]
    Status {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[schema(format = DateTime)]
        at: String,
        /// The new status.
        status: RunStatusName,
    },
    /// An artifact was stored.
    #[serde(rename_all = "camelCase")]
    Artifact {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[schema(format = DateTime)]
        at: String,
        /// Its id (`art_...`), for `GET /artifacts/{artifactId}`.
        artifact_id: String,
        /// Its name.
        name: String,
        /// What it is.
        artifact_type: ArtifactTypeName,
    },
    /// The log cap was reached; later log bytes are counted, not kept.
    #[serde(rename_all = "camelCase")]
    Truncated {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[schema(format = DateTime)]
        at: String,
        /// The cap, in bytes.
        max_log_bytes: u64,
    },
}

/// The data of the terminal `end` message: the run is over and every event up to
/// `lastSeq` was sent; the server closes the stream after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = StreamEnd)]
pub struct StreamEndMessage {
    /// The run's final status: `completed`, `failed`, `timed_out` or `cancelled`.
    pub status: RunStatusName,
    /// The run's last sequence number.
    pub last_seq: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::Value;
    use tlao_domain::{
        ArtifactId, ArtifactType, EventPayload, LogStream, RunEvent, RunStatus, Timestamp, Ulid,
    };
    use tlao_sdk::events::{EVENT_NAMES, StreamEnd};

    use super::*;

    fn every_kind_of_event() -> Vec<RunEvent> {
        let payloads = vec![
            EventPayload::Log {
                stream: LogStream::Stdout,
                text: "hello".into(),
            },
            EventPayload::Log {
                stream: LogStream::Stderr,
                text: "oops".into(),
            },
            EventPayload::Log {
                stream: LogStream::System,
                text: "setup".into(),
            },
            EventPayload::Progress {
                message: "half way".into(),
                percent: Some(50),
            },
            EventPayload::Progress {
                message: "thinking".into(),
                percent: None,
            },
            EventPayload::Status {
                status: RunStatus::TimedOut,
            },
            EventPayload::Artifact {
                artifact_id: ArtifactId::new(Ulid::from_parts(1, 2)),
                name: "plan.json".into(),
                artifact_type: ArtifactType::Plan,
            },
            EventPayload::Truncated {
                max_log_bytes: 1024,
            },
        ];
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| RunEvent {
                seq: i as u64 + 1,
                at: Timestamp::from_unix_millis(1_700_000_000_123),
                payload,
            })
            .collect()
    }

    #[test]
    fn every_stored_event_is_described_exactly_by_the_run_event_schema() {
        let events = every_kind_of_event();
        let mut types = Vec::new();
        for event in &events {
            let wire = serde_json::to_value(event).unwrap();
            let described: RunEventMessage = serde_json::from_value(wire.clone())
                .unwrap_or_else(|err| panic!("{wire} is not a RunEvent message: {err}"));
            assert_eq!(serde_json::to_value(&described).unwrap(), wire);
            types.push(wire["type"].as_str().unwrap().to_owned());
        }
        for name in EVENT_NAMES {
            assert!(types.iter().any(|t| t == name), "no {name} event tested");
        }
    }

    #[test]
    fn the_end_message_is_described_exactly_by_the_stream_end_schema() {
        for status in [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Cancelled,
        ] {
            let wire = serde_json::to_value(StreamEnd {
                status,
                last_seq: 9,
            })
            .unwrap();
            let described: StreamEndMessage = serde_json::from_value(wire.clone()).unwrap();
            assert_eq!(serde_json::to_value(&described).unwrap(), wire);
        }
    }

    #[test]
    fn the_document_names_both_messages_with_their_variants() {
        let doc: Value =
            serde_json::from_str(&crate::openapi::openapi().to_json().unwrap()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let variants = schemas["RunEvent"]["oneOf"]
            .as_array()
            .expect("RunEvent is a oneOf");
        assert_eq!(variants.len(), EVENT_NAMES.len());
        assert_eq!(
            schemas["StreamEnd"]["properties"]["status"]["$ref"],
            "#/components/schemas/RunStatusName"
        );
    }
}
