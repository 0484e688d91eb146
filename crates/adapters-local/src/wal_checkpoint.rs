//! Checkpoints a SQLite table's WAL on a thread of its own, so that no write waits for
//! one.
//!
//! SQLite checkpoints the WAL (copies its pages into the database file, then syncs the
//! file) inside the commit that takes it past `wal_autocheckpoint` pages: that write,
//! and every request waiting on it, stalls for the copy and the sync. Here a thread
//! woken by the first write after a quiet spell waits [`CHECKPOINT_AFTER`] (gathering
//! the writes that follow), then runs a `PASSIVE` checkpoint on its own connection:
//! one that never waits for a reader or a writer and copies what no reader still
//! needs. The writer keeps a high `wal_autocheckpoint` as a safety net, should this
//! thread fall behind. Idle, the thread sleeps until the next write.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How long after the first write of a batch the thread checkpoints. About as often as
/// the writer's own checkpoint at 4 MiB came under a burst of runs; at 200 ms the
/// checkpoints' syncs cost the burst a fifth of its throughput (docs/performance.md).
pub(crate) const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);

/// The background checkpoints of one table; stopped (and its thread joined) on drop.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Written since the last checkpoint started.
    dirty: bool,
    /// The table is gone.
    stop: bool,
    /// Checkpoints run so far (for tests).
    runs: u64,
}

impl Checkpointer {
    /// Starts the thread, which checkpoints through `conn` (a read-write connection to
    /// the table's file).
    pub(crate) fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("tlao-sqlite-checkpoint".to_owned())
            .spawn({
                let shared = shared.clone();
                move || run(&shared, &conn)
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Says a write committed: the WAL grew.
    pub(crate) fn wrote(&self) {
        let mut state = lock(&self.shared.state);
        if !state.dirty {
            state.dirty = true;
            self.shared.changed.notify_all();
        }
    }

    /// How many checkpoints have run.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        lock(&self.shared.state).runs
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, conn: &Connection) {
    loop {
        // Asleep until a write (or the end).
        let state = lock(&shared.state);
        let state = shared
            .changed
            .wait_while(state, |s| !s.dirty && !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        if state.stop {
            return;
        }
        // The writes that follow this one within the delay join its checkpoint.
        let (mut state, _) = shared
            .changed
            .wait_timeout_while(state, CHECKPOINT_AFTER, |s| !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        if state.stop {
            return;
        }
        state.dirty = false;
        drop(state);
        let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match outcome {
            Ok((frames, copied)) => {
                tracing::trace!(frames, copied, "sqlite WAL checkpointed");
            }
            // Another process checkpointing, a full disk: the next write tries again,
            // and the writer's own checkpoint stays as the safety net.
            Err(error) => tracing::debug!(%error, "sqlite WAL checkpoint failed"),
        }
        lock(&shared.state).runs += 1;
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    // Only flags and a counter change under this lock: a panic leaves nothing half done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
