//! What a client reads from `GET /runs/{id}/events`: the wire format is
//! [`tlao_wire::events`] (re-exported here); [`EventStreamItem`] is one item of it as
//! [`crate::EventStream`] yields it.

pub use tlao_wire::events::{END_EVENT, EVENT_NAMES, RunEventMessage, StreamEndMessage};

/// What an event stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStreamItem {
    /// A stored event of the run.
    Event(RunEventMessage),
    /// The run is over; nothing follows.
    End(StreamEndMessage),
}
