//! What every service shares: storage, blobs, the clock, the guardrails, and the caller.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use rand::Rng;
use tlao_domain::{Guardrails, Membership, RunStatus, Timestamp, Ulid, UserId, WorkspaceId, keys};
use tlao_ports::{BlobKey, BlobStore, Clock, Cursor, Direction, Item, Query};

use crate::attrs::STATUS;
use crate::codec::{Lookup, LookupOf};
use crate::error::ServiceError;
use crate::store::Store;

/// The entries of `ws`'s queue ahead of `run`'s own, counted up to `limit`: one less
/// than its 1-based position.
pub(crate) fn entries_ahead(ws: &WorkspaceId, run: &tlao_domain::RunId, limit: usize) -> Query {
    Query::new(keys::workspace_queue(ws), Direction::Backward, limit)
        .after(Some(Cursor::after(keys::workspace_queue_entry(ws, run).sk)))
}

/// The authenticated principal a use case runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who.
    pub user_id: UserId,
    /// Whether they may manage users and executors.
    pub admin: bool,
}

/// Shared dependencies of the services.
pub struct Core {
    /// The single table.
    pub store: Store,
    /// Archives, TaskSpecs, artifacts.
    pub blobs: Arc<dyn BlobStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// The limits in force.
    pub guardrails: Guardrails,
    /// The last id generated, for monotonic ids.
    pub last_ulid: std::sync::Mutex<Ulid>,
    /// Bumped when a run is queued or a slot frees, so dispatchers and long-polling
    /// leases in this process wake at once (other processes poll).
    pub queue_version: tokio::sync::watch::Sender<u64>,
    /// Reads safe to remember (lookups, recent memberships).
    pub cache: crate::read_cache::ReadCache,
    /// Cleared when this process stops: it then leases no more runs (its dispatcher
    /// and the workers' lease requests it answers), while running runs finish.
    pub leasing: std::sync::atomic::AtomicBool,
}

impl Core {
    /// The bytes of the blob at `key` when there are at most `limit` of them; `None`
    /// when there are more (by the blob's recorded size, or as it streams).
    ///
    /// Errors: `NotFound` and the store's errors; a stream that fails is `Unavailable`.
    pub(crate) async fn read_blob_within(
        &self,
        key: &BlobKey,
        limit: u64,
    ) -> Result<Option<Bytes>, ServiceError> {
        let (meta, mut body) = self.blobs.get(key).await?;
        if meta.size > limit {
            return Ok(None);
        }
        let mut bytes = BytesMut::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ServiceError::Unavailable(e.into()))?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes.freeze()))
    }

    /// Whether this process still leases runs ([`Core::stop_leasing`] not called).
    pub fn is_leasing(&self) -> bool {
        self.leasing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops leasing runs in this process, for a graceful stop: queued runs stay queued
    /// for another server instance (or this one's next start), and waiting lease
    /// requests wake and answer that nothing is leasable.
    pub fn stop_leasing(&self) {
        self.leasing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.signal_queue();
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A fresh ULID for an entity created now. Ids from one process are strictly
    /// increasing even within one millisecond (the random part counts up), so the queue,
    /// which is ordered by run id, is first-in first-out.
    pub fn new_ulid(&self) -> Ulid {
        let now = self.now().unix_millis().max(0) as u64;
        let fresh = Ulid::from_parts(now, rand::thread_rng().r#gen::<u128>() >> 1);
        let mut last = self
            .last_ulid
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = match last.successor() {
            Some(after_last) if fresh <= *last => after_last,
            _ => fresh,
        };
        *last = next;
        next
    }

    /// The caller's membership of `ws`: `NotFound` when the workspace does not exist,
    /// `Forbidden` when the caller is not a member.
    pub async fn require_member(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
    ) -> Result<Membership, ServiceError> {
        if let Some(membership) = self.cache.membership(&caller.user_id, ws) {
            return Ok(membership);
        }
        if let Some(membership) = self
            .store
            .get::<Membership>(&keys::membership(ws, &caller.user_id))
            .await?
        {
            self.cache.remember_membership(membership.clone());
            return Ok(membership);
        }
        if self.store.get_item(&keys::workspace(ws)).await?.is_none() {
            return Err(ServiceError::not_found("workspace", ws));
        }
        Err(ServiceError::Forbidden(format!(
            "you are not a member of workspace {ws}"
        )))
    }

    /// The workspace of an entity known only by its id, from its lookup item.
    pub async fn locate(&self, of: LookupOf) -> Result<Option<WorkspaceId>, ServiceError> {
        let key = of.key();
        if let Some(ws) = self.cache.lookup(&key) {
            return Ok(Some(ws));
        }
        let found = self
            .store
            .get::<Lookup>(&key)
            .await?
            .map(|l| l.workspace_id);
        if let Some(ws) = &found {
            self.cache.remember_lookup(key, ws.clone());
        }
        Ok(found)
    }

    /// The workspace of a run the caller may see: `NotFound` when the run is unknown,
    /// `Forbidden` when the caller is not a member of its workspace.
    pub async fn run_workspace_for(
        &self,
        caller: &Caller,
        run_id: &tlao_domain::RunId,
    ) -> Result<WorkspaceId, ServiceError> {
        let ws = self
            .locate(LookupOf::Run(run_id.clone()))
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))?;
        self.require_member(caller, &ws).await?;
        Ok(ws)
    }

    /// A run the caller may see (errors as [`Core::run_workspace_for`]). The membership
    /// is checked on every call; a finished run is read from the table once (it no
    /// longer changes, see [`crate::read_cache`]).
    pub async fn run_for(
        &self,
        caller: &Caller,
        run_id: &tlao_domain::RunId,
    ) -> Result<tlao_domain::Run, ServiceError> {
        Ok(self.run_with_ahead(caller, run_id, None).await?.0)
    }

    /// As [`Core::run_for`], and, for a queued run, how many entries are ahead of its
    /// own in its workspace's queue (at most `limit`), counted in the same read as the
    /// run where the table can (see [`tlao_ports::Table::get_then_count`]). `None` for
    /// a run that is not queued.
    pub async fn run_and_ahead_for(
        &self,
        caller: &Caller,
        run_id: &tlao_domain::RunId,
        limit: usize,
    ) -> Result<(tlao_domain::Run, Option<usize>), ServiceError> {
        self.run_with_ahead(caller, run_id, Some(limit)).await
    }

    /// [`Core::run_for`], counting the entries ahead of a queued run when `limit` is
    /// given.
    async fn run_with_ahead(
        &self,
        caller: &Caller,
        run_id: &tlao_domain::RunId,
        limit: Option<usize>,
    ) -> Result<(tlao_domain::Run, Option<usize>), ServiceError> {
        let ws = self.run_workspace_for(caller, run_id).await?;
        if let Some(run) = self.cache.finished_run(run_id) {
            return Ok((run, None));
        }
        let ahead = limit.map(|limit| entries_ahead(&ws, run_id, limit));
        let then = move |item: &Item| {
            ahead
                .clone()
                .filter(|_| item.s(STATUS) == Some(RunStatus::Queued.as_str()))
        };
        let (run, ahead) = self
            .store
            .get_then_count::<tlao_domain::Run, _>(&keys::run(&ws, run_id), then)
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))?;
        self.cache.remember_if_finished(&run);
        let ahead = ahead.filter(|_| run.status == RunStatus::Queued);
        Ok((run, ahead))
    }

    /// Wakes whoever waits for queue changes in this process.
    pub fn signal_queue(&self) {
        self.queue_version
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// Requires the caller to be an administrator.
    pub fn require_admin(&self, caller: &Caller, action: &str) -> Result<(), ServiceError> {
        if caller.admin {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "only administrators may {action}"
            )))
        }
    }
}
