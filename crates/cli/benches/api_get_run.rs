//! Benchmark: `GET /runs/{id}` through the full stack (request id, JWT auth, membership
//! check, SQLite reads, JSON) against a bare actix handler returning the same bytes, in
//! the same process, with the same client. Prints requests per second and the ratio.
//!
//! Run: `cargo bench -p tlao-cli --bench api_get_run` (optionally `-- 5` for seconds per round).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tlao_adapters_local::{FsBlobStore, LocalEventBus, SqliteTable};
use tlao_api::{ApiConfig, AppDeps};
use tlao_domain::Usage;
use tlao_domain::{ExecutorDescriptor, Guardrails, Name, NewTask};
use tlao_orchestrator::{Caller, Completion, CreateRun, Services};
use tlao_ports::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;
const SERVER_WORKERS: usize = 2;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let round = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().unwrap();

    // The full stack on SQLite, with one queued run to read.
    let clock = Arc::new(SystemClock);
    let table = Arc::new(
        SqliteTable::open(&dir.path().join("bench.db"))
            .await
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let full_addr = listener.local_addr().unwrap();
    let blobs = Arc::new(
        FsBlobStore::new(
            dir.path().join("blobs"),
            format!("http://{full_addr}"),
            b"k".repeat(32),
            clock.clone(),
        )
        .unwrap(),
    );
    let services = Arc::new(Services::new(
        table,
        blobs.clone(),
        clock,
        Guardrails::default(),
        Arc::new(LocalEventBus::new()),
    ));
    let admin = services
        .users
        .bootstrap_admin(Name::try_from("admin".to_owned()).unwrap())
        .await
        .unwrap()
        .unwrap();
    let caller = Caller {
        user_id: admin.user.user_id.clone(),
        admin: true,
    };
    services
        .executors
        .ensure(
            ExecutorDescriptor::parse(
                &json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let ws = services.workspaces.create(&caller, "bench").await.unwrap();
    // A finished run (one read: the run) beside the queued one (two: the run and its
    // queue position), both read through the full stack.
    let finished = {
        let task = services
            .tasks
            .create(
                &caller,
                NewTask::parse(&json!({"workspaceId": ws.workspace_id, "taskType": "spec.generate", "input": {"prompt": "p"}}))
                    .unwrap(),
                None,
            )
            .await
            .unwrap();
        let run = services
            .runs
            .create(
                &caller,
                CreateRun {
                    task_id: task.task_id,
                    executor: None,
                },
                None,
            )
            .await
            .unwrap();
        let lease = services.workers.lease_next(None).await.unwrap().unwrap();
        assert_eq!(lease.run.run_id, run.run.run_id);
        services
            .workers
            .complete(
                &run.run.run_id,
                &lease.lease_id,
                Completion::Completed,
                Usage::Unmeasured,
            )
            .await
            .unwrap();
        run.run.run_id
    };
    let task = services
        .tasks
        .create(
            &caller,
            NewTask::parse(&json!({"workspaceId": ws.workspace_id, "taskType": "spec.generate", "input": {"prompt": "p"}}))
                .unwrap(),
            None,
        )
        .await
        .unwrap();
    let run = services
        .runs
        .create(
            &caller,
            CreateRun {
                task_id: task.task_id,
                executor: None,
            },
            None,
        )
        .await
        .unwrap();
    let mut config = ApiConfig::new(b"bench-secret-bench-secret-bench-secret".to_vec());
    config.token_ttl = Duration::from_secs(3600);
    let server = tlao_api::build(
        config,
        AppDeps {
            services: services.clone(),
            presigned: Some(blobs),
            maintenance: None,
        },
        listener,
    )
    .unwrap();
    tokio::spawn(server);
    let token = {
        let body = json!({"apiKey": admin.api_key}).to_string();
        let request = format!(
            "POST /auth/token HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(full_addr).await.unwrap();
        let (_, response) = exchange(&mut stream, request.as_bytes()).await;
        let value: serde_json::Value = serde_json::from_slice(&response).unwrap();
        value["token"].as_str().unwrap().to_owned()
    };
    let path = format!("/runs/{}", run.run.run_id);
    let full_request =
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n")
            .into_bytes();
    let (status, body) = exchange(
        &mut TcpStream::connect(full_addr).await.unwrap(),
        &full_request,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let finished_request = format!(
        "GET /runs/{finished} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();

    // The baseline: a bare handler returning the same bytes.
    let bare_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bare_addr = bare_listener.local_addr().unwrap();
    let bytes = web::Bytes::from(body.clone());
    let bare = HttpServer::new(move || {
        let bytes = bytes.clone();
        App::new().route(
            "/runs/{id}",
            web::get().to(move || {
                let bytes = bytes.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(bytes)
                }
            }),
        )
    })
    .workers(SERVER_WORKERS)
    .listen(bare_listener)
    .unwrap()
    .run();
    tokio::spawn(bare);
    let bare_request =
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n")
            .into_bytes();

    println!(
        "GET /runs/{{id}}: {CONNECTIONS} keep-alive connections, {seconds} s per round, 2 rounds each, best round kept"
    );
    load(bare_addr, &bare_request, Duration::from_millis(500)).await;
    load(full_addr, &full_request, Duration::from_millis(500)).await;
    let mut best_bare: f64 = 0.0;
    let mut best_full: f64 = 0.0;
    let mut best_finished: f64 = 0.0;
    // `TLAO_BENCH_ONLY=full` loads only the full stack (for profiling it alone).
    let only_full = std::env::var("TLAO_BENCH_ONLY").is_ok_and(|v| v == "full");
    for _ in 0..2 {
        if !only_full {
            best_bare = best_bare.max(load(bare_addr, &bare_request, round).await);
        }
        best_full = best_full.max(load(full_addr, &full_request, round).await);
        if !only_full {
            best_finished = best_finished.max(load(full_addr, &finished_request, round).await);
        }
    }
    println!("bare actix handler:                 {best_bare:>10.0} req/s");
    println!("full stack (auth + SQLite + JSON):  {best_full:>10.0} req/s  (a queued run)");
    println!("full stack, a finished run:         {best_finished:>10.0} req/s  (no queue read)");
    println!(
        "ratio full / bare:                  {:>10.2} (goal >= 0.5)",
        best_full / best_bare
    );
    println!(
        "ratio finished / bare:              {:>10.2}",
        best_finished / best_bare
    );
}

/// Keeps `CONNECTIONS` connections busy with `request` for `duration`; requests/second.
async fn load(addr: std::net::SocketAddr, request: &[u8], duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let request: Arc<[u8]> = Arc::from(request);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let done = done.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            while started.elapsed() < duration {
                let (status, _) = exchange(&mut stream, &request).await;
                assert_eq!(status, 200);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Sends one request on a keep-alive connection and reads one response (by
/// Content-Length); returns the status and body.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> (u16, Vec<u8>) {
    stream.write_all(request).await.unwrap();
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection mid-body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    (status, buffer[header_end..header_end + length].to_vec())
}
