//! The executor registry (requirement 4): executors are records at `SYS/EXEC#{name}`, so
//! adding an agent is inserting a record, not changing code.
//!
//! The registry is loaded from the table at start, reloaded after every change made
//! through this instance, and at most `refresh_after` old otherwise, so several API
//! instances converge on changes made elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tlao_domain::{ExecutorDescriptor, ExecutorName, TaskType, keys};
use tlao_ports::{Condition, Direction, Query};
use tokio::sync::RwLock;

use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::store::StoreError;

/// How long a loaded registry is trusted before it is read again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

struct Snapshot {
    loaded_at: Instant,
    executors: Arc<Vec<ExecutorDescriptor>>,
}

/// Registers, lists, removes and selects executors.
pub struct ExecutorRegistry {
    core: Arc<Core>,
    refresh_after: Duration,
    snapshot: RwLock<Option<Snapshot>>,
}

impl ExecutorRegistry {
    /// The registry over shared dependencies; nothing is read until first use or
    /// [`ExecutorRegistry::reload`].
    pub fn new(core: Arc<Core>, refresh_after: Duration) -> Self {
        ExecutorRegistry {
            core,
            refresh_after,
            snapshot: RwLock::new(None),
        }
    }

    /// Reads every record from the table now.
    pub async fn reload(&self) -> Result<Arc<Vec<ExecutorDescriptor>>, ServiceError> {
        let mut executors = Vec::new();
        let mut cursor = None;
        loop {
            let query = Query::new(keys::executors(), Direction::Forward, 1000).after(cursor);
            let (page, next) = self.core.store.query::<ExecutorDescriptor>(query).await?;
            executors.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let executors = Arc::new(executors);
        *self.snapshot.write().await = Some(Snapshot {
            loaded_at: Instant::now(),
            executors: executors.clone(),
        });
        Ok(executors)
    }

    /// Every registered executor, by name.
    pub async fn list(&self) -> Result<Arc<Vec<ExecutorDescriptor>>, ServiceError> {
        if let Some(snapshot) = self.snapshot.read().await.as_ref()
            && snapshot.loaded_at.elapsed() < self.refresh_after
        {
            return Ok(snapshot.executors.clone());
        }
        self.reload().await
    }

    /// Registers a new executor (administrators only); `Conflict` when the name is taken.
    pub async fn register(
        &self,
        caller: &Caller,
        descriptor: ExecutorDescriptor,
    ) -> Result<ExecutorDescriptor, ServiceError> {
        self.core.require_admin(caller, "register executors")?;
        match self.core.store.insert(&descriptor).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(ServiceError::Conflict(format!(
                    "an executor named {:?} is already registered; remove it first to replace it",
                    descriptor.name.as_str()
                )));
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(executor = %descriptor.name, operation = "register_executor", "executor registered");
        self.reload().await?;
        Ok(descriptor)
    }

    /// Registers `descriptor` unless an executor of that name exists; for first start.
    pub async fn ensure(&self, descriptor: ExecutorDescriptor) -> Result<(), ServiceError> {
        match self.core.store.insert(&descriptor).await {
            Ok(()) => {
                // The cached snapshot no longer says what is registered.
                *self.snapshot.write().await = None;
                Ok(())
            }
            Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Removes an executor (administrators only). Runs already queued for it stay queued
    /// until it is registered again or they are cancelled.
    pub async fn remove(&self, caller: &Caller, name: &ExecutorName) -> Result<(), ServiceError> {
        self.core.require_admin(caller, "remove executors")?;
        match self
            .core
            .store
            .delete(&keys::executor(name), Some(Condition::Exists))
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Err(ServiceError::not_found("executor", name));
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(executor = %name, operation = "remove_executor", "executor removed");
        self.reload().await?;
        Ok(())
    }

    /// Chooses the executor for a task type (requirement 2.2): the requested one if it
    /// serves the type, else the first registered one that does. `NoExecutor` when none
    /// fits, with a message naming the task type and what is registered.
    pub async fn select(
        &self,
        task_type: TaskType,
        requested: Option<&ExecutorName>,
    ) -> Result<ExecutorDescriptor, ServiceError> {
        let executors = self.list().await?;
        if let Some(name) = requested {
            let Some(found) = executors.iter().find(|e| &e.name == name) else {
                return Err(ServiceError::NoExecutor {
                    task_type,
                    message: format!(
                        "no executor named {:?} is registered; registered: {}",
                        name.as_str(),
                        names(&executors)
                    ),
                });
            };
            if !found.serves(task_type) {
                return Err(ServiceError::NoExecutor {
                    task_type,
                    message: format!(
                        "executor {:?} does not serve taskType {:?}; it serves {}",
                        name.as_str(),
                        task_type.as_str(),
                        found
                            .task_types
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            return Ok(found.clone());
        }
        executors
            .iter()
            .find(|e| e.serves(task_type))
            .cloned()
            .ok_or_else(|| ServiceError::NoExecutor {
                task_type,
                message: format!(
                    "no registered executor serves taskType {:?}; registered: {}",
                    task_type.as_str(),
                    names(&executors)
                ),
            })
    }
}

fn names(executors: &[ExecutorDescriptor]) -> String {
    if executors.is_empty() {
        return "none".into();
    }
    executors
        .iter()
        .map(|e| {
            format!(
                "{} ({})",
                e.name,
                e.task_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
