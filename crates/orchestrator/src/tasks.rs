//! Tasks (requirement 1): a validated TaskSpec stored as JSON in its workspace.

use std::sync::Arc;

use tlao_domain::{NewTask, Task, TaskId, keys};
use tlao_ports::Condition;

use crate::codec::{Lookup, LookupOf};
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::idempotency::Idempotency;
use crate::store::{StoreError, put_op};

/// Creates and reads tasks.
pub struct TaskService {
    core: Arc<Core>,
}

impl TaskService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        TaskService { core }
    }

    /// Creates a task in a workspace the caller belongs to. With an idempotency key, a
    /// retry returns the first task and creates nothing.
    pub async fn create(
        &self,
        caller: &Caller,
        request: NewTask,
        idempotency: Option<&Idempotency>,
    ) -> Result<Task, ServiceError> {
        let ws = &request.workspace_id;
        self.core.require_member(caller, ws).await?;
        let now = self.core.now();
        if let Some(idem) = idempotency
            && let Some(task) = idem
                .replay::<Task>(&self.core.store, &caller.user_id, now)
                .await?
        {
            return Ok(task);
        }
        if let Some(archive_id) = &request.spec.input.archive_id {
            let located = self
                .core
                .locate(LookupOf::Archive(archive_id.clone()))
                .await?;
            // Like an unknown workspace or task: a well-formed reference to nothing is a
            // 404, not a bad field. An archive of another workspace is not told apart.
            if located.as_ref() != Some(ws) {
                return Err(ServiceError::not_found("archive", archive_id));
            }
        }
        let task = Task {
            task_id: TaskId::new(self.core.new_ulid()),
            workspace_id: ws.clone(),
            spec: request.spec,
            created_by: caller.user_id.clone(),
            created_at: now,
        };
        let lookup = Lookup {
            of: LookupOf::Task(task.task_id.clone()),
            workspace_id: ws.clone(),
        };
        let mut ops = vec![
            put_op(&task, Some(Condition::NotExists))?,
            put_op(&lookup, Some(Condition::NotExists))?,
        ];
        if let Some(idem) = idempotency {
            ops.push(idem.record_op(&caller.user_id, &task, now)?);
        }
        let idem_op = ops.len() - 1;
        match self.core.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { op }) if idempotency.is_some() && op == idem_op => {
                // A concurrent request with the same key won; answer with its task.
                if let Some(idem) = idempotency
                    && let Some(task) = idem
                        .replay::<Task>(&self.core.store, &caller.user_id, now)
                        .await?
                {
                    return Ok(task);
                }
                return Err(ServiceError::Conflict(
                    "a request with this Idempotency-Key is in progress".into(),
                ));
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(workspace_id = %ws, task_id = %task.task_id, operation = "create_task", "task created");
        Ok(task)
    }

    /// A task of a workspace the caller belongs to.
    pub async fn get(&self, caller: &Caller, task_id: &TaskId) -> Result<Task, ServiceError> {
        let ws = self
            .core
            .locate(LookupOf::Task(task_id.clone()))
            .await?
            .ok_or_else(|| ServiceError::not_found("task", task_id))?;
        self.core.require_member(caller, &ws).await?;
        self.core
            .store
            .get::<Task>(&keys::task(&ws, task_id))
            .await?
            .ok_or_else(|| ServiceError::not_found("task", task_id))
    }
}
