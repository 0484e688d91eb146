//! Burst throughput of `tlao dev`: `BURST_RUNS` runs (default 200) posted as fast as the
//! API takes them, executed two at a time (`worker.max_local_workers = 2`), each the
//! stand-in `kiro-cli` (`tests/fixtures/kiro-cli`) doing one line of work; next to the
//! floor: the same number of direct spawns of the same stand-in, on two threads.
//!
//! Prints runs per second for both and their ratio (goal, issue 18: ≥ 0.6x the floor),
//! and the latency of `POST /runs` during the burst (goal: p50 well under 1 ms).
//!
//! `cargo bench -p tlao-cli --bench burst` (release build); `BURST_STANDBY` sets
//! `worker.standby` (default 1, the server's default).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DevServer, fixtures, path_with_standin};
use serde_json::json;

const DEFAULT_RUNS: usize = 200;
const PROMPT: &str = "lines:1";

fn main() {
    let runs: usize = std::env::var("BURST_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS)
        .max(20);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(bench(runs));
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn bench(runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let standby = std::env::var("BURST_STANDBY").unwrap_or_else(|_| "1".into());
    println!("worker.standby = {standby}");
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_WORKER__STANDBY", standby.as_str()),
            ("TLAO_WORKER__MAX_LOCAL_WORKERS", "2"),
            ("TLAO_GUARDRAILS__MAX_CONCURRENT_RUNS", "2"),
            // The daily quotas (100 and 200 runs) would refuse a long burst.
            ("TLAO_GUARDRAILS__DAILY_RUN_QUOTA", "1000000"),
            ("TLAO_GUARDRAILS__DAILY_RUN_QUOTA_PER_USER", "1000000"),
        ],
    );
    let admin = server.admin().await;
    let ws = admin.create_workspace("burst").await;
    // Tasks first: the burst is of runs.
    let mut tasks = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (code, task) = admin
            .post(
                "/tasks",
                json!({"workspaceId": ws, "taskType": "spec.generate", "input": {"prompt": PROMPT}}),
            )
            .await;
        assert_eq!(code, 201, "{task}");
        tasks.push(task["taskId"].as_str().unwrap().to_owned());
    }

    let started = Instant::now();
    let mut posts = Vec::with_capacity(runs);
    let mut run_ids = Vec::with_capacity(runs);
    for task in &tasks {
        let at = Instant::now();
        let (code, run) = admin.post("/runs", json!({"taskId": task})).await;
        posts.push(at.elapsed());
        assert_eq!(code, 201, "{run}");
        run_ids.push(run["runId"].as_str().unwrap().to_owned());
    }
    let posted = started.elapsed();
    for run_id in &run_ids {
        let run = admin
            .await_run(run_id, "end", Duration::from_secs(600), |run| {
                common::FINAL_STATUSES.contains(&run["status"].as_str().unwrap_or_default())
            })
            .await;
        assert_eq!(run["status"], "completed", "{run:#}");
    }
    let tlao = started.elapsed();
    drop(server);

    let out = dir.path().join("direct-out");
    std::fs::create_dir_all(&out).unwrap();
    let path = path_with_standin();
    let direct_started = Instant::now();
    std::thread::scope(|scope| {
        for share in [runs / 2, runs - runs / 2] {
            let (path, out, cwd) = (&path, &out, dir.path());
            scope.spawn(move || {
                for _ in 0..share {
                    let status = Command::new(fixtures().join("kiro-cli"))
                        .args(["chat", "--no-interactive", "--trust-all-tools"])
                        .arg(PROMPT)
                        .current_dir(cwd)
                        .env("PATH", path)
                        .env("TLAO_OUTPUT_DIR", out)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .expect("the stand-in runs");
                    assert!(status.success());
                }
            });
        }
    });
    let direct = direct_started.elapsed();

    let rate = |d: Duration| runs as f64 / d.as_secs_f64();
    let ratio = rate(tlao) / rate(direct);
    println!();
    println!("burst of {runs} runs, 2 at a time");
    println!(
        "tlao dev: {:>7.1} runs/s ({:.2} s; all posted after {:.2} s)",
        rate(tlao),
        tlao.as_secs_f64(),
        posted.as_secs_f64()
    );
    println!(
        "floor: 2 threads of direct spawns: {:>7.1} runs/s ({:.2} s)",
        rate(direct),
        direct.as_secs_f64()
    );
    println!(
        "ratio {ratio:.2}x the floor   goal >= 0.6x: {}",
        if ratio >= 0.6 { "met" } else { "MISSED" }
    );
    println!(
        "POST /runs during the burst: p50 {:.2} ms   p99 {:.2} ms   goal p50 < 1 ms: {}",
        percentile(&posts, 50.0).as_secs_f64() * 1e3,
        percentile(&posts, 99.0).as_secs_f64() * 1e3,
        if percentile(&posts, 50.0) < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
