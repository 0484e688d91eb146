//! The wire format of `GET /runs/{id}/events`, shared by the server that writes it and
//! the client that reads it ([`crate::EventStream`]).
//!
//! The body is `text/event-stream`. Each stored run event is one SSE message whose
//! `id:` is its sequence number, whose `event:` is its type ([`event_name`]: `log`,
//! `progress`, `status`, `artifact`, `truncated`) and whose `data:` is the event as
//! camelCase JSON (`{"seq","at","type",...}`, the domain's [`RunEvent`]). Once the run
//! is over and every event up to its last sequence number was sent, one [`END_EVENT`]
//! message carries a [`StreamEnd`] (with `id:` the last sequence number) and the server
//! closes. Comment lines (`: keep-alive`) keep idle connections open.
//!
//! A client resumes after a drop by sending `Last-Event-ID: <last seq it received>` (or
//! `?after=<seq>`); it receives every later event exactly once, in order.

use serde::{Deserialize, Serialize};
use tlao_domain::{EventPayload, RunEvent, RunStatus};

/// The SSE event name of the terminal message.
pub const END_EVENT: &str = "end";

/// The SSE event names of stored events, in the order of [`EventPayload`]'s variants.
pub const EVENT_NAMES: [&str; 5] = ["log", "progress", "status", "artifact", "truncated"];

/// The SSE event name of a stored event: its `type`.
pub fn event_name(payload: &EventPayload) -> &'static str {
    match payload {
        EventPayload::Log { .. } => EVENT_NAMES[0],
        EventPayload::Progress { .. } => EVENT_NAMES[1],
        EventPayload::Status { .. } => EVENT_NAMES[2],
        EventPayload::Artifact { .. } => EVENT_NAMES[3],
        EventPayload::Truncated { .. } => EVENT_NAMES[4],
    }
}

/// The data of the terminal `end` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEnd {
    /// The run's final status: `completed`, `failed`, `timed_out` or `cancelled`.
    pub status: RunStatus,
    /// The run's last sequence number; every event up to it was sent.
    pub last_seq: u64,
}

/// What an event stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStreamItem {
    /// A stored event of the run.
    Event(RunEvent),
    /// The run is over; nothing follows.
    End(StreamEnd),
}
