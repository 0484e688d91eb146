//! The executor registry (requirement 4): executors are records at `SYS/EXEC#{name}`, so
//! adding an agent is inserting a record, not changing code.
//!
//! The registry is loaded from the table at start, reloaded after every change made
//! through this instance, and at most `refresh_after` old otherwise, so several API
//! instances converge on changes made elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tlao_domain::{ExecutorDescriptor, ExecutorName, ExecutorSeen, TaskType, Timestamp, keys};
use tlao_ports::{AttrValue, Condition, Direction, Item, Query};
use tokio::sync::RwLock;

use crate::attrs;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::store::StoreError;

/// How often one worker's sighting of one executor is written again when nothing about
/// it changed (reports come with every lease and heartbeat).
pub const SIGHTING_REWRITE: Duration = Duration::from_secs(60);
/// How long a sighting item is kept (DynamoDB's TTL; other engines keep it and readers
/// skip it): a day.
const SIGHTING_RETENTION_SECONDS: i64 = 86_400;
/// The most sighting items read when judging availability.
const MAX_SIGHTINGS: usize = 5000;

/// When each (executor, worker) sighting was last written by this instance, and with
/// which version.
type Written = HashMap<(ExecutorName, String), (Instant, Option<String>)>;

/// One worker's report that an executor's program is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The executor.
    pub executor: ExecutorName,
    /// Its program's version, when the worker could read it.
    pub version: Option<String>,
}

/// The executor run creation chose, and why (kept on the run as its `selection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The executor.
    pub executor: ExecutorDescriptor,
    /// Why, in a sentence.
    pub reason: String,
}

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
    /// When this instance last wrote each (executor, worker) sighting, and its version.
    written: Mutex<Written>,
}

impl ExecutorRegistry {
    /// The registry over shared dependencies; nothing is read until first use or
    /// [`ExecutorRegistry::reload`].
    pub fn new(core: Arc<Core>, refresh_after: Duration) -> Self {
        ExecutorRegistry {
            core,
            refresh_after,
            snapshot: RwLock::new(None),
            written: Mutex::new(HashMap::new()),
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

    /// Records that `worker` found the programs of `sightings` (requirement 2.2). Each
    /// (executor, worker) item is written at most once per [`SIGHTING_REWRITE`] unless
    /// its version changed; executors not registered are ignored.
    pub async fn record_seen(
        &self,
        worker: &str,
        sightings: &[Sighting],
    ) -> Result<(), ServiceError> {
        if sightings.is_empty() {
            return Ok(());
        }
        let registered = self.list().await?;
        let now = self.core.now();
        for sighting in sightings {
            if !registered.iter().any(|e| e.name == sighting.executor) {
                continue;
            }
            let slot = (sighting.executor.clone(), worker.to_owned());
            let fresh = self
                .written
                .lock()
                .map_err(|_| ServiceError::Internal(anyhow::anyhow!("sighting cache poisoned")))?
                .get(&slot)
                .is_some_and(|(at, version)| {
                    at.elapsed() < SIGHTING_REWRITE && *version == sighting.version
                });
            if fresh {
                continue;
            }
            let mut item = Item::new(keys::executor_seen(&sighting.executor, worker))
                .with(attrs::KIND, AttrValue::S(attrs::kind::EXECUTOR_SEEN.into()))
                .with(attrs::LAST_SEEN_AT, AttrValue::N(now.unix_millis()))
                .with(
                    attrs::EXPIRES_AT,
                    AttrValue::N(now.unix_millis() / 1000 + SIGHTING_RETENTION_SECONDS),
                );
            if let Some(version) = &sighting.version {
                item = item.with(attrs::VERSION, AttrValue::S(version.clone()));
            }
            self.core.store.put_item(item, None).await?;
            if let Ok(mut written) = self.written.lock() {
                written.insert(slot, (Instant::now(), sighting.version.clone()));
            }
        }
        Ok(())
    }

    /// What is known of each executor's availability: its latest sighting, how many
    /// workers saw it within `guardrails.executor_seen_within_seconds`, and the latest
    /// version. Executors never seen (or seen only longer ago than a day) are absent.
    pub async fn availability(&self) -> Result<HashMap<ExecutorName, ExecutorSeen>, ServiceError> {
        let now = self.core.now();
        let window_start = self.window_start(now);
        let mut seen: HashMap<ExecutorName, ExecutorSeen> = HashMap::new();
        let mut cursor = None;
        let mut read = 0;
        loop {
            let query = Query::new(keys::executors_seen(), Direction::Forward, 1000).after(cursor);
            let page = self.core.store.query_items(query).await?;
            read += page.items.len();
            for item in page.items {
                let Some((name, _worker)) = item
                    .key
                    .sk
                    .strip_prefix("EXECSEEN#")
                    .and_then(|rest| rest.rsplit_once('#'))
                else {
                    continue;
                };
                let (Ok(name), Some(at)) =
                    (name.parse::<ExecutorName>(), item.n(attrs::LAST_SEEN_AT))
                else {
                    continue;
                };
                if item
                    .n(attrs::EXPIRES_AT)
                    .is_some_and(|expires| expires <= now.unix_millis() / 1000)
                {
                    continue;
                }
                let at = Timestamp::from_unix_millis(at);
                let version = item.s(attrs::VERSION).map(str::to_owned);
                let recent = u32::from(at >= window_start);
                seen.entry(name)
                    .and_modify(|entry| {
                        entry.workers += recent;
                        if at > entry.last_seen_at {
                            entry.last_seen_at = at;
                            entry.version = version.clone();
                        }
                    })
                    .or_insert(ExecutorSeen {
                        last_seen_at: at,
                        workers: recent,
                        version,
                    });
            }
            match page.next_cursor {
                Some(next) if read < MAX_SIGHTINGS => cursor = Some(next),
                _ => break,
            }
        }
        Ok(seen)
    }

    /// The start of the availability window at `now`.
    fn window_start(&self, now: Timestamp) -> Timestamp {
        let window = self.core.guardrails.executor_seen_within_seconds;
        Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX)),
        )
    }

    /// Chooses the executor for a task type (requirement 2.2): the requested one if it
    /// serves the type; else, in registry order, the first serving it that a worker
    /// reported available within `guardrails.executor_seen_within_seconds`; else (none
    /// seen) the first registered one serving it. `NoExecutor` when none fits, with a
    /// message naming the task type and what is registered.
    pub async fn select(
        &self,
        task_type: TaskType,
        requested: Option<&ExecutorName>,
    ) -> Result<Selection, ServiceError> {
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
            return Ok(Selection {
                executor: found.clone(),
                reason: format!("{name} was requested"),
            });
        }
        let serving: Vec<&ExecutorDescriptor> =
            executors.iter().filter(|e| e.serves(task_type)).collect();
        let Some(first) = serving.first() else {
            return Err(ServiceError::NoExecutor {
                task_type,
                message: format!(
                    "no registered executor serves taskType {:?}; registered: {}",
                    task_type.as_str(),
                    names(&executors)
                ),
            });
        };
        let window = self.core.guardrails.executor_seen_within_seconds;
        let seen = self.availability().await?;
        let available = serving
            .iter()
            .find(|e| seen.get(&e.name).is_some_and(|s| s.workers > 0));
        if let Some(chosen) = available {
            let sighting = &seen[&chosen.name];
            let skipped: Vec<&str> = serving
                .iter()
                .take_while(|e| e.name != chosen.name)
                .map(|e| e.name.as_str())
                .collect();
            let mut reason = format!(
                "{} serves {} and was seen available by {} worker{} within {window} s (version {})",
                chosen.name,
                task_type.as_str(),
                sighting.workers,
                if sighting.workers == 1 { "" } else { "s" },
                sighting.version.as_deref().unwrap_or("unknown"),
            );
            if !skipped.is_empty() {
                reason.push_str(&format!(
                    "; skipped, not seen available: {}",
                    skipped.join(", ")
                ));
            }
            return Ok(Selection {
                executor: (*chosen).clone(),
                reason,
            });
        }
        Ok(Selection {
            executor: (*first).clone(),
            reason: format!(
                "{} is the first registered executor serving {}; none serving it was seen available within {window} s",
                first.name,
                task_type.as_str()
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
