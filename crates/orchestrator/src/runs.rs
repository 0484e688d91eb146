//! Runs (requirement 2): creation with executor selection, the daily quota and the queue;
//! reads, lists and cancellation.
//!
//! Creating a run selects its executor, builds it, and stores it with the named
//! transaction [`transactions::create_run`], which counts it against the daily quotas
//! (its workspace's, and its creator's across their workspaces) in the same write; its
//! typed refusal becomes the use case's error here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tlao_domain::{
    ExecutorName, Limit, LogText, Run, RunId, RunStatus, Task, TaskId, TaskType, Timestamp,
    Transition, Usage, UserId, WorkspaceId, keys,
};
use tlao_ports::{Cursor, Direction, Query};

use crate::context::{Caller, Core, entries_ahead};
use crate::error::ServiceError;
use crate::idempotency::{Idempotency, replayed};
use crate::registry::{ExecutorRegistry, Selection};
use crate::tasks::{TaskService, store_task_spec};
use crate::transactions::{self, CreateRunError, DailyQuotas};
use crate::workspaces::WorkspaceService;

/// The most runs one list page returns.
pub const MAX_PAGE: usize = 100;
/// The most runs one list request examines when filtering by status.
const MAX_SCAN: usize = 1000;
/// Queue positions are told up to this one; a run further back has none.
const MAX_POSITION: u32 = 1000;

/// The body of `POST /runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRun {
    /// The task to run.
    pub task_id: TaskId,
    /// The executor to use; chosen by task type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorName>,
}

/// A run with what is derived at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// The run.
    pub run: Run,
    /// Its 1-based position in its workspace's queue, while queued.
    pub queue_position: Option<u32>,
    /// Its kept log lines, when read singly (lists leave them out).
    pub logs: Option<LogText>,
}

/// Which runs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    /// The workspace; the caller's default workspace when absent.
    pub workspace_id: Option<WorkspaceId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs on this executor.
    pub executor: Option<ExecutorName>,
    /// Only runs of this task type.
    pub task_type: Option<TaskType>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// Continue after this run (newest first).
    pub after: Option<RunId>,
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPage {
    /// The runs.
    pub items: Vec<RunView>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<RunId>,
}

/// Creates, reads, lists and cancels runs.
pub struct RunService {
    core: Arc<Core>,
    tasks: Arc<TaskService>,
    workspaces: Arc<WorkspaceService>,
    registry: Arc<ExecutorRegistry>,
}

impl RunService {
    /// The service over shared dependencies.
    pub fn new(
        core: Arc<Core>,
        tasks: Arc<TaskService>,
        workspaces: Arc<WorkspaceService>,
        registry: Arc<ExecutorRegistry>,
    ) -> Self {
        RunService {
            core,
            tasks,
            workspaces,
            registry,
        }
    }

    /// Queues a run of a task (requirements 2.1, 2.2, 4.4, 7.2). Errors: `NotFound` for
    /// the task, `Forbidden`, `NoExecutor`, `QuotaExceeded` (the workspace's daily quota
    /// or the caller's).
    pub async fn create(
        &self,
        caller: &Caller,
        request: CreateRun,
        idempotency: Option<&Idempotency>,
    ) -> Result<RunView, ServiceError> {
        let task = self.tasks.get(caller, &request.task_id).await?;
        let now = self.core.now();
        if let Some(first) = replayed(idempotency, &self.core.store, &caller.user_id, now).await? {
            return self.view(first).await;
        }
        let selection = self
            .registry
            .select(task.spec.task_type, request.executor.as_ref())
            .await?;
        self.refuse_when_quota_used(&task.workspace_id, &caller.user_id, now)
            .await?;
        let run = self.queued_run(caller, &task, &selection, now);
        // A task stored before TaskSpecs moved to tasks: this run gets a copy of its own.
        let spec_key = match task.spec_key {
            Some(_) => None,
            None => {
                let key = task.spec_key_of(&run.run_id);
                Some(store_task_spec(&self.core, key, &task.spec).await?)
            }
        };
        let record = idempotency
            .map(|idem| idem.record_op(&caller.user_id, &run, now))
            .transpose()?;
        let quotas = DailyQuotas {
            per_workspace: self.core.guardrails.daily_run_quota,
            per_user: self.core.guardrails.daily_run_quota_per_user,
        };
        if let Err(error) = transactions::create_run(&self.core.store, &run, quotas, record).await {
            // A refused run refers to no copy (best effort: a leftover is harmless); after
            // a store error the run may still have been stored, and its copy stays.
            if let (Some(spec_key), false) = (&spec_key, matches!(error, CreateRunError::Store(_)))
            {
                let _ = self.core.blobs.delete(spec_key).await;
            }
            return match error {
                CreateRunError::QuotaExhausted => Err(self.quota_exceeded(Limit::DailyRunQuota)),
                CreateRunError::UserQuotaExhausted => {
                    Err(self.quota_exceeded(Limit::DailyRunQuotaPerUser))
                }
                // A concurrent request with the same key won; answer with its run.
                CreateRunError::IdempotencyKeyTaken => {
                    match replayed(idempotency, &self.core.store, &caller.user_id, now).await? {
                        Some(first) => self.view(first).await,
                        None => Err(Idempotency::in_progress()),
                    }
                }
                CreateRunError::Store(error) => Err(error.into()),
            };
        }
        self.core.signal_queue();
        tracing::info!(
            workspace_id = %run.workspace_id, run_id = %run.run_id, executor = %run.executor,
            operation = "create_run", "run queued"
        );
        self.view(run).await
    }

    /// A run of a workspace the caller belongs to (requirement 2.7).
    pub async fn get(&self, caller: &Caller, run_id: &RunId) -> Result<RunView, ServiceError> {
        let (run, ahead) = self
            .core
            .run_and_ahead_for(caller, run_id, MAX_POSITION as usize)
            .await?;
        let queue_position = ahead.and_then(position_after);
        // A run that kept no log bytes has no log lines to read; a finished run's log
        // no longer changes, so it is read once.
        let logs = if run.log_bytes == 0 {
            LogText::from(String::new())
        } else if let Some(text) = self.core.cache.log(&run) {
            text
        } else {
            let text = crate::events::log_text(&self.core, run_id).await?;
            self.core.cache.remember_log(&run, text)
        };
        Ok(RunView {
            run,
            queue_position,
            logs: Some(logs),
        })
    }

    /// A page of a workspace's runs, newest first (requirement 2.6).
    pub async fn list(&self, caller: &Caller, filter: RunFilter) -> Result<RunPage, ServiceError> {
        if filter.limit == 0 || filter.limit > MAX_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let ws = match filter.workspace_id {
            Some(ws) => ws,
            None => self.workspaces.default_for(caller).await?.ok_or_else(|| {
                ServiceError::invalid("workspaceId", "is required: you belong to no workspace yet")
            })?,
        };
        self.core.require_member(caller, &ws).await?;

        let mut items = Vec::new();
        let mut cursor = filter
            .after
            .map(|run| Cursor::after(keys::run(&ws, &run).sk));
        let mut scanned = 0;
        let filtered =
            filter.status.is_some() || filter.executor.is_some() || filter.task_type.is_some();
        let page_size = if filtered { MAX_PAGE } else { filter.limit };
        let next_cursor = 'pages: loop {
            let query =
                Query::new(keys::runs_of(&ws), Direction::Backward, page_size).after(cursor);
            let (runs, next) = self.core.store.query::<Run>(query).await?;
            let count = runs.len();
            for (index, run) in runs.into_iter().enumerate() {
                scanned += 1;
                let last = run.run_id.clone();
                if filter.status.is_none_or(|status| status == run.status)
                    && filter.executor.as_ref().is_none_or(|e| *e == run.executor)
                    && filter.task_type.is_none_or(|t| t == run.task_type)
                {
                    items.push(run);
                }
                if items.len() == filter.limit || scanned >= MAX_SCAN {
                    // Stop here; the caller continues after the last run examined.
                    let more = index + 1 < count || next.is_some();
                    break 'pages more.then_some(last);
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break None,
            }
        };
        let positions = self.queue_positions(&ws).await?;
        let items = items
            .into_iter()
            .map(|run| {
                let queue_position = position_of(&positions, &run);
                RunView {
                    run,
                    queue_position,
                    logs: None,
                }
            })
            .collect();
        Ok(RunPage { items, next_cursor })
    }

    /// Cancels a queued or running run. A running run's worker sees the cancellation on
    /// its next heartbeat and stops the executor. `Conflict` when the run is finished.
    pub async fn cancel(&self, caller: &Caller, run_id: &RunId) -> Result<RunView, ServiceError> {
        let run = self.load(caller, run_id).await?;
        let cancelled = transactions::finish_run(
            &self.core,
            &run.workspace_id,
            run_id,
            Transition::Cancel,
            |_| Ok(()),
        )
        .await
        .map_err(|e| match e {
            ServiceError::Conflict(reason) => ServiceError::Conflict(format!(
                "{reason}; only queued or running runs can be cancelled"
            )),
            other => other,
        })?;
        tracing::info!(
            workspace_id = %cancelled.workspace_id, run_id = %run_id,
            operation = "cancel_run", "run cancelled"
        );
        self.view(cancelled).await
    }

    async fn load(&self, caller: &Caller, run_id: &RunId) -> Result<Run, ServiceError> {
        self.core.run_for(caller, run_id).await
    }

    async fn view(&self, run: Run) -> Result<RunView, ServiceError> {
        let queue_position = self.queue_position(&run).await?;
        Ok(RunView {
            run,
            queue_position,
            logs: None,
        })
    }

    /// A queued run's 1-based position in its workspace's queue (`None` when it is not
    /// queued, or not among the first 1,000): one more than the entries ahead of its
    /// own, counted in the table without reading them out, so a run at the back of a
    /// long queue costs what one at its head does.
    async fn queue_position(&self, run: &Run) -> Result<Option<u32>, ServiceError> {
        if run.status != RunStatus::Queued {
            return Ok(None);
        }
        let ahead = entries_ahead(&run.workspace_id, &run.run_id, MAX_POSITION as usize);
        let ahead = self.core.store.count(ahead).await?;
        Ok(position_after(ahead))
    }

    /// The sort keys of the workspace's queue entries, oldest first: the first
    /// [`MAX_POSITION`], read from its head in pages of 100.
    async fn queue_positions(&self, ws: &WorkspaceId) -> Result<Vec<String>, ServiceError> {
        let mut sks = Vec::new();
        let mut cursor = None;
        while sks.len() < MAX_POSITION as usize {
            let query =
                Query::new(keys::workspace_queue(ws), Direction::Forward, 100).after(cursor);
            let page = self.core.store.query_items(query).await?;
            sks.extend(page.items.into_iter().map(|item| item.key.sk));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(sks)
    }

    /// Refuses a run early when the workspace's or the user's quota for the day is
    /// visibly used up, so a flood of refused requests writes nothing;
    /// [`transactions::create_run`] still decides under races.
    async fn refuse_when_quota_used(
        &self,
        ws: &WorkspaceId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let store = &self.core.store;
        let day = now.utc_date();
        let (by_workspace, by_user) = futures::try_join!(
            transactions::runs::runs_created_on(store, ws, day),
            transactions::runs::runs_created_by_on(store, user, day),
        )?;
        if by_workspace >= u64::from(self.core.guardrails.daily_run_quota) {
            return Err(self.quota_exceeded(Limit::DailyRunQuota));
        }
        if by_user >= u64::from(self.core.guardrails.daily_run_quota_per_user) {
            return Err(self.quota_exceeded(Limit::DailyRunQuotaPerUser));
        }
        Ok(())
    }

    /// A new queued run of `task` on the selected executor, created by the caller at `now`.
    fn queued_run(
        &self,
        caller: &Caller,
        task: &Task,
        selection: &Selection,
        now: Timestamp,
    ) -> Run {
        let guardrails = &self.core.guardrails;
        let executor = &selection.executor;
        Run {
            run_id: RunId::new(self.core.new_ulid()),
            task_id: task.task_id.clone(),
            workspace_id: task.workspace_id.clone(),
            task_type: task.spec.task_type,
            executor: executor.name.clone(),
            selection: Some(selection.reason.clone()),
            status: RunStatus::Queued,
            created_by: caller.user_id.clone(),
            created_at: now,
            started_at: None,
            finished_at: None,
            max_run_seconds: guardrails.run_seconds(
                executor.config.max_run_seconds(),
                task.spec.constraints.max_run_seconds,
            ),
            deadline: None,
            lease_id: None,
            heartbeat_at: None,
            error: None,
            usage: Usage::Unmeasured,
            artifact_ids: Vec::new(),
            log_bytes: 0,
            dropped_log_bytes: 0,
            logs_truncated: false,
            worker_seq: 0,
            worker_dropped_lines: 0,
            worker_dropped_bytes: 0,
        }
    }

    fn quota_exceeded(&self, limit: Limit) -> ServiceError {
        let now = self.core.now();
        let reset = now.start_of_next_utc_day();
        let guardrails = &self.core.guardrails;
        ServiceError::QuotaExceeded {
            limit,
            quota: match limit {
                Limit::DailyRunQuotaPerUser => guardrails.daily_run_quota_per_user,
                _ => guardrails.daily_run_quota,
            },
            retry_after_seconds: (reset.millis_since(now).max(0) as u64).div_ceil(1000),
        }
    }
}

/// The 1-based queue position of a run with `ahead` entries ahead of its own; `None`
/// past the first [`MAX_POSITION`].
fn position_after(ahead: usize) -> Option<u32> {
    u32::try_from(ahead)
        .ok()
        .filter(|ahead| *ahead < MAX_POSITION)
        .map(|ahead| ahead + 1)
}

fn position_of(queued_sks: &[String], run: &Run) -> Option<u32> {
    if run.status != RunStatus::Queued {
        return None;
    }
    let own = keys::workspace_queue_entry(&run.workspace_id, &run.run_id).sk;
    queued_sks
        .iter()
        .position(|sk| *sk == own)
        .map(|index| index as u32 + 1)
}
