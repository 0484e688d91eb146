//! Benchmark: live run events through the full stack (worker POST → SQLite commit → event
//! bus → SSE → the SDK's `EventStream`), printed next to the machine's bare loopback TCP
//! round trip measured in the same run.
//!
//! 1. Latency: one subscriber; a worker posts one log event at a time and waits until
//!    the subscriber has it; the time from starting the POST to the subscriber holding
//!    the event, p50/p99 over `TLAO_BENCH_EVENTS` (1,000) events. Goal: p50 ≤ 5 ms.
//! 2. Fan-out: `TLAO_BENCH_SUBSCRIBERS` (1,000) subscribers of one run, each its own
//!    connection; every subscriber must receive every event, exactly once and in order.
//!    Paced: `TLAO_BENCH_FANOUT_EVENTS` (100) events, each posted once every subscriber
//!    has the previous one: POST → all subscribers have it, p50/p99, and the total.
//!    Burst: as many events posted back to back: the time until all subscribers have all
//!    of them, and per event the time until the last subscriber has it.
//!
//! Run: `cargo bench -p tlao-cli --bench api_events`. The subscribers need two descriptors
//! each (client and server side): the soft `RLIMIT_NOFILE` is raised to the hard limit
//! when it is lower than that needs (or run `ulimit -n 4096` first).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tlao_adapters_local::{FsBlobStore, LocalEventBus, MemoryTable, SqliteTable};
use tlao_api::{ApiConfig, AppDeps};
use tlao_domain::{ExecutorDescriptor, Guardrails, Name, NewTask, RunId};
use tlao_orchestrator::{Caller, CreateRun, Services};
use tlao_ports::{SystemClock, Table};
use tlao_sdk::{EventStream, EventStreamItem, stream_run_events};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

const WORKER_TOKEN: &str = "bench-worker-token";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = setting("TLAO_BENCH_EVENTS", 1_000);
    let subscribers = setting("TLAO_BENCH_SUBSCRIBERS", 1_000);
    let fanout_events = setting("TLAO_BENCH_FANOUT_EVENTS", 100);
    raise_open_files_limit(2 * subscribers as u64 + 512);

    let rtt = loopback_round_trip(5_000).await;
    println!(
        "bare loopback TCP round trip (64 B echo, 5,000 times): {}",
        summary(&rtt)
    );

    let bench = Bench::start().await;

    // 1. Latency, one event at a time.
    let run = bench.leased_run().await;
    let (received_tx, mut received) = mpsc::unbounded_channel();
    let stream = bench.subscribe(&run.run_id, 0);
    tokio::spawn(forward_receipts(stream, received_tx));
    wait_for(&mut received, 2).await; // queued, running
    for i in 0..50 {
        bench.post(&run, &format!("warm-up {i}")).await;
        wait_for(&mut received, 3 + i).await;
    }
    let mut latencies = Vec::with_capacity(events);
    let mut posts = Vec::with_capacity(events);
    let mut seq = 52;
    for i in 0..events {
        seq += 1;
        let text = format!("line {i}");
        let started = Instant::now();
        let post = bench.post(&run, &text);
        let receive = wait_for(&mut received, seq);
        let (posted_at, received_at) = tokio::join!(
            async {
                post.await;
                Instant::now()
            },
            receive
        );
        posts.push(posted_at - started);
        latencies.push(received_at - started);
    }
    bench.complete(&run).await;
    println!(
        "worker events POST round trip ({events} posts):           {}",
        summary(&posts)
    );
    println!(
        "POST → subscriber has the event ({events} events):        {}  (goal p50 <= 5 ms)",
        summary(&latencies)
    );

    // 2. Fan-out to many subscribers of one run: first paced (each event posted once
    // every subscriber has the previous one), then a burst (posted back to back).
    let run = bench.leased_run().await;
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<()>();
    let (done_tx, mut done) = mpsc::unbounded_channel::<Vec<(u64, Instant)>>();
    let connect_started = Instant::now();
    let first_new = 3; // after queued (1) and running (2)
    let last_new = first_new + 2 * fanout_events as u64 - 1;
    // How many subscribers hold each new event; the last one to get it notifies.
    let holders: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..2 * fanout_events)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    let everyone_has_it = Arc::new(Notify::new());
    for n in 0..subscribers {
        // Resuming after 1 replays `running` at once: proof the stream is subscribed.
        let mut stream = bench.subscribe(&run.run_id, 1);
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        let (holders, everyone_has_it) = (holders.clone(), everyone_has_it.clone());
        tokio::spawn(async move {
            let mut receipts = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(EventStreamItem::Event(event)) if event.seq() == 2 => {
                        let _ = ready_tx.send(());
                    }
                    Ok(EventStreamItem::Event(event)) => {
                        receipts.push((event.seq(), Instant::now()));
                        let slot = &holders[(event.seq() - first_new) as usize];
                        if slot.fetch_add(1, Ordering::SeqCst) + 1 == subscribers {
                            everyone_has_it.notify_one();
                        }
                        if event.seq() == last_new {
                            break;
                        }
                    }
                    Ok(EventStreamItem::End(_)) => break,
                    Err(error) => panic!("subscriber {n}: {error}"),
                }
            }
            let _ = done_tx.send(receipts);
        });
        if n % 100 == 99 {
            // Connect in waves, so the accept backlog never overflows.
            tokio::task::yield_now().await;
        }
    }
    drop((ready_tx, done_tx));
    for _ in 0..subscribers {
        ready.recv().await.expect("every subscriber connects");
    }
    println!(
        "{subscribers} subscribers connected and subscribed in {:.0} ms",
        connect_started.elapsed().as_secs_f64() * 1e3
    );

    let paced_started = Instant::now();
    let mut paced = Vec::with_capacity(fanout_events);
    for i in 0..fanout_events {
        let at = Instant::now();
        bench.post(&run, &format!("paced {i}")).await;
        everyone_has_it.notified().await;
        paced.push(at.elapsed());
    }
    let paced_total = paced_started.elapsed();

    let burst_started = Instant::now();
    let mut posted_at = Vec::with_capacity(fanout_events);
    let mut burst_posts = Vec::with_capacity(fanout_events);
    for i in 0..fanout_events {
        let at = Instant::now();
        posted_at.push(at);
        bench.post(&run, &format!("burst {i}")).await;
        burst_posts.push(at.elapsed());
    }
    let mut last_receipt = vec![burst_started; fanout_events];
    let mut complete_subscribers = 0;
    let expected: Vec<u64> = (first_new..=last_new).collect();
    for _ in 0..subscribers {
        let receipts = done.recv().await.expect("every subscriber reports");
        let seqs: Vec<u64> = receipts.iter().map(|(seq, _)| *seq).collect();
        if seqs == expected {
            complete_subscribers += 1;
        }
        for (seq, at) in receipts {
            if let Some(k) = (seq - first_new).checked_sub(fanout_events as u64) {
                let slot = &mut last_receipt[k as usize];
                *slot = (*slot).max(at);
            }
        }
    }
    let burst_total = last_receipt.iter().max().copied().unwrap_or(burst_started) - burst_started;
    let burst_latency: Vec<Duration> = last_receipt
        .iter()
        .zip(&posted_at)
        .map(|(last, posted)| *last - *posted)
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "fan-out: {complete_subscribers}/{subscribers} subscribers received all {} events, exactly once and in order",
        2 * fanout_events
    );
    println!(
        "fan-out paced ({fanout_events} events, one at a time): POST → all {subscribers} have it  {}; {:.0} ms in all",
        summary(&paced),
        ms(paced_total)
    );
    println!(
        "fan-out burst ({fanout_events} events back to back): all {subscribers} had all of them {:.0} ms after the first POST",
        ms(burst_total)
    );
    println!(
        "fan-out burst: POST → last subscriber has the event   {}",
        summary(&burst_latency)
    );
    println!(
        "fan-out burst: worker events POST round trip          {}",
        summary(&burst_posts)
    );
    assert_eq!(
        complete_subscribers, subscribers,
        "a subscriber missed events"
    );
    bench.complete(&run).await;
}

/// The full stack on SQLite with a bootstrapped administrator and a `kiro` executor.
struct Bench {
    address: String,
    http: reqwest::Client,
    services: Arc<Services>,
    caller: Caller,
    token: String,
    _dir: tempfile::TempDir,
}

struct Leased {
    run_id: RunId,
    lease_id: String,
}

impl Bench {
    async fn start() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SystemClock);
        // `TLAO_BENCH_TABLE=memory` takes SQLite out of the picture.
        let table: Arc<dyn Table> =
            if std::env::var("TLAO_BENCH_TABLE").is_ok_and(|v| v == "memory") {
                Arc::new(MemoryTable::new())
            } else {
                Arc::new(
                    SqliteTable::open(&dir.path().join("bench.db"))
                        .await
                        .unwrap(),
                )
            };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let blobs = Arc::new(
            FsBlobStore::new(
                dir.path().join("blobs"),
                address.clone(),
                b"k".repeat(32),
                clock.clone(),
            )
            .unwrap(),
        );
        let services = Arc::new(Services::new(
            table,
            blobs.clone(),
            clock,
            Guardrails {
                max_log_bytes: 1 << 30,
                daily_run_quota: 1_000,
                daily_run_quota_per_user: 1_000,
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
        let mut config = ApiConfig::new(b"bench-secret-bench-secret-bench-secret".to_vec());
        config.worker_token = Some(WORKER_TOKEN.into());
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
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{address}/auth/token"))
            .json(&json!({"apiKey": admin.api_key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Bench {
            address,
            http,
            caller: Caller {
                user_id: admin.user.user_id,
                admin: true,
            },
            services,
            token: token["token"].as_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    /// A new run, leased as a worker would.
    async fn leased_run(&self) -> Leased {
        let ws = self
            .services
            .workspaces
            .create(&self.caller, "bench")
            .await
            .unwrap();
        let task = self
            .services
            .tasks
            .create(
                &self.caller,
                NewTask::parse(&json!({"workspaceId": ws.workspace_id, "taskType": "spec.generate", "input": {"prompt": "p"}}))
                    .unwrap(),
                None,
            )
            .await
            .unwrap();
        let run = self
            .services
            .runs
            .create(
                &self.caller,
                CreateRun {
                    task_id: task.task_id,
                    executor: None,
                },
                None,
            )
            .await
            .unwrap();
        let assignment: Value = self
            .http
            .post(format!("{}/worker/lease", self.address))
            .bearer_auth(WORKER_TOKEN)
            .json(&json!({"waitSeconds": 0}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            assignment["run"]["runId"],
            run.run.run_id.to_string().as_str()
        );
        Leased {
            run_id: run.run.run_id,
            lease_id: assignment["leaseId"].as_str().unwrap().to_owned(),
        }
    }

    fn subscribe(&self, run_id: &RunId, after: u64) -> EventStream {
        stream_run_events(&self.address, &self.token, run_id, after).unwrap()
    }

    /// Posts one log line as the worker.
    async fn post(&self, run: &Leased, text: &str) {
        let response = self
            .http
            .post(format!("{}/worker/runs/{}/events", self.address, run.run_id))
            .bearer_auth(WORKER_TOKEN)
            .json(&json!({"leaseId": run.lease_id, "events": [{"type": "log", "stream": "stdout", "text": text}]}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    async fn complete(&self, run: &Leased) {
        let response = self
            .http
            .post(format!(
                "{}/worker/runs/{}/complete",
                self.address, run.run_id
            ))
            .bearer_auth(WORKER_TOKEN)
            .json(&json!({"leaseId": run.lease_id, "status": "completed"}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

/// Sends the sequence number and arrival time of every event the stream yields.
async fn forward_receipts(mut stream: EventStream, to: mpsc::UnboundedSender<(u64, Instant)>) {
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            EventStreamItem::Event(event) => {
                if to.send((event.seq(), Instant::now())).is_err() {
                    return;
                }
            }
            EventStreamItem::End(_) => return,
        }
    }
}

/// Waits until the event `seq` arrived (every earlier one must arrive first); when.
async fn wait_for(received: &mut mpsc::UnboundedReceiver<(u64, Instant)>, seq: u64) -> Instant {
    loop {
        let (got, at) = received.recv().await.expect("the subscriber is alive");
        assert!(got <= seq, "event {got} arrived while waiting for {seq}");
        if got == seq {
            return at;
        }
    }
}

/// Round trips of 64 bytes through a bare tokio echo server on loopback.
async fn loopback_round_trip(times: usize) -> Vec<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.set_nodelay(true).unwrap();
        let mut buffer = [0u8; 64];
        while socket.read_exact(&mut buffer).await.is_ok() {
            if socket.write_all(&buffer).await.is_err() {
                return;
            }
        }
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.set_nodelay(true).unwrap();
    let mut buffer = [7u8; 64];
    for _ in 0..500 {
        client.write_all(&buffer).await.unwrap();
        client.read_exact(&mut buffer).await.unwrap();
    }
    let mut samples = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        client.write_all(&buffer).await.unwrap();
        client.read_exact(&mut buffer).await.unwrap();
        samples.push(started.elapsed());
    }
    samples
}

/// `p50 x ms  p99 y ms  max z ms`.
fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[i].as_secs_f64() * 1e3
    };
    format!(
        "p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// Raises the soft limit on open files to at least `wanted` (up to the hard limit).
fn raise_open_files_limit(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let target = wanted.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => println!("raised the open files limit from {soft} to {target}"),
        Err(error) => println!("could not raise the open files limit ({soft}): {error}"),
    }
    if target < wanted {
        println!(
            "the hard open files limit ({hard}) is below the {wanted} needed; expect failures"
        );
    }
}
