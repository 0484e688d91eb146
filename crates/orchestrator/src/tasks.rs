//! Tasks (requirement 1): a validated TaskSpec stored as JSON in its workspace, with the
//! named transaction [`transactions::create_task`].

use std::sync::Arc;

use bytes::Bytes;
use tlao_domain::{NewTask, Task, TaskId, TaskSpec, keys};
use tlao_ports::BlobKey;

use crate::codec::LookupOf;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::idempotency::{Idempotency, replayed};
use crate::transactions::{self, CreateTaskError};

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
        if let Some(first) = replayed(idempotency, &self.core.store, &caller.user_id, now).await? {
            return Ok(first);
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
        let task_id = TaskId::new(self.core.new_ulid());
        let spec_key = keys::blob::task_spec(ws, &task_id);
        let task = Task {
            task_id,
            workspace_id: ws.clone(),
            spec: request.spec,
            created_by: caller.user_id.clone(),
            created_at: now,
            spec_key: Some(spec_key.clone()),
        };
        let record = idempotency
            .map(|idem| idem.record_op(&caller.user_id, &task, now))
            .transpose()?;
        // The TaskSpec its runs' workers download, stored before the task that names it:
        // a task is never visible without it.
        let spec_key = store_task_spec(&self.core, spec_key, &task.spec).await?;
        match transactions::create_task(&self.core.store, &task, record).await {
            Ok(()) => {}
            // A concurrent request with the same key won; answer with its task. Nothing of
            // this request was stored, so nothing refers to its TaskSpec (best effort: a
            // leftover is harmless).
            Err(CreateTaskError::IdempotencyKeyTaken) => {
                let _ = self.core.blobs.delete(&spec_key).await;
                return match replayed(idempotency, &self.core.store, &caller.user_id, now).await? {
                    Some(first) => Ok(first),
                    None => Err(Idempotency::in_progress()),
                };
            }
            // The task may still have been stored (a write that landed but whose answer
            // was lost, then retried): its TaskSpec stays.
            Err(CreateTaskError::Store(error)) => return Err(error.into()),
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

/// Stores `spec` as pretty JSON at the blob key `key`, for workers to download
/// (requirement 5.1).
pub(crate) async fn store_task_spec(
    core: &Core,
    key: String,
    spec: &TaskSpec,
) -> Result<BlobKey, ServiceError> {
    let key = BlobKey::parse(&key).map_err(|e| ServiceError::Internal(e.into()))?;
    let body = serde_json::to_vec_pretty(spec).map_err(|e| ServiceError::Internal(e.into()))?;
    core.blobs
        .put(&key, Bytes::from(body), "application/json")
        .await?;
    Ok(key)
}
