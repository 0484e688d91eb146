//! Starting work (requirements 1 and 2): creating a task from a TaskSpec, queueing its
//! run, or both at once — the one use case behind `POST /tasks`, `POST /runs` and the
//! console's start form.
//!
//! Every step may carry a caller's idempotency key. The key is bound here to what the
//! request means (its parsed values, not the bytes it arrived as), so a retry returns
//! the first result and creates nothing, and the same key with other values is a
//! `Conflict`. Callers hand over the key as they received it; how it is bound, and under
//! which operation name, is decided once, in this module.

use std::sync::Arc;

use serde::Serialize;
use tlao_domain::{ExecutorName, NewTask, Task, TaskSpec, WorkspaceId};

use crate::context::Caller;
use crate::error::ServiceError;
use crate::idempotency::{Idempotency, MAX_KEY_LEN};
use crate::registry::ExecutorRegistry;
use crate::runs::{CreateRun, RunService, RunView};
use crate::tasks::TaskService;

/// The operation name a key of [`StartService::create_task`] is bound to (the REST
/// route's, under which records were written before this module existed).
const CREATE_TASK: &str = "POST /tasks";
/// The operation name a key of [`StartService::create_run`] is bound to.
const CREATE_RUN: &str = "POST /runs";
/// The operation name of the task [`StartService::start`] creates.
const START_TASK: &str = "start task";
/// The operation name of the run [`StartService::start`] queues.
const START_RUN: &str = "start run";

/// The longest key [`StartService::start`] takes: each of its two steps is recorded
/// under the key with a prefix (`start-task-`, `start-run-`), within [`MAX_KEY_LEN`].
pub const MAX_START_KEY: usize = MAX_KEY_LEN - 16;

/// A task to create and run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTask {
    /// The workspace the task belongs to.
    pub workspace_id: WorkspaceId,
    /// The validated spec (its archive, if any, already uploaded to the workspace).
    pub spec: TaskSpec,
    /// The executor to use; chosen by task type when absent.
    pub executor: Option<ExecutorName>,
}

/// What [`StartService::start`] created (or, on a retry, found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The task.
    pub task: Task,
    /// Its run.
    pub run: RunView,
}

/// What a key of `POST /tasks` is bound to: the parsed request, so key order and
/// spacing in the body do not matter.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskFingerprint<'a> {
    workspace_id: &'a WorkspaceId,
    spec: &'a TaskSpec,
}

/// What a key of [`StartService::start`] is bound to: everything but the archive, which
/// a client sending again uploads again, under a new id, and must still be recognised.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartFingerprint<'a> {
    workspace_id: &'a WorkspaceId,
    spec: TaskSpec,
    executor: Option<&'a ExecutorName>,
}

/// Creates tasks and queues their runs, idempotently.
pub struct StartService {
    tasks: Arc<TaskService>,
    runs: Arc<RunService>,
    executors: Arc<ExecutorRegistry>,
}

impl StartService {
    /// The service over the task and run services and the executor registry.
    pub fn new(
        tasks: Arc<TaskService>,
        runs: Arc<RunService>,
        executors: Arc<ExecutorRegistry>,
    ) -> Self {
        StartService {
            tasks,
            runs,
            executors,
        }
    }

    /// Creates a task in a workspace the caller belongs to (`POST /tasks`). With `key`,
    /// a retry returns the first task and creates nothing.
    ///
    /// Errors: `Invalid` when `key` is not 1 to 255 visible ASCII characters or the
    /// archive is not the workspace's; `Forbidden`, `NotFound` for the workspace;
    /// `Conflict` when `key` was used with another request.
    pub async fn create_task(
        &self,
        caller: &Caller,
        task: NewTask,
        key: Option<&str>,
    ) -> Result<Task, ServiceError> {
        let fingerprint = TaskFingerprint {
            workspace_id: &task.workspace_id,
            spec: &task.spec,
        };
        let idempotency = bind(key, CREATE_TASK, &fingerprint)?;
        self.tasks.create(caller, task, idempotency.as_ref()).await
    }

    /// Queues a run of a task (`POST /runs`). With `key`, a retry returns the first run
    /// and queues nothing.
    ///
    /// Errors: as [`RunService::create`], and `Invalid` when `key` is not 1 to 255
    /// visible ASCII characters; `Conflict` when it was used with another request.
    pub async fn create_run(
        &self,
        caller: &Caller,
        request: CreateRun,
        key: Option<&str>,
    ) -> Result<RunView, ServiceError> {
        let idempotency = bind(key, CREATE_RUN, &request)?;
        self.runs
            .create(caller, request, idempotency.as_ref())
            .await
    }

    /// Creates a task and queues its run (the console's start form). An executor that
    /// cannot serve the task is refused before anything is created. With `key`, sending
    /// the same request again returns the first task and run and creates nothing, even
    /// with its archive uploaded again under a new id.
    ///
    /// Errors: `Invalid` when `key` is not 1 to [`MAX_START_KEY`] visible ASCII
    /// characters, and `NoExecutor`, both before anything is created; then those of
    /// [`StartService::create_task`] and [`RunService::create`] (`QuotaExceeded` leaves
    /// the task created, as `POST /tasks` then `POST /runs` would).
    pub async fn start(
        &self,
        caller: &Caller,
        request: StartTask,
        key: Option<&str>,
    ) -> Result<Started, ServiceError> {
        if let Some(key) = key
            && (key.is_empty()
                || key.len() > MAX_START_KEY
                || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ServiceError::invalid(
                "key",
                format!("must be 1 to {MAX_START_KEY} visible ASCII characters"),
            ));
        }
        self.executors
            .select(request.spec.task_type, request.executor.as_ref())
            .await?;
        let mut spec = request.spec.clone();
        spec.input.archive_id = None;
        let fingerprint = StartFingerprint {
            workspace_id: &request.workspace_id,
            spec,
            executor: request.executor.as_ref(),
        };
        let task_key = key.map(|key| format!("start-task-{key}"));
        let run_key = key.map(|key| format!("start-run-{key}"));
        let task_idempotency = bind(task_key.as_deref(), START_TASK, &fingerprint)?;
        let run_idempotency = bind(run_key.as_deref(), START_RUN, &fingerprint)?;
        let task = NewTask {
            workspace_id: request.workspace_id,
            spec: request.spec,
        };
        let task = self
            .tasks
            .create(caller, task, task_idempotency.as_ref())
            .await?;
        let run = CreateRun {
            task_id: task.task_id.clone(),
            executor: request.executor,
        };
        let run = self
            .runs
            .create(caller, run, run_idempotency.as_ref())
            .await?;
        Ok(Started { task, run })
    }
}

/// `key`, when given, bound to `operation` and `request`.
fn bind(
    key: Option<&str>,
    operation: &str,
    request: &impl Serialize,
) -> Result<Option<Idempotency>, ServiceError> {
    key.map(|key| Idempotency::new(key, operation, request))
        .transpose()
}
