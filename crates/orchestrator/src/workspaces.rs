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
