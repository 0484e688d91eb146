//! A fake control plane speaking the worker protocol, for run-loop tests that do not
//! need the real server: it serves one assignment, the TaskSpec and archive blobs,
//! records every event batch (with its arrival time), artifact, upload and completion,
//! and can be told to cancel the run, lose the lease, or fail uploads.
//!
//! Like the real server it applies numbered batches once (`firstSeq`, skipping what it
//! has), fences an ended run (`409 lease-revoked` with its status), and takes `dropped`
//! events. And it fails on demand: it refuses connections for a while
//! ([`FakeApi::refuse_connections_for`]: the listener is closed, then bound again on the
//! same port), answers the next N batches with 503 ([`State::fail_batches`]), or applies
//! the next N batches and then answers 500, as if the answer were lost
//! ([`State::lose_answers`]).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;
use tlao_domain::{
    Artifact, ArtifactId, ArtifactStatus, EventPayload, ExecutorConfig, ExecutorDescriptor,
    LeaseId, Reported, Run, RunId, RunStatus, TaskId, TaskType, Timestamp, Ulid, Usage, UserId,
    WorkspaceId,
};
use tlao_sdk::wire::{ArtifactView, ExecutorView, RunView};
use tlao_sdk::worker::{
    ArtifactRequest, ArtifactUploadSlot, Assignment, CompleteRequest, CompletionStatus, EventBatch,
    EventReport, FinalizeRequest, SignedUrl, WorkerEvent,
};

/// The worker token the fake accepts.
pub const TOKEN: &str = "worker-test-token";

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the fake has seen and how it behaves.
#[derive(Default)]
pub struct State {
    pub assignment: Option<Assignment>,
    pub leased: bool,
    pub status: Option<RunStatus>,
    pub spec: Vec<u8>,
    pub archive: Vec<u8>,
    /// Event batches with their arrival time (epoch millis).
    pub batches: Vec<(i64, Vec<EventPayload>)>,
    pub artifacts: Vec<Artifact>,
    pub uploads: BTreeMap<String, Vec<u8>>,
    pub upload_headers: Vec<Option<String>>,
    pub upload_attempts: u32,
    pub finalized: Vec<(String, FinalizeRequest)>,
    pub completed: Vec<CompleteRequest>,
    /// The body of every lease request.
    pub lease_requests: Vec<tlao_sdk::worker::LeaseRequest>,
    /// Answer this many more lease requests at once with no run (204), as a long-poll
    /// that found nothing would.
    pub empty_leases: u32,
    /// The availability reports that came with event batches.
    pub availability: Vec<tlao_sdk::worker::AvailabilityReport>,
    pub bad_auth: u32,
    /// Answer event batches with 409.
    pub lose_lease: bool,
    /// Answer uploads with 500.
    pub fail_uploads: bool,
    /// Store this many more uploads, then answer 500 (the answer is "lost").
    pub lose_upload_answers: u32,
    /// The `If-None-Match` header of every upload (the URL's signed header).
    pub upload_conditions: Vec<Option<String>>,
    /// Answer this many more event batches with 503, storing nothing.
    pub fail_batches: u32,
    /// Apply this many more event batches, then answer 500 (the answer is "lost").
    pub lose_answers: u32,
    /// The last worker event number applied.
    pub worker_seq: u64,
    /// Every event applied, with its worker number, in order (`dropped` included).
    pub applied: Vec<(u64, WorkerEvent)>,
    /// How many event requests arrived (heartbeats, resends and failures included).
    pub requests: u32,
    /// The `firstSeq` of every batch that arrived.
    pub first_seqs: Vec<Option<u64>>,
}

/// The fake API and its address.
pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    pub run_id: RunId,
    pub lease_id: LeaseId,
    addr: std::net::SocketAddr,
    handle: Mutex<Option<actix_web::dev::ServerHandle>>,
}

impl FakeApi {
    /// Starts the fake with a run of `task_type`, executed by `executor`, whose
    /// deadline is `deadline_in_ms` from now, and the given spec and archive.
    pub fn start(
        task_type: TaskType,
        executor: ExecutorConfig,
        prompt: &str,
        archive: Option<Vec<u8>>,
        deadline_in_ms: i64,
    ) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let run_id = RunId::new(Ulid::from_parts(now_millis() as u64, 7));
        let lease_id = LeaseId::new(Ulid::from_parts(now_millis() as u64, 8));
        let workspace_id = WorkspaceId::new(Ulid::from_parts(1_700_000_000_000, 3));
        let now = Timestamp::from_unix_millis(now_millis());
        let deadline = now.plus_millis(deadline_in_ms);
        let run = Run {
            run_id: run_id.clone(),
            task_id: TaskId::new(Ulid::from_parts(1_700_000_000_000, 4)),
            workspace_id: workspace_id.clone(),
            task_type,
            executor: "test-executor".parse().unwrap(),
            selection: None,
            status: RunStatus::Running,
            created_by: UserId::new(Ulid::from_parts(1_700_000_000_000, 5)),
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            max_run_seconds: 480,
            deadline: Some(deadline),
            lease_id: Some(lease_id.clone()),
            heartbeat_at: Some(now),
            error: None,
            usage: Usage::Unmeasured,
            artifact_ids: Vec::new(),
            log_bytes: 0,
            dropped_log_bytes: 0,
            logs_truncated: false,
            worker_seq: 0,
            worker_dropped_lines: 0,
            worker_dropped_bytes: 0,
        };
        let expires = now.plus_seconds(3600);
        let signed = |path: &str| SignedUrl {
            url: format!("{url}{path}?expires=1&signature=secret"),
            method: "GET".into(),
            expires_at: expires,
            headers: Default::default(),
        };
        let archive_download = archive.as_ref().map(|bytes| {
            let archive: tlao_domain::Archive = serde_json::from_value(json!({
                "archiveId": "arc_01ARZ3NDEKTSV4RRFFQ69G5FAV",
                "workspaceId": workspace_id.to_string(),
                "key": "workspaces/ws/archives/arc.tar.gz",
                "size": bytes.len(),
                "sha256": sha256_hex(bytes),
                "uploadedBy": "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV",
                "createdAt": now.to_string(),
            }))
            .unwrap();
            tlao_sdk::worker::ArchiveDownload {
                archive: archive.into(),
                url: signed("/blobs/archive"),
            }
        });
        let assignment = Assignment {
            run: RunView::new(run, None, None, now),
            lease_id: lease_id.clone(),
            executor: ExecutorView::from(&ExecutorDescriptor {
                name: "test-executor".parse().unwrap(),
                task_types: BTreeSet::from([task_type]),
                config: executor,
                sandbox: Default::default(),
            }),
            task_spec_key: "workspaces/ws/runs/run/taskspec.json".into(),
            task_spec_url: signed("/blobs/spec"),
            archive: archive_download,
            deadline,
            heartbeat_interval_ms: None,
            heartbeat_timeout_ms: None,
            numbered_events: true,
        };
        let spec = json!({"taskType": task_type.as_str(), "input": {"prompt": prompt}});
        let state = Arc::new(Mutex::new(State {
            assignment: Some(assignment),
            status: Some(RunStatus::Running),
            spec: serde_json::to_vec(&spec).unwrap(),
            archive: archive.unwrap_or_default(),
            ..State::default()
        }));
        let addr = listener.local_addr().unwrap();
        let handle = serve(listener, state.clone(), url.clone());
        FakeApi {
            url,
            state,
            run_id,
            lease_id,
            addr,
            handle: Mutex::new(Some(handle)),
        }
    }

    /// Closes the listener and every connection, so connecting is refused, for `outage`;
    /// then serves again on the same port. Returns once it serves again.
    pub async fn refuse_connections_for(&self, outage: std::time::Duration) {
        let handle = self.handle.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
        tokio::time::sleep(outage).await;
        let listener = TcpListener::bind(self.addr).unwrap();
        let handle = serve(listener, self.state.clone(), self.url.clone());
        *self.handle.lock().unwrap() = Some(handle);
    }

    /// Reads the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Every log line received, in order.
    pub fn log_lines(&self) -> Vec<String> {
        self.with(|s| {
            s.batches
                .iter()
                .flat_map(|(_, events)| events.iter())
                .filter_map(|e| match e {
                    EventPayload::Log { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// Every log line applied, in order, once each (numbered batches are deduplicated).
    pub fn applied_lines(&self) -> Vec<String> {
        self.with(|s| {
            s.applied
                .iter()
                .filter_map(|(_, e)| match e {
                    WorkerEvent::Log { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// The `dropped` events applied: (lines, bytes) each.
    pub fn dropped(&self) -> Vec<(u64, u64)> {
        self.with(|s| {
            s.applied
                .iter()
                .filter_map(|(_, e)| match e {
                    WorkerEvent::Dropped { lines, bytes } => Some((*lines, *bytes)),
                    _ => None,
                })
                .collect()
        })
    }

    /// Stops the server.
    pub async fn stop(self) {
        let handle = self.handle.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }
}

/// Serves the fake's routes on `listener`.
fn serve(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    base: String,
) -> actix_web::dev::ServerHandle {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::Data::new(base.clone()))
            .app_data(web::PayloadConfig::new(64 << 20))
            .app_data(web::JsonConfig::default().limit(16 << 20))
            .route("/worker/lease", web::post().to(lease))
            .route(
                "/worker/runs/{run}/assignment",
                web::get().to(get_assignment),
            )
            .route("/worker/runs/{run}/events", web::post().to(events))
            .route(
                "/worker/runs/{run}/artifacts",
                web::post().to(create_artifact),
            )
            .route(
                "/worker/runs/{run}/artifacts/{artifact}/finalize",
                web::post().to(finalize),
            )
            .route("/worker/runs/{run}/complete", web::post().to(complete))
            .route("/blobs/spec", web::get().to(spec_blob))
            .route("/blobs/archive", web::get().to(archive_blob))
            .route("/blobs/upload/{artifact}", web::put().to(upload))
    })
    .workers(1)
    .shutdown_timeout(0)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn authorized(req: &HttpRequest, state: &Mutex<State>) -> bool {
    let ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !ok {
        state.lock().unwrap().bad_auth += 1;
    }
    ok
}

fn problem(status: u16, title: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/problem+json")
        .json(json!({
            "type": "about:blank", "title": title, "status": status,
            "detail": detail, "requestId": "req-fake"
        }))
}

async fn lease(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    body: web::Json<tlao_sdk::worker::LeaseRequest>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let mut s = state.lock().unwrap();
    s.lease_requests.push(body.into_inner());
    if s.empty_leases > 0 {
        s.empty_leases -= 1;
        return HttpResponse::NoContent().finish();
    }
    if s.leased {
        return HttpResponse::NoContent().finish();
    }
    s.leased = true;
    match &s.assignment {
        Some(a) => HttpResponse::Ok().json(a),
        None => HttpResponse::NoContent().finish(),
    }
}

async fn get_assignment(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let s = state.lock().unwrap();
    let lease_ok = s
        .assignment
        .as_ref()
        .is_some_and(|a| req.query_string() == format!("leaseId={}", a.lease_id));
    match (&s.assignment, lease_ok) {
        (Some(a), true) => HttpResponse::Ok().json(a),
        _ => problem(409, "Conflict", "lease does not hold the run"),
    }
}

/// The 409 of a run that has ended, as the real server answers it.
fn ended(status: RunStatus) -> HttpResponse {
    HttpResponse::Conflict()
        .content_type("application/problem+json")
        .json(json!({
            "type": "urn:tlao:problem:lease-revoked", "title": "Lease no longer valid",
            "status": 409, "detail": format!("the run has ended ({status})"),
            "requestId": "req-fake", "reason": "run_ended", "runStatus": status.as_str()
        }))
}

async fn events(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    body: web::Json<EventBatch>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if s.fail_batches > 0 {
        s.fail_batches -= 1;
        return problem(503, "Service unavailable", "try again shortly");
    }
    if s.lose_lease {
        return problem(409, "Conflict", "lease lost; stop working on it");
    }
    let status = s.status.unwrap_or(RunStatus::Running);
    if status.is_terminal() {
        return ended(status);
    }
    let batch = body.into_inner();
    s.first_seqs.push(batch.first_seq);
    if let Some(report) = &batch.availability {
        s.availability.push(report.clone());
    }
    // Numbered batches are applied once, as the real server does.
    let skip = match batch.first_seq {
        Some(first) if first == 0 || first > s.worker_seq + 1 => {
            return problem(400, "Invalid request", "firstSeq skips worker events");
        }
        Some(first) => (s.worker_seq + 1 - first) as usize,
        None => 0,
    };
    let fresh: Vec<(u64, WorkerEvent)> = batch
        .events
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(|(i, e)| (batch.first_seq.unwrap_or(0) + i as u64, e))
        .collect();
    if batch.first_seq.is_some()
        && let Some((seq, _)) = fresh.last()
    {
        s.worker_seq = *seq;
    }
    let events = fresh
        .iter()
        .filter_map(|(_, event)| match Reported::from(event.clone()) {
            Reported::Event(payload) => Some(payload),
            Reported::Dropped { .. } => None,
        })
        .collect();
    s.applied.extend(fresh);
    s.batches.push((now_millis(), events));
    if s.lose_answers > 0 {
        s.lose_answers -= 1;
        return problem(500, "Internal server error", "the answer was lost");
    }
    let last_seq = s.batches.iter().map(|(_, e)| e.len() as u64).sum();
    HttpResponse::Ok().json(EventReport {
        status: status.into(),
        stop: false,
        deadline: s.assignment.as_ref().map(|a| a.deadline),
        last_seq,
    })
}

async fn create_artifact(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    base: web::Data<String>,
    body: web::Json<ArtifactRequest>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let mut s = state.lock().unwrap();
    if let Some(status) = s.status.filter(|status| status.is_terminal()) {
        return ended(status);
    }
    let request = body.into_inner();
    let run = &s.assignment.as_ref().unwrap().run;
    let artifact_id = ArtifactId::new(Ulid::from_parts(
        now_millis() as u64,
        s.artifacts.len() as u128 + 100,
    ));
    let artifact = Artifact {
        artifact_id: artifact_id.clone(),
        run_id: run.run_id.clone(),
        workspace_id: run.workspace_id.clone(),
        artifact_type: request.artifact_type.into(),
        name: request.name,
        size: request.size,
        content_type: request.content_type,
        sha256: request.sha256,
        status: ArtifactStatus::Pending,
        key: format!("workspaces/ws/runs/run/artifacts/{artifact_id}"),
        created_at: Timestamp::from_unix_millis(now_millis()),
        error: None,
    };
    s.artifacts.push(artifact.clone());
    HttpResponse::Created().json(ArtifactUploadSlot {
        artifact: ArtifactView::new(artifact, None),
        upload: SignedUrl {
            url: format!(
                "{}/blobs/upload/{artifact_id}?signature=secret",
                base.get_ref()
            ),
            method: "PUT".into(),
            expires_at: Timestamp::from_unix_millis(now_millis() + 3_600_000),
            // As S3 signs it: the URL stores once.
            headers: [("if-none-match".to_owned(), "*".to_owned())].into(),
        },
    })
}

async fn upload(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.upload_attempts += 1;
    s.upload_headers.push(
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    s.upload_conditions.push(
        req.headers()
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    if s.fail_uploads {
        return problem(500, "Internal Server Error", "the blob store is down");
    }
    // Create-only, as the API's gateway and S3 (If-None-Match) are.
    let key = path.into_inner();
    if s.uploads.contains_key(&key) {
        return problem(409, "Conflict", "a blob is already stored at this key");
    }
    s.uploads.insert(key, body.to_vec());
    if s.lose_upload_answers > 0 {
        s.lose_upload_answers -= 1;
        return problem(500, "Internal Server Error", "the answer was lost");
    }
    HttpResponse::Ok().finish()
}

async fn finalize(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    path: web::Path<(String, String)>,
    body: web::Json<FinalizeRequest>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let mut s = state.lock().unwrap();
    if let Some(status) = s.status.filter(|status| status.is_terminal()) {
        return ended(status);
    }
    let (_, artifact_id) = path.into_inner();
    let request = body.into_inner();
    let stored = s
        .uploads
        .get(&artifact_id)
        .map(|bytes| (bytes.len(), sha256_hex(bytes)));
    let Some(artifact) = s
        .artifacts
        .iter_mut()
        .find(|a| a.artifact_id.as_str() == artifact_id)
    else {
        return problem(404, "Not Found", "no such artifact");
    };
    match (&request.error, stored) {
        (None, Some((len, sha256))) if len as u64 == artifact.size && sha256 == artifact.sha256 => {
            artifact.status = ArtifactStatus::Available
        }
        (Some(error), _) => {
            artifact.status = ArtifactStatus::UploadFailed;
            artifact.error = Some(error.clone());
        }
        _ => {
            artifact.status = ArtifactStatus::UploadFailed;
            artifact.error = Some("no bytes were uploaded".into());
        }
    }
    let artifact = ArtifactView::new(artifact.clone(), None);
    s.finalized.push((artifact_id, request));
    HttpResponse::Ok().json(artifact)
}

async fn complete(
    req: HttpRequest,
    state: web::Data<Mutex<State>>,
    body: web::Json<CompleteRequest>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return problem(401, "Unauthorized", "bad token");
    }
    let mut s = state.lock().unwrap();
    let request = body.into_inner();
    let current = s.status.unwrap_or(RunStatus::Running);
    let status = if current.is_terminal() {
        current
    } else {
        match request.status {
            CompletionStatus::Completed => RunStatus::Completed,
            CompletionStatus::Failed => RunStatus::Failed,
            CompletionStatus::TimedOut => RunStatus::TimedOut,
            CompletionStatus::Cancelled => RunStatus::Cancelled,
        }
    };
    s.status = Some(status);
    let mut run = s.assignment.as_ref().unwrap().run.clone();
    run.status = status.into();
    run.error = request.error.clone();
    run.usage = request.usage.clone();
    s.completed.push(request);
    HttpResponse::Ok().json(run)
}

async fn spec_blob(state: web::Data<Mutex<State>>) -> HttpResponse {
    let s = state.lock().unwrap();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(s.spec.clone())
}

async fn archive_blob(state: web::Data<Mutex<State>>) -> HttpResponse {
    let s = state.lock().unwrap();
    HttpResponse::Ok()
        .content_type("application/gzip")
        .body(s.archive.clone())
}
