//! The run loop: lease a run, prepare its workspace, execute it under its deadline and
//! stop signals, upload its artifacts, and complete it.
//!
//! 1. The TaskSpec is downloaded by its presigned URL and parsed; the workspace archive
//!    (if any) is downloaded (size and SHA-256 checked) and extracted safely twice:
//!    `base/` (pristine) and `work/` (the executor's working directory).
//! 2. The executor runs in `work/` and writes results to `out/`. Its events stream to
//!    the API through an [`EventShipper`] (numbered batches, resends, heartbeats). It is
//!    stopped — its future dropped, which kills its process group — at the deadline
//!    (`timed_out`), when the API says the run was cancelled (`cancelled`) or ended
//!    elsewhere (the worker just stops), when the lease is lost (the worker stops
//!    quietly), or when the API has not answered for longer than the heartbeat timeout
//!    it announced: the server has failed the run by then, so the worker stops the agent
//!    and ends without writing anything more ([`RunSummary::out_of_contact`]).
//! 3. The files in `out/`, `changes.patch` (`base/` against `work/`) and
//!    `transcript.txt` are uploaded; an artifact whose upload failed for good fails
//!    the run with `upload_failed`.
//! 4. Every event is flushed, the run directory is removed, and the run is completed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tlao_domain::{
    ArtifactName, ArtifactType, ExecutionContext, ExecutionStatus, ExecutorDescriptor, LeaseId,
    ProducedArtifact, RunError, RunErrorCode, RunId, RunStatus, TaskSpec, Timestamp, Usage,
};
use tlao_sdk::wire::ArtifactView;
use tlao_sdk::worker::{
    ArchiveDownload, Assignment, CompleteRequest, CompletionStatus, Handover, LeaseRequest,
    MAX_LEASE_WAIT_SECONDS, MIN_HEARTBEAT_INTERVAL, SignedUrl,
};
use tlao_sdk::{WorkerClient, WorkerClientError};
use tokio::io::AsyncWriteExt;

use crate::availability;
use crate::config::WorkerConfig;
use crate::confine::{Confinement, describe};
use crate::events::{ChannelSink, Control, EventShipper, ShipperConfig, stopped};
use crate::executors::executor_for;
use crate::extract::{ExtractLimits, extract_archive_file};
use crate::outputs::collect_outputs;
use crate::patch::write_patch;
use crate::run_dir::RunDir;
use crate::upload::{UploadError, upload_artifact};

/// The longest a TaskSpec document may be.
const MAX_SPEC_BYTES: usize = 1024 * 1024;
/// How long `run_forever` long-polls for a run.
const LONG_POLL: Duration = Duration::from_secs(20);
/// How long `run_once` pauses before asking again after an API answered a lease
/// request with nothing well before the wait it asked for.
const EARLY_ANSWER_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause of `run_forever` after failures.
const MAX_IDLE_BACKOFF: Duration = Duration::from_secs(30);

/// How a run ended, as this worker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The run.
    pub run_id: RunId,
    /// Its status as the API recorded it; `None` when the lease was lost and the worker
    /// stopped without learning the outcome.
    pub status: Option<RunStatus>,
    /// Why it failed, when it did.
    pub error: Option<RunError>,
    /// What it cost, when the executor reported it.
    pub usage: Usage,
    /// The artifacts stored.
    pub artifacts: Vec<ArtifactView>,
    /// Whether the worker gave up on the run because the API did not answer for longer
    /// than its heartbeat timeout (it stopped the agent and wrote nothing more).
    pub out_of_contact: bool,
}

impl RunSummary {
    /// A run this worker left without learning its outcome.
    fn left(run_id: RunId, status: Option<RunStatus>, out_of_contact: bool) -> RunSummary {
        RunSummary {
            run_id,
            status,
            error: None,
            usage: Usage::Unmeasured,
            artifacts: Vec::new(),
            out_of_contact,
        }
    }
}

/// Leases one run (waiting up to `wait` for one), executes it and reports it; `None`
/// when there was nothing to do. A wait longer than one long-poll of the API
/// ([`MAX_LEASE_WAIT_SECONDS`]) is several long-polls, one after the other, until a run
/// is leased or the wait is over: `worker --once --wait 300` waits five minutes.
pub async fn run_once(config: &WorkerConfig, wait: Duration) -> anyhow::Result<Option<RunSummary>> {
    let client = client_for(config)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let started = tokio::time::Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        if let Some(summary) = lease_and_run(&client, config, remaining).await? {
            return Ok(Some(summary));
        }
        let now = tokio::time::Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left < Duration::from_secs(1) {
            return Ok(None);
        }
        // An API that answers "nothing" long before the wait it was asked for (it is
        // stopping, or an older one that does not wait) is asked again after a pause,
        // not in a busy loop.
        let asked = remaining.min(Duration::from_secs(u64::from(MAX_LEASE_WAIT_SECONDS)));
        if now.duration_since(started) + Duration::from_secs(1) < asked {
            tokio::time::sleep(EARLY_ANSWER_PAUSE.min(left)).await;
        }
    }
}

/// Executes a run already leased for this worker (by the local dispatcher).
pub async fn run_assigned(
    config: &WorkerConfig,
    run_id: RunId,
    lease_id: LeaseId,
) -> anyhow::Result<RunSummary> {
    let client = client_for(config)?;
    let assignment = match client.assignment(&run_id, &lease_id).await {
        Ok(assignment) => assignment,
        Err(error) if error.is_lease_lost() => {
            tracing::info!(
                run_id = %run_id, operation = "assignment", %error,
                "the lease is gone; nothing to do"
            );
            return Ok(RunSummary::left(run_id, None, false));
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot fetch the assignment of run {run_id}"));
        }
    };
    execute(&client, config, assignment, None).await
}

/// Executes a run handed over without HTTP ([`Handover`]: a standby worker's pipe): its
/// assignment as given, and its TaskSpec when the handover carries one (downloaded
/// otherwise). Everything after — events, artifacts, completion — goes to the API as
/// for any run.
pub async fn run_handed(config: &WorkerConfig, handover: Handover) -> anyhow::Result<RunSummary> {
    let client = client_for(config)?;
    execute(&client, config, handover.assignment, handover.task_spec).await
}

/// Leases and executes runs one after the other, for ever. Returns the summary of a run
/// it gave up on because the API did not answer for longer than its heartbeat timeout
/// ([`RunSummary::out_of_contact`]), and an error when the API refuses the worker's
/// token (401, 403); other failures are retried with backoff.
pub async fn run_forever(config: &WorkerConfig) -> anyhow::Result<RunSummary> {
    let client = client_for(config)?;
    let mut failures: u32 = 0;
    loop {
        match lease_and_run(&client, config, LONG_POLL).await {
            Ok(Some(summary)) if summary.out_of_contact => return Ok(summary),
            Ok(_) => failures = 0,
            Err(error) => {
                let refused = error
                    .downcast_ref::<WorkerClientError>()
                    .and_then(WorkerClientError::status)
                    .is_some_and(|status| status == 401 || status == 403);
                if refused {
                    return Err(error);
                }
                failures = failures.saturating_add(1);
                let delay = Duration::from_secs(1u64 << failures.min(5)).min(MAX_IDLE_BACKOFF);
                tracing::warn!(
                    operation = "lease", error = %format!("{error:#}"), ?delay,
                    "worker loop failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What every entry point does first: the probe cache in the work root, and the API
/// client.
fn client_for(config: &WorkerConfig) -> anyhow::Result<WorkerClient> {
    crate::probe_cache::use_dir(&config.work_root);
    WorkerClient::new(&config.api_url, &config.token).context("cannot create the API client")
}

async fn lease_and_run(
    client: &WorkerClient,
    config: &WorkerConfig,
    wait: Duration,
) -> anyhow::Result<Option<RunSummary>> {
    let known = availability::remembered();
    let request = LeaseRequest {
        executors: config.executors.clone(),
        // To the nearest second: a wait of 2.999 s asks for 3.
        wait_seconds: u32::try_from((wait.as_millis() + 500) / 1000)
            .unwrap_or(MAX_LEASE_WAIT_SECONDS)
            .min(MAX_LEASE_WAIT_SECONDS),
        availability: if known.is_empty() {
            None
        } else {
            Some(availability::probe(&config.worker_id, &known).await)
        },
    };
    let assignment = client.lease(&request).await.context("cannot lease a run")?;
    match assignment {
        None => Ok(None),
        Some(assignment) => execute(client, config, assignment, None).await.map(Some),
    }
}

/// How the worker's part of a run ended.
// One value per run, moved a few times on its way out: boxing the large variant (a
// reported usage) buys nothing.
#[allow(clippy::large_enum_variant)]
enum Ending {
    /// Complete the run with this outcome.
    Complete {
        status: CompletionStatus,
        error: Option<RunError>,
        usage: Usage,
        artifacts: Vec<ArtifactView>,
    },
    /// Stop without completing: the run ended elsewhere (`Some`), the lease is gone, or
    /// the API was out of contact for too long.
    Abandon {
        status: Option<RunStatus>,
        out_of_contact: bool,
    },
}

impl Ending {
    fn failed(code: RunErrorCode, message: String) -> Ending {
        Ending::Complete {
            status: CompletionStatus::Failed,
            error: Some(RunError {
                code,
                message,
                exit_code: None,
            }),
            usage: Usage::Unmeasured,
            artifacts: Vec::new(),
        }
    }

    fn stopped(control: Control) -> Ending {
        match control {
            Control::Stop(RunStatus::Cancelled) => Ending::Complete {
                status: CompletionStatus::Cancelled,
                error: None,
                usage: Usage::Unmeasured,
                artifacts: Vec::new(),
            },
            Control::Stop(status) => Ending::Abandon {
                status: Some(status),
                out_of_contact: false,
            },
            Control::LeaseLost | Control::Running => Ending::Abandon {
                status: None,
                out_of_contact: false,
            },
            Control::OutOfContact => Ending::Abandon {
                status: None,
                out_of_contact: true,
            },
        }
    }
}

/// How often to heartbeat for `assignment`: the worker's own interval, or the server's
/// when it asks for more often (never below [`MIN_HEARTBEAT_INTERVAL`]).
fn heartbeat_interval(config: &WorkerConfig, assignment: &Assignment) -> Duration {
    match assignment.heartbeat_interval_ms {
        Some(ms) => Duration::from_millis(ms)
            .max(MIN_HEARTBEAT_INTERVAL)
            .min(config.heartbeat_interval),
        None => config.heartbeat_interval,
    }
}

/// How long the API may go unanswered before the worker gives up on `assignment`: the
/// heartbeat timeout it announced, or three of its heartbeat intervals (servers that
/// announce only those); `None` (never) when it announced neither.
fn contact_timeout(assignment: &Assignment) -> Option<Duration> {
    match (
        assignment.heartbeat_timeout_ms,
        assignment.heartbeat_interval_ms,
    ) {
        (Some(ms), _) => Some(Duration::from_millis(ms)),
        (None, Some(ms)) => Some(Duration::from_millis(ms) * 3),
        (None, None) => None,
    }
}

/// Executes an assignment from start to completion.
async fn execute(
    client: &WorkerClient,
    config: &WorkerConfig,
    assignment: Assignment,
    task_spec: Option<serde_json::Value>,
) -> anyhow::Result<RunSummary> {
    let run_id = assignment.run.run_id.clone();
    let workspace_id = assignment.run.workspace_id.clone();
    let lease_id = assignment.lease_id.clone();
    tracing::info!(
        workspace_id = %workspace_id, run_id = %run_id, operation = "run",
        executor = %assignment.executor.name, "run started"
    );
    // What this worker can run, reported with the run's heartbeats (requirement 2.2).
    let report = match assignment.executor.descriptor() {
        Ok(descriptor) => {
            availability::remember(&descriptor);
            Some(availability::probe(&config.worker_id, &availability::remembered()).await)
        }
        Err(_) => None,
    };
    let shipper = EventShipper::start_reporting(
        client.clone(),
        workspace_id.clone(),
        run_id.clone(),
        lease_id.clone(),
        ShipperConfig {
            contact_timeout: contact_timeout(&assignment),
            numbered: assignment.numbered_events,
            max_events: config.max_buffered_events,
            max_bytes: config.max_buffered_bytes,
            ..ShipperConfig::new(
                config.batch_interval,
                heartbeat_interval(config, &assignment),
            )
        },
        report,
    );
    tracing::debug!("executor probed; creating the run directory");
    let ending = match RunDir::create(&config.work_root, &workspace_id, &run_id, &lease_id) {
        Ok(dir) => {
            tracing::debug!("run directory created");
            let ending = drive(client, config, &assignment, task_spec, &dir, &shipper).await;
            // Removing a large tree (an agent's `node_modules`) takes a while: on a
            // blocking thread, so that this worker's one runtime thread keeps sending
            // its reports and heartbeats meanwhile.
            let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
            ending
        }
        Err(error) => {
            // The path is for the worker's log; the run's error does not show it.
            tracing::error!(work_root = %config.work_root.display(), %error, "cannot create a run directory");
            Ending::failed(
                RunErrorCode::Internal,
                format!("the worker cannot create the run's directory: {error}"),
            )
        }
    };
    let control = shipper.finish().await;
    let (status, error, usage, artifacts) = match ending {
        Ending::Abandon {
            status,
            out_of_contact,
        } => {
            let out_of_contact = out_of_contact || control == Control::OutOfContact;
            tracing::info!(
                workspace_id = %workspace_id, run_id = %run_id, operation = "run",
                status = ?status, out_of_contact, "run left without completing it"
            );
            return Ok(RunSummary::left(run_id, status, out_of_contact));
        }
        Ending::Complete { .. }
            if matches!(control, Control::LeaseLost | Control::OutOfContact) =>
        {
            tracing::info!(
                workspace_id = %workspace_id, run_id = %run_id, operation = "run",
                ?control, "the run is no longer this worker's to write; not completed"
            );
            return Ok(RunSummary::left(
                run_id,
                None,
                control == Control::OutOfContact,
            ));
        }
        Ending::Complete {
            status,
            error,
            usage,
            artifacts,
        } => (status, error, usage, artifacts),
    };
    let request = CompleteRequest {
        lease_id,
        status,
        error: error.clone().map(Into::into),
        usage: usage.clone().into(),
    };
    let summary = match client.complete(&run_id, &request).await {
        Ok(run) => RunSummary {
            run_id,
            status: Some(run.status.into()),
            error: run.error.map(Into::into),
            usage: run.usage.into(),
            artifacts,
            out_of_contact: false,
        },
        Err(e) if e.is_lease_lost() => RunSummary {
            artifacts,
            ..RunSummary::left(run_id, None, false)
        },
        Err(WorkerClientError::Protocol { message, .. }) => {
            // The completion was accepted; only its answer was not understood.
            tracing::warn!(
                workspace_id = %workspace_id, run_id = %run_id, operation = "complete",
                %message, "unexpected answer to complete"
            );
            RunSummary {
                run_id,
                status: Some(run_status(status)),
                error,
                usage,
                artifacts,
                out_of_contact: false,
            }
        }
        Err(e) => return Err(e).with_context(|| format!("cannot complete run {run_id}")),
    };
    tracing::info!(
        workspace_id = %workspace_id, run_id = %summary.run_id, operation = "complete",
        status = ?summary.status, "run finished"
    );
    Ok(summary)
}

fn run_status(status: CompletionStatus) -> RunStatus {
    match status {
        CompletionStatus::Completed => RunStatus::Completed,
        CompletionStatus::Failed => RunStatus::Failed,
        CompletionStatus::TimedOut => RunStatus::TimedOut,
        CompletionStatus::Cancelled => RunStatus::Cancelled,
    }
}

/// What stopped the executor.
#[allow(clippy::large_enum_variant)] // One per run, like `Ending`.
enum Executed {
    Outcome(tlao_domain::ExecutionOutcome),
    TimedOut,
    Stopped(Control),
}

/// Prepares the workspace, runs the executor and uploads the artifacts.
async fn drive(
    client: &WorkerClient,
    config: &WorkerConfig,
    assignment: &Assignment,
    task_spec: Option<serde_json::Value>,
    dir: &RunDir,
    shipper: &EventShipper,
) -> Ending {
    let sink = shipper.sink();
    let run = &assignment.run;
    let picked_up = format!(
        "worker picked up run {} ({}) with executor {} ({})",
        run.run_id, run.task_type, assignment.executor.name, assignment.executor.kind
    );
    // Whether (and how) the agent will be sandboxed, said with the first line so both
    // leave in the run's first report, long before the agent starts: a report still
    // to send when it does would take the CPU its start needs (measured: 0.8 ms of a
    // 3.5 ms start on 2 cores).
    match describe(config.sandbox, tlao_sandbox::support()) {
        Ok(sandbox) => sink.system_lines([picked_up, sandbox]),
        Err(message) => {
            sink.system_lines([picked_up, message.clone()]);
            return Ending::failed(RunErrorCode::ExecutorUnavailable, message);
        }
    }
    let descriptor = match assignment.executor.descriptor() {
        Ok(descriptor) => descriptor,
        Err(errors) => {
            let message = format!(
                "the executor record {} is not valid: {errors}",
                assignment.executor.name
            );
            sink.system(message.clone());
            return Ending::failed(RunErrorCode::ExecutorUnavailable, message);
        }
    };
    let spec = match task_spec {
        Some(value) => {
            TaskSpec::parse(&value).map_err(|e| format!("it is not a valid TaskSpec: {e}"))
        }
        None => fetch_spec(client, &assignment.task_spec_url).await,
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(message) => {
            let message = format!(
                "cannot read the TaskSpec {}: {message}",
                assignment.task_spec_key
            );
            sink.system(message.clone());
            return Ending::failed(RunErrorCode::Internal, message);
        }
    };
    if let Some(archive) = &assignment.archive {
        let limits = ExtractLimits {
            max_bytes: config.max_extracted_bytes,
            max_entries: config.max_entries,
        };
        if let Err(message) = prepare_workspace(client, archive, dir, limits, sink).await {
            sink.system(message.clone());
            return Ending::failed(RunErrorCode::InvalidArchive, message);
        }
    }
    if shipper.current() != Control::Running {
        return Ending::stopped(shipper.current());
    }
    let deadline = instant_of(assignment.deadline);
    if deadline <= tokio::time::Instant::now() {
        sink.system("the run's deadline passed before its executor could start");
        return Ending::Complete {
            status: CompletionStatus::TimedOut,
            error: None,
            usage: Usage::Unmeasured,
            artifacts: Vec::new(),
        };
    }

    let confinement = match confine(config, &descriptor, dir, sink) {
        Ok(confinement) => confinement,
        Err(ending) => return ending,
    };
    tracing::debug!("agent confinement ready");
    let executor = executor_for(&descriptor, Some(confinement));
    let (workdir, outdir) = (dir.work(), dir.out());
    let context = ExecutionContext {
        run_id: &run.run_id,
        workspace_id: &run.workspace_id,
        workdir: &workdir,
        outdir: &outdir,
        deadline: assignment.deadline,
        events: sink,
    };
    let mut control = shipper.control();
    let executed = tokio::select! {
        outcome = executor.execute(&spec, context) => Executed::Outcome(outcome),
        () = tokio::time::sleep_until(deadline) => Executed::TimedOut,
        signal = stopped(&mut control) => Executed::Stopped(signal),
    };
    // The execution future is gone here: its process group has been killed.
    // Whatever ended it, a run this worker may no longer write ends here: no artifact
    // is uploaded under a lease the API refuses or after it was out of contact.
    if !matches!(executed, Executed::Stopped(_)) {
        let control = shipper.current();
        if control != Control::Running {
            sink.system("the run is no longer this worker's to write; its processes were killed");
            return Ending::stopped(control);
        }
    }

    // The agent is done: what is left (the patch, the uploads) reports in one batch
    // with the finish, not one batch a line.
    sink.linger(config.wind_down_linger);
    let (status, mut error, usage, produced, transcript) = match executed {
        Executed::Stopped(signal) => {
            sink.system("the run was stopped by the API; its processes were killed");
            return Ending::stopped(signal);
        }
        Executed::TimedOut => {
            sink.system(format!(
                "the run reached its deadline ({}); its processes were killed",
                assignment.deadline
            ));
            let produced = collect_outputs(&outdir).unwrap_or_default();
            (
                CompletionStatus::TimedOut,
                None,
                Usage::Unmeasured,
                produced,
                sink.transcript(),
            )
        }
        Executed::Outcome(outcome) => {
            let (status, error) = match outcome.status {
                ExecutionStatus::Completed => (CompletionStatus::Completed, None),
                ExecutionStatus::Failed(error) => (CompletionStatus::Failed, Some(error)),
            };
            sink.system(match &error {
                None => "the executor finished".to_owned(),
                Some(error) => format!("the executor failed: {}", first_line(&error.message)),
            });
            (
                status,
                error,
                outcome.usage,
                outcome.artifacts,
                outcome.logs,
            )
        }
    };

    let produced = with_worker_artifacts(produced, transcript, dir, sink).await;
    let mut artifacts = Vec::with_capacity(produced.len());
    let mut failures = Vec::new();
    for item in &produced {
        let control = shipper.current();
        if control != Control::Running {
            return Ending::stopped(control);
        }
        match upload_artifact(
            client,
            &run.workspace_id,
            &run.run_id,
            &assignment.lease_id,
            item,
        )
        .await
        {
            Ok(artifact) => {
                sink.system(format!(
                    "stored artifact {} ({}, {} bytes)",
                    artifact.name.as_str(),
                    artifact.artifact_type,
                    artifact.size
                ));
                artifacts.push(artifact);
            }
            Err(UploadError::LeaseLost) => {
                return Ending::stopped(match shipper.current() {
                    Control::Running => Control::LeaseLost,
                    control => control,
                });
            }
            Err(UploadError::Failed(message)) => {
                sink.system(message.clone());
                failures.push(message);
            }
        }
    }
    let mut status = status;
    if !failures.is_empty() && status == CompletionStatus::Completed {
        status = CompletionStatus::Failed;
        error = Some(RunError {
            code: RunErrorCode::UploadFailed,
            message: failures.join("; "),
            exit_code: None,
        });
    }
    Ending::Complete {
        status,
        error,
        usage,
        artifacts,
    }
}

/// Adds `changes.patch` (when the workspace changed) and `transcript.txt` (when there
/// was output) to the executor's artifacts.
async fn with_worker_artifacts(
    mut produced: Vec<ProducedArtifact>,
    transcript: String,
    dir: &RunDir,
    sink: &ChannelSink,
) -> Vec<ProducedArtifact> {
    let (base, work) = (dir.base(), dir.work());
    let patch_path = dir.root().join("changes.patch");
    let target = patch_path.clone();
    match tokio::task::spawn_blocking(move || write_patch(&base, &work, &target)).await {
        Ok(Ok(true)) => {
            if let Some(name) = artifact_name("changes.patch") {
                produced.push(ProducedArtifact {
                    path: patch_path,
                    name,
                    artifact_type: ArtifactType::Patch,
                    content_type: "text/x-diff; charset=utf-8".to_owned(),
                });
            }
        }
        Ok(Ok(false)) => sink.system("the workspace is unchanged; there is no changes.patch"),
        Ok(Err(error)) => sink.system(format!("cannot compute changes.patch: {error}")),
        Err(error) => sink.system(format!("cannot compute changes.patch: {error}")),
    }
    if !transcript.is_empty() {
        let path = dir.root().join("transcript.txt");
        match tokio::fs::write(&path, transcript).await {
            Ok(()) => {
                if let Some(name) = artifact_name("transcript.txt") {
                    produced.push(ProducedArtifact {
                        path,
                        name,
                        artifact_type: ArtifactType::Transcript,
                        content_type: "text/plain; charset=utf-8".to_owned(),
                    });
                }
            }
            Err(error) => sink.system(format!("cannot write transcript.txt: {error}")),
        }
    }
    produced
}

fn artifact_name(name: &str) -> Option<ArtifactName> {
    ArtifactName::try_from(name.to_owned()).ok()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Downloads and parses the TaskSpec.
async fn fetch_spec(client: &WorkerClient, url: &SignedUrl) -> Result<TaskSpec, String> {
    let mut stream = client.download(url).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if bytes.len() + chunk.len() > MAX_SPEC_BYTES {
            return Err(format!("it is larger than {MAX_SPEC_BYTES} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    TaskSpec::parse(&value).map_err(|e| format!("it is not a valid TaskSpec: {e}"))
}

/// Downloads the archive, checks it, and extracts it into `base/` and `work/`.
async fn prepare_workspace(
    client: &WorkerClient,
    download: &ArchiveDownload,
    dir: &RunDir,
    limits: ExtractLimits,
    sink: &ChannelSink,
) -> Result<(), String> {
    let archive = &download.archive;
    sink.system(format!(
        "downloading the workspace archive {} ({} bytes)",
        archive.archive_id, archive.size
    ));
    let path = dir.archive();
    download_checked(client, &download.url, &path, archive.size, &archive.sha256)
        .await
        .map_err(|e| format!("the workspace archive could not be downloaded: {e}"))?;
    let (base, work, source) = (dir.base(), dir.work(), path.clone());
    let extracted = tokio::task::spawn_blocking(move || {
        extract_archive_file(&source, &base, &limits)?;
        extract_archive_file(&source, &work, &limits)
    })
    .await
    .map_err(|e| format!("the workspace archive could not be extracted: {e}"))?
    .map_err(|e| format!("the workspace archive was refused: {e}"))?;
    let _ = tokio::fs::remove_file(&path).await;
    sink.system(format!(
        "workspace extracted: {} files, {} directories, {} links, {} bytes",
        extracted.files, extracted.directories, extracted.links, extracted.bytes
    ));
    Ok(())
}

/// Downloads `url` to `path`, refusing more than `size` bytes, and checks the size and
/// SHA-256 against the archive record.
async fn download_checked(
    client: &WorkerClient,
    url: &SignedUrl,
    path: &std::path::Path,
    size: u64,
    sha256: &str,
) -> Result<(), String> {
    let mut stream = client.download(url).await.map_err(|e| e.to_string())?;
    // Named relative to the run's directory: the worker's own paths stay out of errors.
    let shown = path.file_name().unwrap_or_default().to_string_lossy();
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        received += chunk.len() as u64;
        if received > size {
            return Err(format!(
                "it is larger than the {size} bytes its record says"
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write {shown}: {e}"))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    if received != size {
        return Err(format!("{received} bytes arrived; its record says {size}"));
    }
    let actual = hex::encode(hasher.finalize());
    if !sha256.is_empty() && !actual.eq_ignore_ascii_case(sha256) {
        return Err(format!("its SHA-256 is {actual}; its record says {sha256}"));
    }
    Ok(())
}

/// The monotonic instant of a wall-clock deadline.
fn instant_of(deadline: Timestamp) -> tokio::time::Instant {
    let now_millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let left = deadline.unix_millis().saturating_sub(now_millis).max(0);
    tokio::time::Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

/// The confinement of the run's agent: the worker's sandbox mode and grants, and what
/// the executor's record grants (paths under `~/` resolved against the worker's HOME).
/// Says in the run's log which grants were dropped because they would open the
/// worker's or the server's own directories (whether the agent is sandboxed was said
/// when the run was picked up).
#[allow(clippy::result_large_err)] // The error is the run's one `Ending`.
fn confine(
    config: &WorkerConfig,
    descriptor: &ExecutorDescriptor,
    dir: &RunDir,
    sink: &ChannelSink,
) -> Result<Arc<Confinement>, Ending> {
    let mut hidden = vec![config.work_root.clone()];
    hidden.extend(config.protected.iter().cloned());
    let real_home = crate::confine::real_home();
    let grants = config
        .grants
        .with_record(&descriptor.sandbox, real_home.as_deref());
    let (confinement, dropped) =
        Confinement::for_run(config.sandbox, grants, dir, hidden, real_home.as_deref()).map_err(
            |error| {
                let message = format!("cannot prepare the agent's home directory: {error}");
                sink.system(message.clone());
                Ending::failed(RunErrorCode::Internal, message)
            },
        )?;
    for path in dropped {
        sink.system(format!(
            "not granted to the agent: {} would open the worker's or the server's own files",
            path.display()
        ));
    }
    Ok(Arc::new(confinement))
}
