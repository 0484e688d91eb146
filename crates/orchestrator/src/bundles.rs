//! A run's record (issue 20, the run bundle): everything needed to understand and
//! reproduce a run, read in one use case with the run's own access check — the run
//! (timings, usage, its log), its task and TaskSpec, the executor record it ran on (and
//! the version its program last reported), the workspace archive's record (and its
//! bytes when asked), every stored event, and each artifact with its bytes while they
//! are available. The API packs it into a `tar.gz`.

use std::sync::Arc;

use bytes::Bytes;
use tlao_domain::{
    Archive, Artifact, ArtifactStatus, ExecutorDescriptor, ExecutorSeen, RunEvent, RunId, Task,
    keys,
};
use tlao_ports::BlobKey;

use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::events::read_after;
use crate::registry::ExecutorRegistry;
use crate::runs::{RunService, RunView};
use crate::tasks::TaskService;

/// The most bytes of blobs (artifacts and archive) one record holds, since a bundle is
/// built in memory: past it, blobs are left out (their records, with their hashes, stay).
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

/// Everything stored about one run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run, with its kept log.
    pub run: RunView,
    /// Its task (the TaskSpec).
    pub task: Task,
    /// The executor record it ran on, when it is still registered.
    pub executor: Option<ExecutorDescriptor>,
    /// When the executor's program was last reported found, and its version.
    pub executor_seen: Option<ExecutorSeen>,
    /// The workspace archive's record, when the task has one.
    pub archive: Option<Archive>,
    /// The archive's bytes, when asked for (and within [`MAX_RECORD_BYTES`]).
    pub archive_bytes: Option<Bytes>,
    /// Every stored event, in sequence order.
    pub events: Vec<RunEvent>,
    /// Each artifact, with its bytes when it is available (and within
    /// [`MAX_RECORD_BYTES`]).
    pub artifacts: Vec<(Artifact, Option<Bytes>)>,
}

/// Reads run records.
pub struct BundleService {
    core: Arc<Core>,
    runs: Arc<RunService>,
    tasks: Arc<TaskService>,
    executors: Arc<ExecutorRegistry>,
}

impl BundleService {
    /// The service over shared dependencies and the services it reads through.
    pub fn new(
        core: Arc<Core>,
        runs: Arc<RunService>,
        tasks: Arc<TaskService>,
        executors: Arc<ExecutorRegistry>,
    ) -> Self {
        BundleService {
            core,
            runs,
            tasks,
            executors,
        }
    }

    /// The record of a run of a workspace the caller belongs to, with the archive's
    /// bytes when `with_archive`.
    ///
    /// Errors: `NotFound` when the run does not exist, `Forbidden` when the caller is
    /// not a member of its workspace, `Unavailable` when storage does not answer.
    pub async fn record(
        &self,
        caller: &Caller,
        run_id: &RunId,
        with_archive: bool,
    ) -> Result<RunRecord, ServiceError> {
        let run = self.runs.get(caller, run_id).await?;
        let task = self.tasks.get(caller, &run.run.task_id).await?;
        let ws = &run.run.workspace_id;
        let executor = self
            .executors
            .list()
            .await?
            .iter()
            .find(|e| e.name == run.run.executor)
            .cloned();
        let executor_seen = self
            .executors
            .availability()
            .await?
            .remove(&run.run.executor);
        let archive = match &task.spec.input.archive_id {
            Some(id) => {
                self.core
                    .store
                    .get::<Archive>(&keys::archive(ws, id))
                    .await?
            }
            None => None,
        };

        let mut budget = MAX_RECORD_BYTES;
        let archive_bytes = match (&archive, with_archive) {
            (Some(archive), true) => {
                self.read_blob(&archive.key, archive.size, &mut budget)
                    .await?
            }
            _ => None,
        };
        let mut artifacts = Vec::with_capacity(run.run.artifact_ids.len());
        for id in &run.run.artifact_ids {
            let Some(artifact) = self
                .core
                .store
                .get::<Artifact>(&keys::artifact(ws, id))
                .await?
            else {
                continue;
            };
            let bytes = if artifact.status == ArtifactStatus::Available {
                self.read_blob(&artifact.key, artifact.size, &mut budget)
                    .await?
            } else {
                None
            };
            artifacts.push((artifact, bytes));
        }

        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |event: &RunEvent| event.seq);
            let page = read_after(
                &self.core,
                run_id,
                after,
                crate::events::MAX_EVENTS_PER_READ,
            )
            .await?;
            let full = page.len() == crate::events::MAX_EVENTS_PER_READ;
            events.extend(page);
            if !full {
                break;
            }
        }
        Ok(RunRecord {
            run,
            task,
            executor,
            executor_seen,
            archive,
            archive_bytes,
            events,
            artifacts,
        })
    }

    /// The bytes of the blob at `key` (recorded as `size` bytes), taken from
    /// `budget`; `None` when they would not fit in what is left of it.
    async fn read_blob(
        &self,
        key: &str,
        size: u64,
        budget: &mut u64,
    ) -> Result<Option<Bytes>, ServiceError> {
        if size > *budget {
            return Ok(None);
        }
        let key = BlobKey::parse(key).map_err(|e| ServiceError::Internal(e.into()))?;
        let bytes = self.core.read_blob_within(&key, *budget).await?;
        if let Some(bytes) = &bytes {
            *budget -= bytes.len() as u64;
        }
        Ok(bytes)
    }
}
