//! Workspaces and memberships. Creating a workspace makes the caller its owner; both
//! sides of the membership are written in the same transaction
//! ([`transactions::create_workspace`]), which also counts it against the most
//! workspaces one user may own. Listing pages through the caller's memberships. The
//! summary reads the counters the named transactions keep.

use std::collections::HashMap;
use std::sync::Arc;

use tlao_domain::{Limit, Membership, Name, Role, Timestamp, UserId, Workspace, WorkspaceId, keys};
use tlao_ports::{AttrValue, Cursor, Direction, Query};

use crate::attrs;
use crate::codec::UserWorkspace;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::transactions::{self, CreateWorkspaceError};

/// The most workspaces [`WorkspaceService::list`] returns (the console's switcher).
pub const MAX_WORKSPACES_LISTED: usize = 1000;
/// The most workspaces one page of [`WorkspaceService::page`] holds.
pub const MAX_PAGE: usize = 100;

/// One page of the caller's workspaces, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePage {
    /// The workspaces.
    pub items: Vec<Workspace>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<WorkspaceId>,
}

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

    /// Creates a workspace owned by the caller. `LimitReached` when they own as many
    /// as one user may ([`tlao_domain::Guardrails::max_workspaces_per_user`]).
    pub async fn create(&self, caller: &Caller, name: &str) -> Result<Workspace, ServiceError> {
        let name = Name::try_from(name.to_owned())
            .map_err(|e| ServiceError::invalid("name", e.to_string()))?;
        let max_owned = self.core.guardrails.max_workspaces_per_user;
        let limit_reached = || ServiceError::LimitReached {
            limit: Limit::MaxWorkspacesPerUser,
            max: u64::from(max_owned),
        };
        // Refused early when visibly at the limit, so refusals write nothing; the
        // transaction still decides under races.
        if self.owned_by(&caller.user_id).await? >= u64::from(max_owned) {
            return Err(limit_reached());
        }
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
        match transactions::create_workspace(&self.core.store, &workspace, &membership, max_owned)
            .await
        {
            Ok(()) => {}
            Err(CreateWorkspaceError::LimitReached) => return Err(limit_reached()),
            Err(CreateWorkspaceError::Store(error)) => return Err(error.into()),
        }
        tracing::info!(workspace_id = %workspace.workspace_id, operation = "create_workspace", "workspace created");
        Ok(workspace)
    }

    /// How many workspaces `user` owns, by their counter; for an owner from before the
    /// counter, their owned workspaces are counted once and the counter written.
    async fn owned_by(&self, user: &UserId) -> Result<u64, ServiceError> {
        let store = &self.core.store;
        if let Some(owned) = transactions::workspaces::workspaces_owned(store, user).await? {
            return Ok(owned);
        }
        let mut owned = 0u64;
        let mut cursor = None;
        loop {
            let query =
                Query::new(keys::workspaces_of(user), Direction::Forward, 1000).after(cursor);
            let (memberships, next) = store.query::<UserWorkspace>(query).await?;
            owned += memberships
                .iter()
                .filter(|UserWorkspace(m)| m.role == Role::Owner)
                .count() as u64;
            match next {
                Some(next) if (owned as usize) < MAX_STORAGE_SCAN => cursor = Some(next),
                _ => break,
            }
        }
        if owned > 0 {
            transactions::workspaces::seed_workspaces_owned(store, user, owned).await?;
        }
        Ok(owned)
    }

    /// A page of the workspaces the caller belongs to, oldest first: at most `limit`
    /// (1 to [`MAX_PAGE`]) after the workspace `after`.
    pub async fn page(
        &self,
        caller: &Caller,
        limit: usize,
        after: Option<&WorkspaceId>,
    ) -> Result<WorkspacePage, ServiceError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let cursor = after.map(|ws| Cursor::after(keys::user_workspace(&caller.user_id, ws).sk));
        let (memberships, next) = self
            .core
            .store
            .query::<UserWorkspace>(
                Query::new(
                    keys::workspaces_of(&caller.user_id),
                    Direction::Forward,
                    limit,
                )
                .after(cursor),
            )
            .await?;
        let last = memberships.last().map(|m| m.0.workspace_id.clone());
        let items = self.workspaces_of(memberships).await?;
        Ok(WorkspacePage {
            items,
            next_cursor: next.and(last),
        })
    }

    /// The workspaces the caller belongs to, oldest first: the first
    /// [`MAX_WORKSPACES_LISTED`] (clients page with [`WorkspaceService::page`]).
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
        self.workspaces_of(memberships).await
    }

    /// The workspaces of `memberships`, in their order (read 25 at a time).
    async fn workspaces_of(
        &self,
        memberships: Vec<UserWorkspace>,
    ) -> Result<Vec<Workspace>, ServiceError> {
        let mut workspaces = Vec::with_capacity(memberships.len());
        for chunk in memberships.chunks(25) {
            let keys: Vec<_> = chunk
                .iter()
                .map(|UserWorkspace(membership)| keys::workspace(&membership.workspace_id))
                .collect();
            let reads = keys.iter().map(|key| self.core.store.get::<Workspace>(key));
            let found = futures::future::try_join_all(reads).await?;
            workspaces.extend(found.into_iter().flatten());
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
