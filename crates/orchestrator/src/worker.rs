//! The worker protocol's use cases: how the execution plane leases runs, reports events
//! (which double as heartbeats), stores artifacts and completes runs.
//!
//! A lease takes the oldest queued run whose workspace is below its concurrency limit,
//! with the named transaction [`transactions::lease()`]. A lease is light ([`Lease`]: the
//! run, its lease id and its executor), which is all the dispatcher needs to launch a
//! worker; the worker's [`Assignment`] (with presigned URLs) is built only when a worker
//! asks for one, by leasing itself ([`WorkerService::lease_wait`], which waits for work)
//! or by fetching the assignment of the lease the dispatcher took for it. Every later
//! call carries the lease id; a worker whose lease is gone (the reaper failed the run,
//! someone cancelled it) is told so and stops.
//!
//! Fencing: once a run has ended, or another lease holds it, every write under the old
//! lease is refused with [`ServiceError::Fenced`] and stores nothing — events and
//! heartbeats, artifact registration, finalization, and uploads through the URLs the
//! lease was given ([`WorkerService::check_upload`]). Completing a run that already
//! ended is the one exception: the run's own lease is answered with the outcome that
//! stands, and nothing is written, so a worker whose first answer was lost learns it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tlao_domain::{
    Archive, Artifact, ArtifactId, ArtifactName, ArtifactStatus, ArtifactType, ExecutorDescriptor,
    ExecutorName, LeaseId, Reported, Run, RunError, RunEvent, RunId, RunStatus, Task, Timestamp,
    Transition, Usage, WorkspaceId, keys,
};
use tlao_ports::{BlobError, BlobKey, Launch, PresignedUrl};

use crate::codec::LookupOf;
use crate::context::Core;
use crate::error::ServiceError;
use crate::registry::ExecutorRegistry;
use crate::run_store::{self, StoredRun, check_fence, check_lease};
use crate::transactions::{self, LeaseError, SettleArtifactError};

/// How long the presigned URLs of an assignment work.
pub const ASSIGNMENT_URL_TTL: Duration = Duration::from_secs(3600);
/// How many queue entries per executor a lease looks at.
const LEASE_SCAN: usize = 50;
/// How often a waiting lease looks at the queue when nothing in this process changed it.
pub const LEASE_POLL: Duration = Duration::from_millis(500);

/// A run just leased: what it takes to launch a worker for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The run, now `running`.
    pub run: Run,
    /// The lease every later call must carry.
    pub lease_id: LeaseId,
    /// The executor record to run it with.
    pub executor: ExecutorDescriptor,
}

impl Lease {
    /// What a launcher needs to start a single-job worker for this lease.
    pub fn launch(&self) -> Launch {
        Launch {
            run_id: self.run.run_id.clone(),
            lease_id: self.lease_id.clone(),
        }
    }
}

/// The workspace archive a run works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDownload {
    /// The archive.
    pub archive: Archive,
    /// Where to download it.
    pub url: PresignedUrl,
}

/// Everything a worker needs to execute a leased run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The run, now `running`.
    pub run: Run,
    /// The lease every later call must carry.
    pub lease_id: LeaseId,
    /// The executor record to run it with.
    pub executor: ExecutorDescriptor,
    /// The blob key of the TaskSpec (requirement 5.1).
    pub task_spec_key: String,
    /// Where to download the TaskSpec.
    pub task_spec_url: PresignedUrl,
    /// The workspace archive, when the task has one (requirement 5.2).
    pub archive: Option<ArchiveDownload>,
    /// When the run must be over.
    pub deadline: Timestamp,
}

/// What the control plane answers to an event batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The run's status now; anything but `running` means stop.
    pub status: RunStatus,
    /// Whether the worker must stop the executor (cancelled, timed out, failed elsewhere).
    pub stop: bool,
    /// The run's deadline.
    pub deadline: Option<Timestamp>,
    /// The last sequence number stored.
    pub last_seq: u64,
    /// The events as stored, with their sequence numbers.
    pub stored: Vec<RunEvent>,
}

/// An artifact the worker is about to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    /// Its name.
    pub name: ArtifactName,
    /// What it is.
    pub artifact_type: ArtifactType,
    /// Its size in bytes.
    pub size: u64,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its media type.
    pub content_type: String,
}

/// A pending artifact and where to upload its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactUpload {
    /// The record, `pending`.
    pub artifact: Artifact,
    /// A presigned PUT for its bytes.
    pub upload: PresignedUrl,
}

/// How the worker says a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The executor succeeded.
    Completed,
    /// The executor or the worker failed.
    Failed(RunError),
    /// The worker stopped the executor at the deadline.
    TimedOut,
    /// The worker stopped the executor because the run was cancelled.
    Cancelled,
}

impl Completion {
    /// The transition that ends a run this way.
    fn transition(self) -> Transition {
        match self {
            Completion::Completed => Transition::Complete,
            Completion::Failed(error) => Transition::Fail(error),
            Completion::TimedOut => Transition::TimeOut,
            Completion::Cancelled => Transition::Cancel,
        }
    }
}

/// The control plane's side of the worker protocol.
pub struct WorkerService {
    core: Arc<Core>,
    registry: Arc<ExecutorRegistry>,
}

impl WorkerService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>, registry: Arc<ExecutorRegistry>) -> Self {
        WorkerService { core, registry }
    }

    /// Leases the oldest queued run (of `executors`, or of any executor) whose workspace
    /// has a free slot; `None` when there is none. No URL is presigned: a worker asks
    /// for its [`Assignment`] with [`WorkerService::assignment`].
    pub async fn lease(
        &self,
        executors: Option<&[ExecutorName]>,
    ) -> Result<Option<Lease>, ServiceError> {
        if !self.core.is_leasing() {
            return Ok(None);
        }
        let registered = self.registry.list().await?;
        let mut candidates: Vec<(RunId, WorkspaceId, ExecutorDescriptor)> = Vec::new();
        for executor in registered.iter() {
            if executors.is_some_and(|wanted| !wanted.contains(&executor.name)) {
                continue;
            }
            let queued =
                transactions::lease::queued_for(&self.core.store, &executor.name, LEASE_SCAN)
                    .await?;
            candidates.extend(
                queued
                    .into_iter()
                    .map(|(run, ws)| (run, ws, executor.clone())),
            );
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));

        let limit = self.core.guardrails.max_concurrent_runs;
        let mut full: HashSet<WorkspaceId> = HashSet::new();
        for (run_id, ws, executor) in candidates {
            if full.contains(&ws) {
                continue;
            }
            let active = transactions::lease::active_runs(&self.core.store, &ws).await?;
            if active >= u64::from(limit) {
                full.insert(ws);
                continue;
            }
            if let Some(lease) = self.try_lease(&ws, &run_id, executor, limit).await? {
                return Ok(Some(lease));
            }
        }
        Ok(None)
    }

    /// Leases like [`WorkerService::lease`] and builds the run's assignment; `None` when
    /// there is nothing to lease.
    pub async fn lease_next(
        &self,
        executors: Option<&[ExecutorName]>,
    ) -> Result<Option<Assignment>, ServiceError> {
        match self.lease(executors).await? {
            Some(lease) => self.assemble(lease).await.map(Some),
            None => Ok(None),
        }
    }

    /// Leases like [`WorkerService::lease_next`], waiting up to `wait` for a run to
    /// become leasable: it looks again as soon as a run is queued or a slot frees in
    /// this process, and every [`LEASE_POLL`] for changes made elsewhere. `None` when
    /// nothing was leasable in time.
    pub async fn lease_wait(
        &self,
        executors: Option<&[ExecutorName]>,
        wait: Duration,
    ) -> Result<Option<Assignment>, ServiceError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.core.queue_version.subscribe();
        loop {
            changes.mark_unchanged();
            if let Some(assignment) = self.lease_next(executors).await? {
                return Ok(Some(assignment));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline || !self.core.is_leasing() {
                return Ok(None);
            }
            let pause = (deadline - now).min(LEASE_POLL);
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One attempt to lease one run; `None` when it was taken, cancelled or its
    /// workspace filled up meanwhile.
    async fn try_lease(
        &self,
        ws: &WorkspaceId,
        run_id: &RunId,
        executor: ExecutorDescriptor,
        limit: u32,
    ) -> Result<Option<Lease>, ServiceError> {
        let store = &self.core.store;
        let stored = match run_store::load(&self.core, ws, run_id).await? {
            // A stale entry (the run was cancelled between our read and its write).
            Some(stored) if stored.run.status == RunStatus::Queued => stored,
            _ => {
                transactions::dequeue(store, &executor.name, ws, run_id).await?;
                return Ok(None);
            }
        };
        let now = self.core.now();
        let lease_id = LeaseId::new(self.core.new_ulid());
        let deadline = now.plus_seconds(u64::from(stored.run.max_run_seconds));
        let mut run = stored.run.clone();
        run.apply(
            Transition::Start {
                lease_id: lease_id.clone(),
                deadline,
            },
            now,
        )
        .map_err(|e| ServiceError::Internal(e.into()))?;
        match transactions::lease(store, &stored, &run, limit, now).await {
            Ok(()) => {}
            Err(LeaseError::RunChanged | LeaseError::NotQueued | LeaseError::WorkspaceFull) => {
                return Ok(None);
            }
            Err(LeaseError::Store(error)) => return Err(error.into()),
        }
        tracing::info!(
            workspace_id = %ws, run_id = %run_id, executor = %executor.name,
            operation = "lease_run", "run leased"
        );
        Ok(Some(Lease {
            run,
            lease_id,
            executor,
        }))
    }

    /// The assignment of a run already leased (a worker started for a lease the
    /// dispatcher took fetches it here). `Conflict` when the lease is not current.
    pub async fn assignment(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
    ) -> Result<Assignment, ServiceError> {
        let stored = self.leased(run_id, lease_id).await?;
        check_fence(&stored.run, lease_id)?;
        let executor = self
            .registry
            .list()
            .await?
            .iter()
            .find(|e| e.name == stored.run.executor)
            .cloned()
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "executor {} is no longer registered",
                    stored.run.executor
                ))
            })?;
        self.assemble(Lease {
            run: stored.run,
            lease_id: lease_id.clone(),
            executor,
        })
        .await
    }

    /// What a worker started ahead of its run is handed with it: the run's
    /// [`assignment`](Self::assignment), and the TaskSpec's bytes when they are at most
    /// `max_spec_bytes` (`None` when larger: the worker downloads it).
    pub async fn handover(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        max_spec_bytes: u64,
    ) -> Result<(Assignment, Option<Bytes>), ServiceError> {
        let assignment = self.assignment(run_id, lease_id).await?;
        let key = BlobKey::parse(&assignment.task_spec_key)
            .map_err(|e| ServiceError::Internal(e.into()))?;
        let spec = self.core.read_blob_within(&key, max_spec_bytes).await?;
        Ok((assignment, spec))
    }

    /// The assignment of `lease`: the TaskSpec's and the archive's URLs presigned.
    async fn assemble(&self, lease: Lease) -> Result<Assignment, ServiceError> {
        let Lease {
            run,
            lease_id,
            executor,
        } = lease;
        let ws = &run.workspace_id;
        let blob = |text: &str| BlobKey::parse(text).map_err(|e| ServiceError::Internal(e.into()));
        let task = self
            .core
            .store
            .get::<Task>(&keys::task(ws, &run.task_id))
            .await?
            .ok_or_else(|| ServiceError::not_found("task", &run.task_id))?;
        let task_spec_key = task.spec_key_of(&run.run_id);
        let task_spec_url = self
            .core
            .blobs
            .presign_get(&blob(&task_spec_key)?, ASSIGNMENT_URL_TTL)
            .await?;
        let archive = match &task.spec.input.archive_id {
            None => None,
            Some(archive_id) => {
                let archive = self
                    .core
                    .store
                    .get::<Archive>(&keys::archive(ws, archive_id))
                    .await?
                    .ok_or_else(|| ServiceError::not_found("archive", archive_id))?;
                let url = self
                    .core
                    .blobs
                    .presign_get(&blob(&archive.key)?, ASSIGNMENT_URL_TTL)
                    .await?;
                Some(ArchiveDownload { archive, url })
            }
        };
        let deadline = run.deadline.unwrap_or_else(|| self.core.now());
        Ok(Assignment {
            run,
            lease_id,
            executor,
            task_spec_key,
            task_spec_url,
            archive,
            deadline,
        })
    }

    /// The run, if `lease_id` is its lease (whether or not it still runs); `NotFound`,
    /// or `Fenced` (`LeaseSuperseded`) otherwise.
    async fn leased(&self, run_id: &RunId, lease_id: &LeaseId) -> Result<StoredRun, ServiceError> {
        let ws = self.locate(run_id).await?;
        let stored = run_store::load(&self.core, &ws, run_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))?;
        check_lease(&stored.run, lease_id)?;
        Ok(stored)
    }

    async fn locate(&self, run_id: &RunId) -> Result<WorkspaceId, ServiceError> {
        self.core
            .locate(LookupOf::Run(run_id.clone()))
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))
    }

    /// Stores a batch of a worker's items (applying the log cap) and records the
    /// heartbeat. With `first_seq` (the worker's number of the first item), items the
    /// run already has are skipped, so a batch sent again is stored once.
    ///
    /// Errors: [`ServiceError::Fenced`] once the run has ended or another lease holds it
    /// (nothing is stored: a worker sends its last lines before it completes the run);
    /// `Invalid` (`firstSeq`) when the batch starts past the next number expected.
    pub async fn report(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        first_seq: Option<u64>,
        items: Vec<Reported>,
    ) -> Result<Report, ServiceError> {
        let ws = self.locate(run_id).await?;
        let max_log_bytes = self.core.guardrails.max_log_bytes;
        let mut stored_events = Vec::new();
        let mut remaining = items;
        let mut first_seq = first_seq;
        // Large batches are stored in several transactions, in order.
        loop {
            let rest = if remaining.len() > run_store::MAX_EVENTS_PER_WRITE {
                remaining.split_off(run_store::MAX_EVENTS_PER_WRITE)
            } else {
                Vec::new()
            };
            let chunk = std::mem::take(&mut remaining);
            let chunk_len = chunk.len() as u64;
            let transactions::Appended {
                run,
                last_seq,
                events,
            } = transactions::append_events(
                &self.core,
                &ws,
                run_id,
                lease_id,
                first_seq,
                chunk,
                max_log_bytes,
            )
            .await?;
            stored_events.extend(events);
            if rest.is_empty() {
                return Ok(Report {
                    status: run.status,
                    stop: run.status != RunStatus::Running,
                    deadline: run.deadline,
                    last_seq,
                    stored: stored_events,
                });
            }
            first_seq = first_seq.map(|first| first + chunk_len);
            remaining = rest;
        }
    }

    /// Registers a pending artifact of a running run and returns where to upload it
    /// (under `workspaces/{ws}/runs/{run}/artifacts/`, requirement 3.5).
    pub async fn create_artifact(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        new: NewArtifact,
    ) -> Result<ArtifactUpload, ServiceError> {
        let ws = self.locate(run_id).await?;
        let artifact_id = ArtifactId::new(self.core.new_ulid());
        let key = keys::blob::artifact(&ws, run_id, &artifact_id, &new.name);
        let blob_key =
            BlobKey::parse(&key).map_err(|e| ServiceError::invalid("name", e.to_string()))?;
        let artifact = Artifact {
            artifact_id: artifact_id.clone(),
            run_id: run_id.clone(),
            workspace_id: ws.clone(),
            artifact_type: new.artifact_type,
            name: new.name,
            size: new.size,
            content_type: new.content_type,
            sha256: new.sha256,
            status: ArtifactStatus::Pending,
            key,
            created_at: self.core.now(),
            error: None,
        };
        transactions::register_artifact(&self.core, lease_id, &artifact).await?;
        // Create-only, and (where the store checks it) for the declared bytes only.
        let upload = self
            .core
            .blobs
            .presign_put(&blob_key, ASSIGNMENT_URL_TTL, Some(&artifact.sha256))
            .await?;
        Ok(ArtifactUpload { artifact, upload })
    }

    /// Settles an artifact after its upload: `available` when the stored bytes have the
    /// declared size and SHA-256, `upload_failed` (with the reason) when the worker says
    /// every attempt failed, the bytes are missing, or their size or hash is not the
    /// declared one (requirement 13.3). The hash is the store's own
    /// ([`tlao_ports::BlobMeta::sha256`]: computed while writing, or checked on upload);
    /// when the store does not know it, the bytes are read back and hashed (at most the
    /// declared size is read). The blob cannot change afterwards: its upload URL was
    /// create-only and is refused once a blob is there, so what was verified is what is
    /// served.
    ///
    /// Fenced like every write: once the run has ended, nothing becomes available (the
    /// run's end settled what was pending). This is the fence of stores whose upload
    /// URLs cannot be revoked (S3): bytes put after the end are never an artifact.
    pub async fn finalize_artifact(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        artifact_id: &ArtifactId,
        worker_failure: Option<String>,
    ) -> Result<Artifact, ServiceError> {
        let stored = self.leased(run_id, lease_id).await?;
        check_fence(&stored.run, lease_id)?;
        let ws = stored.run.workspace_id.clone();
        let key = keys::artifact(&ws, artifact_id);
        let mut artifact = self
            .core
            .store
            .get::<Artifact>(&key)
            .await?
            .filter(|a| &a.run_id == run_id)
            .ok_or_else(|| ServiceError::not_found("artifact", artifact_id))?;
        if artifact.status != ArtifactStatus::Pending {
            return Ok(artifact);
        }
        let failure = match worker_failure {
            Some(reason) => Some(reason),
            None => {
                let blob =
                    BlobKey::parse(&artifact.key).map_err(|e| ServiceError::Internal(e.into()))?;
                match self.core.blobs.head(&blob).await {
                    Ok(meta) if meta.size == artifact.size => {
                        let stored = match meta.sha256 {
                            Some(sha256) => sha256,
                            None => {
                                stored_sha256(self.core.blobs.as_ref(), &blob, meta.size).await?
                            }
                        };
                        (stored != artifact.sha256).then(|| {
                            format!(
                                "the stored bytes have SHA-256 {stored}, {} was declared",
                                artifact.sha256
                            )
                        })
                    }
                    Ok(meta) => Some(format!(
                        "{} bytes were stored, {} were declared",
                        meta.size, artifact.size
                    )),
                    Err(BlobError::NotFound(_)) => Some("no bytes were uploaded".into()),
                    Err(other) => return Err(other.into()),
                }
            }
        };
        match &failure {
            None => artifact.mark_available(),
            Some(reason) => artifact.mark_upload_failed(reason.clone()),
        }
        .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        match transactions::settle_artifact(&self.core, &ws, run_id, lease_id, &artifact).await {
            Ok(()) => {}
            // A concurrent finalize of the same artifact settled it first: its outcome
            // stands (and was counted once), as for a finalize that comes late.
            // (A settled artifact never becomes pending again.)
            Err(SettleArtifactError::AlreadySettled) => {
                return self
                    .core
                    .store
                    .get::<Artifact>(&key)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("artifact", artifact_id));
            }
            Err(SettleArtifactError::Failed(error)) => return Err(error),
        }
        if let Some(reason) = &failure {
            tracing::warn!(
                workspace_id = %ws, run_id = %run_id, artifact_id = %artifact_id,
                operation = "finalize_artifact", reason = %reason, "artifact upload failed"
            );
        }
        Ok(artifact)
    }

    /// Ends a run as the worker saw it end. When the run already ended (cancelled, or
    /// failed by the reaper), that outcome stands and is returned to the run's own lease,
    /// and nothing is written: a run has one outcome, and a worker whose completion was
    /// applied but whose answer was lost asks again and learns it. Another lease is
    /// refused with [`ServiceError::Fenced`].
    pub async fn complete(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        completion: Completion,
        usage: Usage,
    ) -> Result<Run, ServiceError> {
        let ws = self.locate(run_id).await?;
        let transition = completion.transition();
        let result = transactions::finish_run(&self.core, &ws, run_id, transition, |run| {
            check_lease(run, lease_id)?;
            run.usage = usage.clone();
            Ok(())
        })
        .await;
        match result {
            Ok(run) => {
                tracing::info!(
                    workspace_id = %ws, run_id = %run_id, status = %run.status,
                    operation = "complete_run", "run finished"
                );
                Ok(run)
            }
            Err(ServiceError::Conflict(_)) => {
                let stored = self.leased(run_id, lease_id).await?;
                if stored.run.status.is_terminal() {
                    Ok(stored.run)
                } else {
                    Err(ServiceError::Conflict(format!(
                        "run {run_id} could not be completed"
                    )))
                }
            }
            Err(other) => Err(other),
        }
    }
}

/// The hex SHA-256 of the blob at `key`, read back whole: for stores that do not know
/// it. `size` is what `head` said; a blob that turns out longer is hashed no further
/// than one byte past it (its hash then matches nothing declared).
async fn stored_sha256(
    blobs: &dyn tlao_ports::BlobStore,
    key: &BlobKey,
    size: u64,
) -> Result<String, ServiceError> {
    use futures::StreamExt;
    use sha2::{Digest, Sha256};
    let (_, mut body) = blobs.get(key).await?;
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ServiceError::from(BlobError::Transient(e.into())))?;
        read += chunk.len() as u64;
        hasher.update(&chunk);
        if read > size {
            break;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

impl WorkerService {
    /// Whether a presigned upload to `key` may still be stored: when `key` is an
    /// artifact's, the artifact must be `pending` and its run `running` (under the lease
    /// the URL was handed to: a run has one lease). Other keys are not the worker
    /// protocol's and pass. Checked by the store's presigned gateway (local files) when
    /// the upload arrives; a store that serves its own URLs (S3) cannot ask, and
    /// finalization is its fence.
    ///
    /// Errors: [`ServiceError::Fenced`] when the run has ended; `Conflict` when the
    /// artifact is no longer pending (its bytes are settled); `NotFound` when there is
    /// no such artifact.
    pub async fn check_upload(&self, key: &str) -> Result<(), ServiceError> {
        let Some((ws, run_id, artifact_id)) = keys::blob::parse_artifact(key) else {
            return Ok(());
        };
        let artifact = self
            .core
            .store
            .get::<Artifact>(&keys::artifact(&ws, &artifact_id))
            .await?
            .filter(|a| a.run_id == run_id && a.key == key)
            .ok_or_else(|| ServiceError::not_found("artifact", &artifact_id))?;
        let stored = run_store::load(&self.core, &ws, &run_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("run", &run_id))?;
        if stored.run.status != RunStatus::Running {
            return Err(ServiceError::Fenced {
                run_id,
                fenced: tlao_domain::Fenced::RunEnded(stored.run.status),
            });
        }
        if artifact.status != ArtifactStatus::Pending {
            return Err(ServiceError::Conflict(format!(
                "artifact {artifact_id} is {}; its bytes can no longer be uploaded",
                artifact.status.as_str()
            )));
        }
        Ok(())
    }

    /// Ends a run with `completion` only if it is still running under `lease_id`;
    /// `Ok(None)` when it already ended (the worker completed it). Used when a worker
    /// process is seen to exit.
    pub async fn complete_if_running(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
        completion: Completion,
        usage: Usage,
    ) -> Result<Option<Run>, ServiceError> {
        let stored = self.leased(run_id, lease_id).await?;
        if stored.run.status != RunStatus::Running {
            return Ok(None);
        }
        let ws = stored.run.workspace_id.clone();
        let transition = completion.transition();
        match transactions::finish_run(&self.core, &ws, run_id, transition, |run| {
            check_lease(run, lease_id)?;
            if run.status != RunStatus::Running {
                return Err(ServiceError::Conflict("already ended".into()));
            }
            run.usage = usage.clone();
            Ok(())
        })
        .await
        {
            Ok(run) => Ok(Some(run)),
            Err(ServiceError::Conflict(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
