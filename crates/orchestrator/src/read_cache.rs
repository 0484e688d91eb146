//! A small in-process cache for reads that are safe to remember.
//!
//! - Lookup items (`RUN#…/REF` → workspace) never change once written, so they are kept
//!   until the cache is full (then it starts over).
//! - Memberships are kept for a few seconds. Memberships are only ever added today; if
//!   removal is added, it takes at most [`MEMBERSHIP_TTL`] to take effect on other
//!   instances (and this instance forgets at once through [`ReadCache::forget_membership`]).
//!
//! - The log text of a finished run: nothing is stored in a run's log once it has ended
//!   (a worker's reports are fenced), so it is kept with the run's log counters it was
//!   read at (kept bytes, dropped bytes) and used only while the run still shows the
//!   same; at most [`LOG_CAPACITY_BYTES`] of text, then it starts over. It is kept
//!   escaped for JSON too ([`LogText::escaped`]), so answering it again copies it.
//!
//! - A finished run itself: a run item never changes once its status is terminal. The
//!   state machine allows no transition out of a terminal status ([`Run::apply`]), and
//!   every other write of a run is fenced by a lease that only a running run honours
//!   ([`Run::fence`]); runs are never deleted. So a finished run read once, by any
//!   instance, is the run for ever; at most [`FINISHED_RUN_CAPACITY`] are kept, then it
//!   starts over.
//!
//! All matter on the hottest path, `GET /runs/{id}`, which otherwise pays two table
//! reads before it reads the run itself, and a read of every log event of a run with a
//! log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tlao_domain::{Key, LogText, Membership, Run, RunId, UserId, WorkspaceId};

/// How long a membership is trusted without reading it again.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(5);

/// How many entries each map holds before it is cleared.
const CAPACITY: usize = 100_000;

/// How many finished runs are kept before that map is cleared. A run is a few hundred
/// bytes (its selection reason and error message are short, its artifact list bounded).
pub const FINISHED_RUN_CAPACITY: usize = 4096;

/// How many bytes of finished runs' log text are kept before the log map is cleared
/// (each text is also kept escaped: about twice this in memory).
pub const LOG_CAPACITY_BYTES: usize = 32 * 1024 * 1024;

/// A finished run's log counters, which its remembered log text must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogStamp {
    log_bytes: u64,
    dropped_log_bytes: u64,
}

impl LogStamp {
    fn of(run: &Run) -> Self {
        LogStamp {
            log_bytes: run.log_bytes,
            dropped_log_bytes: run.dropped_log_bytes,
        }
    }
}

/// Finished runs' log text and how many bytes of it are kept.
#[derive(Default)]
struct Logs {
    texts: HashMap<RunId, (LogStamp, LogText)>,
    bytes: usize,
}

/// Remembered reads.
#[derive(Default)]
pub struct ReadCache {
    lookups: Mutex<HashMap<Key, WorkspaceId>>,
    memberships: Mutex<HashMap<(UserId, WorkspaceId), (Instant, Membership)>>,
    logs: Mutex<Logs>,
    finished: Mutex<HashMap<RunId, Run>>,
}

impl ReadCache {
    /// The workspace a lookup item points to, if remembered.
    pub fn lookup(&self, key: &Key) -> Option<WorkspaceId> {
        lock(&self.lookups).get(key).cloned()
    }

    /// Remembers a lookup item.
    pub fn remember_lookup(&self, key: Key, ws: WorkspaceId) {
        insert_bounded(&self.lookups, CAPACITY, key, ws);
    }

    /// A membership read less than [`MEMBERSHIP_TTL`] ago.
    pub fn membership(&self, user: &UserId, ws: &WorkspaceId) -> Option<Membership> {
        let map = lock(&self.memberships);
        let (at, membership) = map.get(&(user.clone(), ws.clone()))?;
        (at.elapsed() < MEMBERSHIP_TTL).then(|| membership.clone())
    }

    /// Remembers a membership.
    pub fn remember_membership(&self, membership: Membership) {
        insert_bounded(
            &self.memberships,
            CAPACITY,
            (membership.user_id.clone(), membership.workspace_id.clone()),
            (Instant::now(), membership),
        );
    }

    /// A finished run, if remembered (only finished runs are).
    pub fn finished_run(&self, run_id: &RunId) -> Option<Run> {
        lock(&self.finished).get(run_id).cloned()
    }

    /// Remembers `run` if it has finished (it no longer changes); a run that has not
    /// is not kept.
    pub fn remember_if_finished(&self, run: &Run) {
        if run.status.is_terminal() {
            insert_bounded(
                &self.finished,
                FINISHED_RUN_CAPACITY,
                run.run_id.clone(),
                run.clone(),
            );
        }
    }

    /// The log text of a finished run, if remembered for the log counters it shows.
    pub fn log(&self, run: &Run) -> Option<LogText> {
        if !run.status.is_terminal() {
            return None;
        }
        let logs = lock(&self.logs);
        let (stamp, text) = logs.texts.get(&run.run_id)?;
        (*stamp == LogStamp::of(run)).then(|| text.clone())
    }

    /// Remembers the log text of `run` as read after it finished, escaped, and returns
    /// it so; a run that has not finished (its log may still grow) or a text larger than
    /// the cache is returned as it is, not kept.
    pub fn remember_log(&self, run: &Run, text: String) -> LogText {
        if !run.status.is_terminal() || text.len() > LOG_CAPACITY_BYTES {
            return LogText::from(text);
        }
        // Escaped outside the lock: other requests need not wait for it.
        let escaped = LogText::escaped(&text);
        let mut logs = lock(&self.logs);
        if logs.bytes + text.len() > LOG_CAPACITY_BYTES {
            logs.texts.clear();
            logs.bytes = 0;
        }
        let replaced = logs
            .texts
            .insert(run.run_id.clone(), (LogStamp::of(run), escaped.clone()));
        logs.bytes += text.len();
        if let Some((_, old)) = replaced {
            logs.bytes -= old.len();
        }
        escaped
    }

    /// Forgets a membership (when it is removed).
    pub fn forget_membership(&self, user: &UserId, ws: &WorkspaceId) {
        lock(&self.memberships).remove(&(user.clone(), ws.clone()));
    }
}

/// Inserts into a map that starts over (is cleared) once it holds `capacity` entries.
fn insert_bounded<K: std::hash::Hash + Eq, V>(
    map: &Mutex<HashMap<K, V>>,
    capacity: usize,
    key: K,
    value: V,
) {
    let mut map = lock(map);
    // A full map is taken out whole and dropped after the lock is released: dropping
    // thousands of runs under it held up every reader of the cache.
    let full = (map.len() >= capacity).then(|| std::mem::take(&mut *map));
    map.insert(key, value);
    drop(map);
    drop(full);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only inserts, removes and clones happen under these locks: a panic cannot leave a
    // map half-changed, so a poisoned lock is safe to use.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use tlao_domain::{Guardrails, RunStatus};

    use super::*;
    use crate::transactions::testing::World;

    #[test]
    fn a_log_is_remembered_only_for_a_finished_run_showing_the_same_counters() {
        let world = World::new(Guardrails::default());
        let ws = WorkspaceId::new(world.core().new_ulid());
        let cache = ReadCache::default();
        let mut run = world.run(&ws);
        run.log_bytes = 5;

        // Running (or queued): its log may still grow, so it is not remembered.
        run.status = RunStatus::Running;
        cache.remember_log(&run, "abcd\n".to_owned());
        assert_eq!(cache.log(&run), None);

        run.status = RunStatus::Completed;
        cache.remember_log(&run, "abcd\n".to_owned());
        assert_eq!(
            cache.log(&run).as_ref().map(LogText::as_str),
            Some("abcd\n")
        );
        // The same run showing other counters is not served the remembered text.
        let mut grown = run.clone();
        grown.log_bytes = 10;
        assert_eq!(cache.log(&grown), None);
        let mut dropped = run.clone();
        dropped.dropped_log_bytes = 1;
        assert_eq!(cache.log(&dropped), None);
        // Another run is not either.
        let mut other = world.run(&ws);
        other.status = RunStatus::Completed;
        other.log_bytes = 5;
        assert_eq!(cache.log(&other), None);
    }

    #[test]
    fn the_logs_start_over_past_their_capacity() {
        let world = World::new(Guardrails::default());
        let ws = WorkspaceId::new(world.core().new_ulid());
        let cache = ReadCache::default();
        let big = "x".repeat(LOG_CAPACITY_BYTES / 2 + 1);
        let mut first = world.run(&ws);
        first.status = RunStatus::Failed;
        first.log_bytes = big.len() as u64;
        let mut second = first.clone();
        second.run_id = world.run(&ws).run_id;
        cache.remember_log(&first, big.clone());
        assert!(cache.log(&first).is_some());
        cache.remember_log(&second, big.clone());
        assert!(cache.log(&second).is_some());
        assert_eq!(cache.log(&first), None, "cleared to make room");
        assert!(lock(&cache.logs).bytes <= LOG_CAPACITY_BYTES);
        // A text larger than the whole cache is not kept.
        let huge = "x".repeat(LOG_CAPACITY_BYTES + 1);
        cache.remember_log(&first, huge);
        assert_eq!(cache.log(&first), None);
    }

    #[test]
    fn only_a_finished_run_is_remembered_and_the_runs_start_over_past_their_capacity() {
        let world = World::new(Guardrails::default());
        let ws = WorkspaceId::new(world.core().new_ulid());
        let cache = ReadCache::default();
        let mut run = world.run(&ws);
        for status in [RunStatus::Queued, RunStatus::Running] {
            run.status = status;
            cache.remember_if_finished(&run);
            assert_eq!(cache.finished_run(&run.run_id), None, "{status}");
        }
        run.status = RunStatus::Cancelled;
        cache.remember_if_finished(&run);
        assert_eq!(cache.finished_run(&run.run_id), Some(run.clone()));
        assert_eq!(cache.finished_run(&world.run(&ws).run_id), None);

        let mut others = Vec::new();
        for _ in 1..FINISHED_RUN_CAPACITY {
            let mut other = world.run(&ws);
            other.status = RunStatus::Completed;
            cache.remember_if_finished(&other);
            others.push(other);
        }
        assert_eq!(
            cache.finished_run(&run.run_id),
            Some(run.clone()),
            "full now"
        );
        let mut one_more = world.run(&ws);
        one_more.status = RunStatus::Failed;
        cache.remember_if_finished(&one_more);
        assert_eq!(
            cache.finished_run(&run.run_id),
            None,
            "cleared to make room"
        );
        assert_eq!(cache.finished_run(&others[0].run_id), None);
        assert_eq!(cache.finished_run(&one_more.run_id), Some(one_more));
    }
}
