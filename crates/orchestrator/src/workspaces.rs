//! Workspaces and memberships. Creating a workspace makes the caller its owner; both
//! sides of the membership are written in the same transaction.

use std::sync::Arc;

use tlao_domain::{Membership, Name, Role, Workspace, WorkspaceId, keys};
use tlao_ports::{Condition, Direction, Query};

use crate::codec::UserWorkspace;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::store::put_op;

/// The most workspaces one listing returns.
pub const MAX_WORKSPACES_LISTED: usize = 1000;

/// Creates, lists and reads workspaces.
pub struct WorkspaceService {
    core: Arc<Core>,
}

impl WorkspaceService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        WorkspaceService { core }
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
        self.core
            .store
            .transact(vec![
                put_op(&workspace, Some(Condition::NotExists))?,
                put_op(&membership, Some(Condition::NotExists))?,
                put_op(
                    &UserWorkspace(membership.clone()),
                    Some(Condition::NotExists),
                )?,
            ])
            .await?;
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

/// The most artifact or archive records [`WorkspaceService::summary`] adds up; past it
/// the storage figure is marked partial.
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

impl WorkspaceService {
    /// The workspace's usage: today's runs against the quota (the quota counter), the
    /// running runs against the concurrency limit (the `activeRuns` counter), the queue
    /// length, and the storage its artifacts and archives use, added up from their
    /// records (the sizes stored when they were uploaded; blobs are not listed).
    pub async fn summary(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
    ) -> Result<WorkspaceSummary, ServiceError> {
        let workspace = self.get(caller, ws).await?;
        let store = &self.core.store;
        let guardrails = self.core.guardrails;
        let count_of = |item: Option<tlao_ports::Item>, attr: &str| {
            item.and_then(|item| item.n(attr))
                .map_or(0, |n| u64::try_from(n).unwrap_or(0))
        };
        let runs_today = count_of(
            store
                .get_item(&keys::daily_quota(ws, self.core.now().utc_date()))
                .await?,
            crate::runs::QUOTA_COUNT,
        );
        let running = count_of(
            store.get_item(&keys::workspace(ws)).await?,
            crate::runs::ACTIVE_RUNS,
        );
        let queued = self.count(keys::workspace_queue(ws)).await?;
        let mut partial = false;
        let (mut artifact_bytes, mut artifact_count) = (0, 0);
        let (artifacts, more) = self
            .scan::<tlao_domain::Artifact>(keys::artifacts_of(ws))
            .await?;
        partial |= more;
        for artifact in artifacts {
            if artifact.status == tlao_domain::ArtifactStatus::Available {
                artifact_bytes += artifact.size;
                artifact_count += 1;
            }
        }
        let (archives, more) = self
            .scan::<tlao_domain::Archive>(keys::archives_of(ws))
            .await?;
        partial |= more;
        let archive_count = archives.len() as u64;
        let archive_bytes = archives.iter().map(|a| a.size).sum();
        Ok(WorkspaceSummary {
            workspace,
            runs_today,
            daily_quota: guardrails.daily_run_quota,
            running,
            max_concurrent: guardrails.max_concurrent_runs,
            queued,
            artifact_bytes,
            artifact_count,
            archive_bytes,
            archive_count,
            storage_partial: partial,
            max_archive_bytes: guardrails.max_archive_bytes,
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
