//! Benchmark: `GET /runs/{id}` through the full stack (request id, JWT auth, membership
//! check, SQLite reads, JSON) against a bare actix handler returning the same bytes on
//! as many server threads, in the same process, with the same client. Four variants: a
//! queued run (its queue position read too), a finished run, a run with 1,000 log lines
//! (`GET /runs/{id}` returns its log text), and a cold pool (each request a different one
//! of 10,000 runs, more than twice what the server's finished-run cache holds, so every
//! request reads its run from SQLite). Prints requests per second and the ratio for each.
//!
//! Run: `cargo bench -p tlao-cli --bench api_get_run` (optionally `-- 5` for seconds per round).
//! For a profile: `TLAO_BENCH_VARIANT=b` loads only that variant, `TLAO_BENCH_ONLY=full`
//! (or `bare`) only that server.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tlao_adapters_local::{FsBlobStore, LocalEventBus, SqliteTable};
use tlao_api::{ApiConfig, AppDeps};
use tlao_domain::{
    EventPayload, ExecutorDescriptor, Guardrails, LogStream, Name, NewTask, Reported, RunId, Usage,
};
use tlao_orchestrator::read_cache::FINISHED_RUN_CAPACITY;
use tlao_orchestrator::{Caller, Completion, CreateRun, Services};
use tlao_ports::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;
/// The runs of the cold variant. A connection comes back to a run after about this many
/// requests over all connections; the server's finished-run cache starts over each time
/// it holds [`FINISHED_RUN_CAPACITY`] runs, so by then it has forgotten the run.
const COLD_RUNS: usize = 10_000;
const _: () = assert!(COLD_RUNS >= 2 * FINISHED_RUN_CAPACITY);
/// The log lines of the logged run.
const LOG_LINES: usize = 1000;

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
        // Room for the cold pool's runs in one day.
        Guardrails {
            daily_run_quota: 100_000,
            daily_run_quota_per_user: 100_000,
            ..Guardrails::default()
        },
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
    // Runs of that task, leased at once and, unless `lines` is `None`, given that many
    // log lines and completed.
    let new_run = |lines: Option<usize>| {
        let services = services.clone();
        let caller = caller.clone();
        let task_id = task.task_id.clone();
        async move {
            let run = services
                .runs
                .create(
                    &caller,
                    CreateRun {
                        task_id,
                        executor: None,
                    },
                    None,
                )
                .await
                .unwrap()
                .run
                .run_id;
            let Some(lines) = lines else {
                return run;
            };
            let lease = services.workers.lease_next(None).await.unwrap().unwrap();
            assert_eq!(lease.run.run_id, run);
            let log: Vec<Reported> = (0..lines)
                .map(|i| {
                    Reported::Event(EventPayload::Log {
                        stream: LogStream::Stdout,
                        text: format!("line {i:>4}: the agent printed something of a usual length"),
                    })
                })
                .collect();
            for batch in log.chunks(100) {
                services
                    .workers
                    .report(&run, &lease.lease_id, None, batch.to_vec())
                    .await
                    .unwrap();
            }
            services
                .workers
                .complete(
                    &run,
                    &lease.lease_id,
                    Completion::Completed,
                    Usage::Unmeasured,
                )
                .await
                .unwrap();
            run
        }
    };
    // (d) The cold pool first: finished runs, each read once in turn.
    let setup = Instant::now();
    let mut cold = Vec::with_capacity(COLD_RUNS);
    for _ in 0..COLD_RUNS {
        cold.push(new_run(Some(0)).await);
    }
    let cold_setup = setup.elapsed();
    // (b) A finished run without logs, (c) one with 1,000 log lines, (a) a queued run
    // (the only one: position 1).
    let finished = new_run(Some(0)).await;
    let logged = new_run(Some(LOG_LINES)).await;
    let queued = new_run(None).await;

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
    let get = |run: &RunId| {
        format!("GET /runs/{run} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n")
            .into_bytes()
    };
    // What the full stack answers, checked, for the bare handler to answer the same.
    let body_of = |run: RunId| {
        let request = get(&run);
        async move {
            let (status, body) =
                exchange(&mut TcpStream::connect(full_addr).await.unwrap(), &request).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            body
        }
    };
    let queued_body = body_of(queued.clone()).await;
    let queued_view: serde_json::Value = serde_json::from_slice(&queued_body).unwrap();
    assert_eq!(queued_view["queuePosition"], 1, "{queued_view}");
    let logged_body = body_of(logged.clone()).await;
    let logged_view: serde_json::Value = serde_json::from_slice(&logged_body).unwrap();
    assert_eq!(
        logged_view["logs"].as_str().unwrap().lines().count(),
        LOG_LINES,
        "the run's log lines are in its view"
    );
    let variants = [
        Variant {
            name: "(a) a queued run",
            requests: vec![get(&queued)],
            body: queued_body,
        },
        Variant {
            name: "(b) a finished run",
            requests: vec![get(&finished)],
            body: body_of(finished.clone()).await,
        },
        Variant {
            name: "(c) a run with 1,000 log lines",
            requests: vec![get(&logged)],
            body: logged_body,
        },
        Variant {
            name: "(d) cold: a different run each time",
            requests: cold.iter().map(get).collect(),
            // The cold runs' views differ only in their ids and times.
            body: body_of(cold[0].clone()).await,
        },
    ];

    // The baseline: a bare handler answering each variant's path with the same bytes as
    // the full stack, on as many server threads (actix's default: one per CPU).
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let bare_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bare_addr = bare_listener.local_addr().unwrap();
    let bodies: Arc<HashMap<String, web::Bytes>> = Arc::new(
        [
            (&queued, &variants[0].body),
            (&finished, &variants[1].body),
            (&logged, &variants[2].body),
        ]
        .into_iter()
        .map(|(run, body)| (run.to_string(), web::Bytes::from(body.clone())))
        .chain(
            cold.iter()
                .map(|run| (run.to_string(), web::Bytes::from(variants[3].body.clone()))),
        )
        .collect(),
    );
    let bare = HttpServer::new(move || {
        let bodies = bodies.clone();
        App::new().route(
            "/runs/{id}",
            web::get().to(move |id: web::Path<String>| {
                let body = bodies.get(id.as_str()).cloned();
                async move {
                    match body {
                        Some(body) => HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body),
                        None => HttpResponse::NotFound().finish(),
                    }
                }
            }),
        )
    })
    .workers(threads)
    .listen(bare_listener)
    .unwrap()
    .run();
    tokio::spawn(bare);

    println!(
        "GET /runs/{{id}}: {CONNECTIONS} keep-alive connections, {threads} server threads for both, {seconds} s per round, 2 rounds each, best round kept"
    );
    println!(
        "(d) cold: {COLD_RUNS} finished runs (set up in {:.1} s), each connection walks them in turn, so consecutive requests share no row, the runs' rows exceed SQLite's page cache per connection and the server's cache of finished runs ({FINISHED_RUN_CAPACITY}) forgets each run before it is read again; the OS file cache stays warm, and the API's run -> workspace lookups are remembered after the first pass",
        cold_setup.as_secs_f64()
    );
    for variant in &variants {
        load(bare_addr, &variant.requests, Duration::from_millis(300)).await;
        load(full_addr, &variant.requests, Duration::from_millis(300)).await;
    }
    // `TLAO_BENCH_ONLY=full` (or `bare`) loads only that server (for profiling it alone).
    let only = std::env::var("TLAO_BENCH_ONLY").ok();
    let (only_full, only_bare) = (
        only.as_deref() == Some("full"),
        only.as_deref() == Some("bare"),
    );
    // `TLAO_BENCH_VARIANT=b` loads only that variant (a, b, c or d).
    let only_variant = std::env::var("TLAO_BENCH_VARIANT").ok();
    let mut best = vec![(0.0f64, 0.0f64); variants.len()];
    for _ in 0..2 {
        for (variant, (bare, full)) in variants.iter().zip(best.iter_mut()) {
            if only_variant
                .as_ref()
                .is_some_and(|only| !variant.name.starts_with(&format!("({only})")))
            {
                continue;
            }
            if !only_full {
                *bare = bare.max(load(bare_addr, &variant.requests, round).await);
            }
            if !only_bare {
                *full = full.max(load(full_addr, &variant.requests, round).await);
            }
        }
    }
    println!(
        "{:<40} {:>12} {:>12} {:>10}",
        "variant (response bytes)", "bare req/s", "full req/s", "full/bare"
    );
    for (variant, (bare, full)) in variants.iter().zip(&best) {
        println!(
            "{:<40} {bare:>12.0} {full:>12.0} {:>10.2}",
            format!("{} ({})", variant.name, variant.body.len()),
            full / bare
        );
    }
    let worst = best
        .iter()
        .map(|(bare, full)| full / bare)
        .fold(f64::INFINITY, f64::min);
    println!(
        "full stack = request id + JWT auth + membership + SQLite + JSON; worst ratio {worst:.2} (goal >= 0.5 in every variant)"
    );
}

/// One thing to measure: its requests (sent in turn) and the bytes the full stack answers.
struct Variant {
    name: &'static str,
    requests: Vec<Vec<u8>>,
    body: Vec<u8>,
}

/// Keeps `CONNECTIONS` connections busy with `requests` for `duration`, each connection
/// sending them in turn from its own starting point; requests/second.
async fn load(addr: std::net::SocketAddr, requests: &[Vec<u8>], duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let requests: Arc<[Vec<u8>]> = Arc::from(requests);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let done = done.clone();
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut next = connection * requests.len() / CONNECTIONS;
            while started.elapsed() < duration {
                let (status, _) = exchange(&mut stream, &requests[next]).await;
                assert_eq!(status, 200);
                done.fetch_add(1, Ordering::Relaxed);
                next = (next + 1) % requests.len();
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
