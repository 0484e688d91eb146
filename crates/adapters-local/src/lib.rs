//! Local adapters: everything TLÁO Codex needs to run on one machine with no cloud.
//!
//! - [`MemoryTable`]: the [`Table`](tlao_ports::Table) port in memory, for tests.
//! - [`SqliteTable`]: the embedded default, a persistent SQLite file in WAL mode.
//! - [`FsBlobStore`]: blobs as files under a root, with HMAC-signed presigned URLs.
//! - [`ProcessLauncher`]: one worker process per run, in a process tree that ends with it.
//! - [`LocalEventBus`]: run events to live subscribers within this process.
//! - [`faults`]: decorators that make any table or blob store fail on demand (chaos
//!   tests).
//!
//! None of them retries: one call is one attempt (SQLite's `busy_timeout` waits for the
//! file's lock, it does not run a write again), so the orchestrator's retry policy is
//! the whole retry budget of table writes (requirement 13.2), as on DynamoDB.

mod event_bus;
pub mod faults;
mod fs_blob;
mod memory_table;
mod process_launcher;
mod sqlite_table;
mod stored_attrs;
mod wal_checkpoint;

pub use event_bus::{DEFAULT_EVENT_BUS_CAPACITY, LocalEventBus};
pub use fs_blob::FsBlobStore;
pub use memory_table::MemoryTable;
pub use process_launcher::{Handover, ProcessLauncher, REFILL_AFTER, STARTED_LINE};
pub use sqlite_table::SqliteTable;
