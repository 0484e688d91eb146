//! Workspaces and memberships. Creating a workspace makes the caller its owner; both
//! sides of the membership are written in the same transaction
//! ([`transactions::create_workspace`]). The summary reads the counters the named
//! transactions keep.

use std::collections::HashMap;
use std::sync::Arc;

use tlao_domain::{Membership, Name, Role, Timestamp, Workspace, WorkspaceId, keys};
use tlao_ports::{AttrValue, Direction, Query};

use crate::attrs;
use crate::codec::UserWorkspace;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::transactions;

/// The most workspaces one listing returns.
pub const MAX_WORKSPACES_LISTED: usize = 1000;

/// Creates, lists and reads workspaces.
pub struct WorkspaceService {
    core: Arc<Core>,
    /// Storage added up for workspaces without usage counters, and when: kept for
    /// [`ADDED_UP_TTL_SECONDS`], so a dashboard open on such a workspace does not read
    /// its records again every few seconds.
    added_up: std::sync::Mutex<HashMap<WorkspaceId, (Timestamp, Storage)>>,
}

/// How long an added-up storage figure of a workspace without counters is reused.
const ADDED_UP_TTL_SECONDS: u64 = 60;

impl WorkspaceService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        WorkspaceService {
            core,
            added_up: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Creates a workspace owned by the caller.
    pub async fn create(&self, caller: &Caller, name: &str) -> Result<Workspace, ServiceError> {
        let name = Name::try_from(name.to_owned())
            .map_err(|e| ServiceError::invalid("name", e.to_string()))?;
        let now = self.core.now();
        let workspace = Workspace {
            workspace_id: WorkspaceId::new(self.core.new_ulid()),
            name,
            owner: caller.user_id.clone(),
            created_at: now,
        };
        let membership = Membership {
            workspace_id: workspace.workspace_id.clone(),
            user_id: caller.user_id.clone(),
            role: Role::Owner,
            created_at: now,
        };
        transactions::create_workspace(&self.core.store, &workspace, &membership).await?;
        tracing::info!(workspace_id = %workspace.workspace_id, operation = "create_workspace", "workspace created");
        Ok(workspace)
    }

    /// The workspaces the caller belongs to, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Workspace>, ServiceError> {
        let (memberships, _) = self
            .core
            .store
            .query::<UserWorkspace>(Query::new(
                keys::workspaces_of(&caller.user_id),
                Direction::Forward,
                MAX_WORKSPACES_LISTED,
            ))
            .await?;
        let mut workspaces = Vec::with_capacity(memberships.len());
        for UserWorkspace(membership) in memberships {
            if let Some(ws) = self
                .core
                .store
                .get::<Workspace>(&keys::workspace(&membership.workspace_id))
                .await?
            {
                workspaces.push(ws);
            }
        }
        Ok(workspaces)
    }

    /// One workspace the caller belongs to.
    pub async fn get(&self, caller: &Caller, ws: &WorkspaceId) -> Result<Workspace, ServiceError> {
        self.core.require_member(caller, ws).await?;
        self.core
            .store
            .get::<Workspace>(&keys::workspace(ws))
            .await?
            .ok_or_else(|| ServiceError::not_found("workspace", ws))
    }

    /// The caller's default workspace: the oldest one they belong to.
    pub async fn default_for(&self, caller: &Caller) -> Result<Option<WorkspaceId>, ServiceError> {
        let (memberships, _) = self
            .core
            .store
            .query::<UserWorkspace>(Query::new(
                keys::workspaces_of(&caller.user_id),
                Direction::Forward,
                1,
            ))
            .await?;
        Ok(memberships.into_iter().next().map(|m| m.0.workspace_id))
    }
}

/// The most artifact or archive records [`WorkspaceService::summary`] adds up for a
/// workspace without usage counters; past it the storage figure is marked partial.
pub const MAX_STORAGE_SCAN: usize = 10_000;

/// Where a workspace stands against its limits, for the console's dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSummary {
    /// The workspace.
    pub workspace: Workspace,
    /// Runs created today (UTC), as counted against the daily quota.
    pub runs_today: u64,
    /// The daily run quota.
    pub daily_quota: u32,
    /// Runs executing now (the concurrency counter).
    pub running: u64,
    /// How many runs may execute at once.
    pub max_concurrent: u32,
    /// Runs waiting for a worker.
    pub queued: u64,
    /// Bytes of available artifacts.
    pub artifact_bytes: u64,
    /// How many artifacts are available.
    pub artifact_count: u64,
    /// Bytes of uploaded archives.
    pub archive_bytes: u64,
    /// How many archives were uploaded.
    pub archive_count: u64,
    /// Whether more than [`MAX_STORAGE_SCAN`] records of one kind exist, so the byte
    /// counts are lower bounds.
    pub storage_partial: bool,
    /// The largest archive accepted, in bytes.
    pub max_archive_bytes: u64,
}

/// Bytes and counts of a workspace's stored archives and available artifacts.
#[derive(Debug, Clone)]
struct Storage {
    artifact_bytes: u64,
    artifact_count: u64,
    archive_bytes: u64,
    archive_count: u64,
    partial: bool,
}

impl WorkspaceService {
    /// The workspace's usage: today's runs against the quota (the quota counter), the
    /// running runs against the concurrency limit (the `activeRuns` counter), the queue
    /// length, and the storage its archives and available artifacts use: one read of the
    /// usage counters their transactions keep (the sizes recorded at upload; blobs are
    /// not listed), or, for a workspace from before the counters, their records added up.
    pub async fn summary(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
    ) -> Result<WorkspaceSummary, ServiceError> {
        self.core.require_member(caller, ws).await?;
        let store = &self.core.store;
        let guardrails = self.core.guardrails;
        let count_of = |item: Option<&tlao_ports::Item>, attr: &str| {
            item.and_then(|item| item.n(attr))
                .map_or(0, |n| u64::try_from(n).unwrap_or(0))
        };
        // One read of the workspace item: the workspace and its `activeRuns` counter.
        let item = store
            .get_item(&keys::workspace(ws))
            .await?
            .ok_or_else(|| ServiceError::not_found("workspace", ws))?;
        let workspace = crate::codec::decode::<Workspace>(&item)?;
        let running = count_of(Some(&item), attrs::ACTIVE_RUNS);
        let runs_today =
            transactions::runs::runs_created_on(store, ws, self.core.now().utc_date()).await?;
        let queued = self.count(keys::workspace_queue(ws)).await?;
        let usage = store.get_item(&keys::workspace_usage(ws)).await?;
        let counted = usage.as_ref().is_some_and(|item| {
            item.attrs.get(attrs::USAGE_COMPLETE) == Some(&AttrValue::Bool(true))
        });
        let storage = if counted {
            Storage {
                artifact_bytes: count_of(usage.as_ref(), attrs::ARTIFACT_BYTES),
                artifact_count: count_of(usage.as_ref(), attrs::ARTIFACT_COUNT),
                archive_bytes: count_of(usage.as_ref(), attrs::ARCHIVE_BYTES),
                archive_count: count_of(usage.as_ref(), attrs::ARCHIVE_COUNT),
                partial: false,
            }
        } else {
            self.added_up_storage(ws).await?
        };
        Ok(WorkspaceSummary {
            workspace,
            runs_today,
            daily_quota: guardrails.daily_run_quota,
            running,
            max_concurrent: guardrails.max_concurrent_runs,
            queued,
            artifact_bytes: storage.artifact_bytes,
            artifact_count: storage.artifact_count,
            archive_bytes: storage.archive_bytes,
            archive_count: storage.archive_count,
            storage_partial: storage.partial,
            max_archive_bytes: guardrails.max_archive_bytes,
        })
    }

    /// [`Self::add_up_storage`], reused for [`ADDED_UP_TTL_SECONDS`].
    async fn added_up_storage(&self, ws: &WorkspaceId) -> Result<Storage, ServiceError> {
        let now = self.core.now();
        let cached = self
            .added_up_cache()
            .get(ws)
            .filter(|(at, _)| now.millis_since(*at) < (ADDED_UP_TTL_SECONDS * 1000) as i64)
            .map(|(_, storage)| storage.clone());
        if let Some(storage) = cached {
            return Ok(storage);
        }
        let storage = self.add_up_storage(ws).await?;
        let mut cache = self.added_up_cache();
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(ws.clone(), (now, storage.clone()));
        Ok(storage)
    }

    fn added_up_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, (Timestamp, Storage)>> {
        self.added_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The storage of a workspace without usage counters, added up from the records of
    /// its archives and available artifacts (at most [`MAX_STORAGE_SCAN`] of each).
    async fn add_up_storage(&self, ws: &WorkspaceId) -> Result<Storage, ServiceError> {
        let (artifacts, more_artifacts) = self
            .scan::<tlao_domain::Artifact>(keys::artifacts_of(ws))
            .await?;
        let (archives, more_archives) = self
            .scan::<tlao_domain::Archive>(keys::archives_of(ws))
            .await?;
        let available: Vec<_> = artifacts
            .iter()
            .filter(|a| a.status == tlao_domain::ArtifactStatus::Available)
            .collect();
        Ok(Storage {
            artifact_bytes: available.iter().map(|a| a.size).sum(),
            artifact_count: available.len() as u64,
            archive_bytes: archives.iter().map(|a| a.size).sum(),
            archive_count: archives.len() as u64,
            partial: more_artifacts || more_archives,
        })
    }

    /// Up to [`MAX_STORAGE_SCAN`] entities under `prefix`, and whether there are more.
    async fn scan<E: crate::codec::Entity>(
        &self,
        prefix: tlao_domain::KeyPrefix,
    ) -> Result<(Vec<E>, bool), ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let query = Query::new(prefix.clone(), Direction::Forward, 1000).after(cursor);
            let (page, next) = self.core.store.query::<E>(query).await?;
            all.extend(page);
            match next {
                Some(_) if all.len() >= MAX_STORAGE_SCAN => return Ok((all, true)),
                Some(next) => cursor = Some(next),
                None => return Ok((all, false)),
            }
        }
    }

    /// How many items are under `prefix` (at most [`MAX_STORAGE_SCAN`]).
    async fn count(&self, prefix: tlao_domain::KeyPrefix) -> Result<u64, ServiceError> {
        let mut count = 0;
        let mut cursor = None;
        loop {
            let query = Query::new(prefix.clone(), Direction::Forward, 1000).after(cursor);
            let page = self.core.store.query_items(query).await?;
            count += page.items.len() as u64;
            match page.next_cursor {
                Some(next) if (count as usize) < MAX_STORAGE_SCAN => cursor = Some(next),
                _ => return Ok(count),
            }
        }
    }
}
