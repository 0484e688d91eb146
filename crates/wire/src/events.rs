//! The wire format of `GET /runs/{id}/events`, written by the server and read by the
//! SDKs, the CLI and the console.
//!
//! The body is `text/event-stream`. Each stored run event is one SSE message whose `id:`
//! is its sequence number, whose `event:` is its type ([`RunEventMessage::name`]: one of
//! [`EVENT_NAMES`]) and whose `data:` is the [`RunEventMessage`] as camelCase JSON
//! (`{"seq","at","type",...}`). Once the run is over and every event up to its last
//! sequence number was sent, one [`END_EVENT`] message carries a [`StreamEndMessage`]
//! (with `id:` the last sequence number) and the server closes. Comment lines
//! (`: keep-alive`) keep idle connections open.
//!
//! A client resumes after a drop by sending `Last-Event-ID: <last seq it received>` (or
//! `?after=<seq>`); it receives every later event exactly once, in order.

use serde::{Deserialize, Serialize};
use tlao_domain::{ArtifactId, EventPayload, PlanEntry, RunEvent, Timestamp, ToolCall};

use crate::names::{
    ArtifactTypeName, LogStreamName, PlanStatusName, RunStatusName, ToolKindName, ToolStatusName,
};
use crate::runs::UsageView;

/// The SSE event name of the terminal message.
pub const END_EVENT: &str = "end";

/// The SSE event names of stored events, in the order of [`RunEventMessage`]'s variants.
pub const EVENT_NAMES: [&str; 9] = [
    "log",
    "progress",
    "status",
    "artifact",
    "truncated",
    "tool_call",
    "plan",
    "message",
    "usage",
];

/// A tool call of the agent (`tool_call` events; a later event with the same `id`
/// updates the call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolCallView {
    /// The agent's id of the call (unique within the run).
    pub id: String,
    /// What the call does, in the agent's words.
    pub title: String,
    /// What kind of tool it is.
    pub kind: ToolKindName,
    /// Where the call is.
    pub status: ToolStatusName,
    /// The files it reads or changes (relative to the workspace where they are in it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A command's exit code, when it ran one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::whole_or_null"
    )]
    pub exit_code: Option<i32>,
    /// A short summary of what it changed (`+12 -3`), when it edited files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl From<ToolCall> for ToolCallView {
    fn from(call: ToolCall) -> Self {
        ToolCallView {
            id: call.id,
            title: call.title,
            kind: call.kind.into(),
            status: call.status.into(),
            paths: call.paths,
            exit_code: call.exit_code,
            diff: call.diff,
        }
    }
}

impl From<ToolCallView> for ToolCall {
    fn from(call: ToolCallView) -> Self {
        ToolCall {
            id: call.id,
            title: call.title,
            kind: call.kind.into(),
            status: call.status.into(),
            paths: call.paths,
            exit_code: call.exit_code,
            diff: call.diff,
        }
    }
}

/// One entry of an agent's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanEntryView {
    /// What is to be done.
    pub content: String,
    /// How far it is.
    pub status: PlanStatusName,
}

impl From<PlanEntry> for PlanEntryView {
    fn from(entry: PlanEntry) -> Self {
        PlanEntryView {
            content: entry.content,
            status: entry.status.into(),
        }
    }
}

impl From<PlanEntryView> for PlanEntry {
    fn from(entry: PlanEntryView) -> Self {
        PlanEntry {
            content: entry.content,
            status: entry.status.into(),
        }
    }
}

/// The data of one stored-event message of the stream: its SSE `id:` is `seq`, its SSE
/// `event:` is `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = RunEvent))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RunEventMessage {
    /// A line of output, ANSI-free.
    #[serde(rename_all = "camelCase")]
    Log {
        /// The sequence number, from 1, gap-free per run.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
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
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
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
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// The new status.
        status: RunStatusName,
    },
    /// An artifact was stored.
    #[serde(rename_all = "camelCase")]
    Artifact {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// Its id (`art_...`), for `GET /artifacts/{artifactId}`.
        #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^art_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
        artifact_id: ArtifactId,
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
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// The cap, in bytes.
        max_log_bytes: u64,
    },
    /// The agent called a tool, or a call changed (same `call.id`).
    #[serde(rename = "tool_call", rename_all = "camelCase")]
    ToolCall {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// The call.
        call: ToolCallView,
    },
    /// The agent's plan as it stands now (replaces the previous one).
    #[serde(rename_all = "camelCase")]
    Plan {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// Its entries, in order.
        entries: Vec<PlanEntryView>,
    },
    /// Text the agent addressed to the user, in whole lines.
    #[serde(rename_all = "camelCase")]
    Message {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// The text.
        text: String,
    },
    /// What the run has cost so far, as the agent reports it (replaces the previous one).
    #[serde(rename_all = "camelCase")]
    Usage {
        /// The sequence number.
        seq: u64,
        /// When the server stored it (RFC 3339).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        at: Timestamp,
        /// The usage so far.
        usage: UsageView,
    },
}

impl RunEventMessage {
    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            RunEventMessage::Log { seq, .. }
            | RunEventMessage::Progress { seq, .. }
            | RunEventMessage::Status { seq, .. }
            | RunEventMessage::Artifact { seq, .. }
            | RunEventMessage::Truncated { seq, .. }
            | RunEventMessage::ToolCall { seq, .. }
            | RunEventMessage::Plan { seq, .. }
            | RunEventMessage::Message { seq, .. }
            | RunEventMessage::Usage { seq, .. } => *seq,
        }
    }

    /// Its SSE event name: its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            RunEventMessage::Log { .. } => EVENT_NAMES[0],
            RunEventMessage::Progress { .. } => EVENT_NAMES[1],
            RunEventMessage::Status { .. } => EVENT_NAMES[2],
            RunEventMessage::Artifact { .. } => EVENT_NAMES[3],
            RunEventMessage::Truncated { .. } => EVENT_NAMES[4],
            RunEventMessage::ToolCall { .. } => EVENT_NAMES[5],
            RunEventMessage::Plan { .. } => EVENT_NAMES[6],
            RunEventMessage::Message { .. } => EVENT_NAMES[7],
            RunEventMessage::Usage { .. } => EVENT_NAMES[8],
        }
    }
}

impl From<RunEvent> for RunEventMessage {
    fn from(event: RunEvent) -> Self {
        let RunEvent { seq, at, payload } = event;
        match payload {
            EventPayload::Log { stream, text } => RunEventMessage::Log {
                seq,
                at,
                stream: stream.into(),
                text,
            },
            EventPayload::Progress { message, percent } => RunEventMessage::Progress {
                seq,
                at,
                message,
                percent,
            },
            EventPayload::Status { status } => RunEventMessage::Status {
                seq,
                at,
                status: status.into(),
            },
            EventPayload::Artifact {
                artifact_id,
                name,
                artifact_type,
            } => RunEventMessage::Artifact {
                seq,
                at,
                artifact_id,
                name,
                artifact_type: artifact_type.into(),
            },
            EventPayload::Truncated { max_log_bytes } => RunEventMessage::Truncated {
                seq,
                at,
                max_log_bytes,
            },
            EventPayload::ToolCall(call) => RunEventMessage::ToolCall {
                seq,
                at,
                call: call.into(),
            },
            EventPayload::Plan { entries } => RunEventMessage::Plan {
                seq,
                at,
                entries: entries.into_iter().map(Into::into).collect(),
            },
            EventPayload::Message { text } => RunEventMessage::Message { seq, at, text },
            EventPayload::Usage { usage } => RunEventMessage::Usage {
                seq,
                at,
                usage: usage.into(),
            },
        }
    }
}

/// The data of the terminal `end` message: the run is over and every event up to
/// `lastSeq` was sent; the server closes the stream after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StreamEnd))]
#[serde(rename_all = "camelCase")]
pub struct StreamEndMessage {
    /// The run's final status: `completed`, `failed`, `timed_out` or `cancelled`.
    pub status: RunStatusName,
    /// The run's last sequence number; every event up to it was sent.
    pub last_seq: u64,
}

/// One message of the stream as an SSE client reads it (`event`, `data`, `id`), for the
/// document: OpenAPI 3.1 has no word for a stream's items, so the `text/event-stream`
/// schema describes each message, as OpenAPI 3.2's `itemSchema` does. The `data` is a
/// JSON text: a [`RunEventMessage`] (`RunEvent`) under its type's name, a
/// [`StreamEndMessage`] (`StreamEnd`) under [`END_EVENT`].
#[cfg(feature = "openapi")]
pub struct StreamMessage;

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for StreamMessage {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((
            <RunEventMessage as utoipa::ToSchema>::name().into_owned(),
            RunEventMessage::schema(),
        ));
        schemas.push((
            <StreamEndMessage as utoipa::ToSchema>::name().into_owned(),
            StreamEndMessage::schema(),
        ));
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for StreamMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};

        let message = |names: &[&str], data: Ref, description: &str| {
            let string = || ObjectBuilder::new().schema_type(Type::String);
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .property("event", string().enum_values(Some(names.iter().copied())))
                .required("event")
                .property(
                    "id",
                    string()
                        .pattern(Some("^[0-9]+$"))
                        .description(Some("The sequence number (the resume point)")),
                )
                .required("id")
                .property(
                    "data",
                    string()
                        .content_media_type("application/json")
                        .content_schema(Some(data))
                        .description(Some("The JSON text of the message")),
                )
                .required("data")
        };
        OneOfBuilder::new()
            .description(Some(
                "One message of a run's event stream, as an SSE client reads it: `event` names \
                 it, `id` is a sequence number and `data` a JSON text.",
            ))
            .item(message(
                &EVENT_NAMES,
                Ref::from_schema_name(<RunEventMessage as utoipa::ToSchema>::name()),
                "A stored event: `data` is a `RunEvent` whose `type` is `event` and whose \
                 `seq` is `id`.",
            ))
            .item(message(
                &[END_EVENT],
                Ref::from_schema_name(<StreamEndMessage as utoipa::ToSchema>::name()),
                "The last message: `data` is a `StreamEnd` and `id` its `lastSeq`; the \
                 server closes the stream after it.",
            ))
            .into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use tlao_domain::{ArtifactType, LogStream, RunStatus, Ulid};

    use super::*;

    fn event(seq: u64, payload: EventPayload) -> RunEvent {
        RunEvent {
            seq,
            at: Timestamp::from_unix_millis(1_700_000_000_123),
            payload,
        }
    }

    #[test]
    fn every_kind_of_stored_event_is_sent_under_its_name_and_read_back() {
        let artifact_id = ArtifactId::new(Ulid::from_parts(1, 2));
        let cases = [
            (
                EventPayload::Log {
                    stream: LogStream::Stderr,
                    text: "oops".into(),
                },
                json!({"type": "log", "stream": "stderr", "text": "oops"}),
            ),
            (
                EventPayload::Progress {
                    message: "half way".into(),
                    percent: Some(50),
                },
                json!({"type": "progress", "message": "half way", "percent": 50}),
            ),
            (
                EventPayload::Status {
                    status: RunStatus::TimedOut,
                },
                json!({"type": "status", "status": "timed_out"}),
            ),
            (
                EventPayload::Artifact {
                    artifact_id: artifact_id.clone(),
                    name: "plan.json".into(),
                    artifact_type: ArtifactType::Plan,
                },
                json!({"type": "artifact", "artifactId": artifact_id.to_string(),
                       "name": "plan.json", "artifactType": "plan"}),
            ),
            (
                EventPayload::Truncated {
                    max_log_bytes: 1024,
                },
                json!({"type": "truncated", "maxLogBytes": 1024}),
            ),
            (
                EventPayload::ToolCall(tlao_domain::ToolCall {
                    id: "call-1".into(),
                    title: "Write NEW_FILE.md".into(),
                    kind: tlao_domain::ToolKind::Edit,
                    status: tlao_domain::ToolStatus::InProgress,
                    paths: vec!["NEW_FILE.md".into()],
                    exit_code: None,
                    diff: Some("+3 -0".into()),
                }),
                json!({"type": "tool_call", "call": {"id": "call-1", "title": "Write NEW_FILE.md",
                       "kind": "edit", "status": "in_progress", "paths": ["NEW_FILE.md"],
                       "diff": "+3 -0"}}),
            ),
            (
                EventPayload::Plan {
                    entries: vec![tlao_domain::PlanEntry {
                        content: "write the file".into(),
                        status: tlao_domain::PlanStatus::Completed,
                    }],
                },
                json!({"type": "plan", "entries": [{"content": "write the file", "status": "completed"}]}),
            ),
            (
                EventPayload::Message {
                    text: "Done.".into(),
                },
                json!({"type": "message", "text": "Done."}),
            ),
            (
                EventPayload::Usage {
                    usage: tlao_domain::Usage::Reported {
                        credits: None,
                        summary: "1204 input / 318 output tokens, 0.0123 USD".into(),
                        input_tokens: Some(1204),
                        output_tokens: Some(318),
                        cached_tokens: None,
                        cost: Some(tlao_domain::Cost {
                            amount: "0.0123".into(),
                            currency: "USD".into(),
                        }),
                    },
                },
                json!({"type": "usage", "usage": {"kind": "reported",
                       "summary": "1204 input / 318 output tokens, 0.0123 USD",
                       "inputTokens": 1204, "outputTokens": 318,
                       "cost": {"amount": "0.0123", "currency": "USD"}}}),
            ),
        ];
        assert_eq!(cases.len(), EVENT_NAMES.len());
        for (i, (payload, mut expected)) in cases.into_iter().enumerate() {
            let message = RunEventMessage::from(event(i as u64 + 1, payload));
            assert_eq!(message.name(), EVENT_NAMES[i]);
            expected["seq"] = json!(i + 1);
            expected["at"] = json!("2023-11-14T22:13:20.123Z");
            let wire = serde_json::to_value(&message).unwrap();
            assert_eq!(wire, expected);
            assert_eq!(
                serde_json::from_value::<RunEventMessage>(wire).unwrap(),
                message
            );
        }
    }
}
