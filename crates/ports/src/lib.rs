//! The ports of TLÁO Codex: what the core needs from the world.
//!
//! - [`Table`]: a DynamoDB-shaped single table (conditional writes, prefix queries with
//!   cursors, all-or-nothing transactions). Engines: memory, SQLite, DynamoDB.
//! - [`BlobStore`]: bytes by key, streamed, with presigned GET/PUT URLs. Engines: local
//!   files, S3.
//! - [`Clock`]: the current time, so tests can move it.
//! - [`RunLauncher`]: starts a single-job worker for a leased run (a process, a container).
//! - [`EventBus`]: delivers stored run events to live subscribers (in-process for now).
//!
//! Every adapter runs the same contract suite (feature `testsuite`): an adapter is done
//! when the suite passes on it.

pub mod blob;
pub mod clock;
pub mod event_bus;
pub mod fault;
pub mod launcher;
pub mod table;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use blob::{
    BlobError, BlobKey, BlobKeyError, BlobMeta, BlobStore, ByteStream, PresignError,
    PresignedGateway, PresignedResponse, PresignedUrl, ServeError,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use event_bus::{EventBus, EventBusError, EventSubscription, RecvError};
pub use fault::{StorageFault, Store as FaultyStore};
pub use launcher::{Launch, LaunchError, RunLauncher, StopError, WorkerExit};
pub use table::{
    AttrValue, Attrs, Condition, CountAfter, Cursor, Direction, Item, MAX_TRANSACT_OPS, Page,
    Query, Table, TableError, Update, WriteOp,
};
