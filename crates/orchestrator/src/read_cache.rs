//! A small in-process cache for reads that are safe to remember.
//!
//! - Lookup items (`RUN#…/REF` → workspace) never change once written, so they are kept
//!   until the cache is full (then it starts over).
//! - Memberships are kept for a few seconds. Memberships are only ever added today; if
//!   removal is added, it takes at most [`MEMBERSHIP_TTL`] to take effect on other
//!   instances (and this instance forgets at once through [`ReadCache::forget_membership`]).
//!
//! Both matter on the hottest path, `GET /runs/{id}`, which otherwise pays two table
//! reads before it reads the run itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tlao_domain::{Key, Membership, UserId, WorkspaceId};

/// How long a membership is trusted without reading it again.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(5);

/// How many entries each map holds before it is cleared.
const CAPACITY: usize = 100_000;

/// Remembered reads.
#[derive(Default)]
pub struct ReadCache {
    lookups: Mutex<HashMap<Key, WorkspaceId>>,
    memberships: Mutex<HashMap<(UserId, WorkspaceId), (Instant, Membership)>>,
}

impl ReadCache {
    /// The workspace a lookup item points to, if remembered.
    pub fn lookup(&self, key: &Key) -> Option<WorkspaceId> {
        lock(&self.lookups).get(key).cloned()
    }

    /// Remembers a lookup item.
    pub fn remember_lookup(&self, key: Key, ws: WorkspaceId) {
        let mut map = lock(&self.lookups);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, ws);
    }

    /// A membership read less than [`MEMBERSHIP_TTL`] ago.
    pub fn membership(&self, user: &UserId, ws: &WorkspaceId) -> Option<Membership> {
        let map = lock(&self.memberships);
        let (at, membership) = map.get(&(user.clone(), ws.clone()))?;
        (at.elapsed() < MEMBERSHIP_TTL).then(|| membership.clone())
    }

    /// Remembers a membership.
    pub fn remember_membership(&self, membership: Membership) {
        let mut map = lock(&self.memberships);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(
            (membership.user_id.clone(), membership.workspace_id.clone()),
            (Instant::now(), membership),
        );
    }

    /// Forgets a membership (when it is removed).
    pub fn forget_membership(&self, user: &UserId, ws: &WorkspaceId) {
        lock(&self.memberships).remove(&(user.clone(), ws.clone()));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only inserts, removes and clones happen under these locks: a panic cannot leave a
    // map half-changed, so a poisoned lock is safe to use.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
