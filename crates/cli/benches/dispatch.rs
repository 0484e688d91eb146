//! Dispatch overhead of `tlao dev`: the time from `POST /runs` to the agent process
//! starting, next to the time a direct spawn of the same agent takes to start.
//!
//! The agent is the stand-in `kiro-cli` (`tests/fixtures/kiro-cli`), which appends the
//! wall-clock time it started (epoch microseconds) to `KIRO_STANDIN_STARTED_FILE`.
//! Runs are created one after another, each awaited to its end, so every measurement
//! sees an idle system. The dispatched start is split into phases with the run's own
//! timestamps (whole milliseconds, so each phase is ±1 ms): `POST` → `createdAt` (the
//! API), `createdAt` → `startedAt` (the dispatcher leasing it), `startedAt` → agent
//! start (the worker process: start-up, assignment, TaskSpec download, run directory,
//! spawn).
//!
//! Measured twice: with the default standby worker (`worker.standby = 1`) and without
//! (`0`, each worker started at dispatch), each on its own `tlao dev`.
//!
//! `cargo bench -p tlao-cli --bench dispatch` (release build). Goal (issue 18): p50
//! overhead ≤ 3 ms, p99 ≤ 10 ms over the direct spawn. Set `DISPATCH_RUNS` to change the
//! number of runs (≥ 50), `DISPATCH_VERBOSE=1` to print every run's phases (a bimodal
//! worker phase, e.g. half the runs 40 ms slower, points at Nagle's algorithm meeting a
//! delayed ACK), and `DISPATCH_LOG=FILTER` to see the server's and its workers'
//! timestamped logs at that level.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{DevServer, fixtures, path_with_standin};
use serde_json::json;

const DEFAULT_RUNS: usize = 60;
const PROMPT: &str = "lines:1";

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The start times the stand-in recorded so far.
fn started(file: &Path) -> Vec<i64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Waits until the stand-in recorded its `n`-th start; returns that time.
async fn await_start(file: &Path, n: usize) -> i64 {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(at) = started(file).get(n - 1) {
            return *at;
        }
        assert!(Instant::now() < end, "the stand-in did not start run {n}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Microseconds since midnight UTC of an RFC 3339 `...THH:MM:SS.mmmZ` timestamp (the
/// runs of a bench are minutes apart, so phases are differences modulo a day).
fn micros_of_day(rfc3339: &str) -> i64 {
    let time = rfc3339
        .split('T')
        .nth(1)
        .expect("a time")
        .trim_end_matches('Z');
    let mut parts = time.split(':');
    let hours: i64 = parts.next().unwrap().parse().unwrap();
    let minutes: i64 = parts.next().unwrap().parse().unwrap();
    let seconds: f64 = parts.next().unwrap().parse().unwrap();
    (hours * 3600 + minutes * 60) * 1_000_000 + (seconds * 1_000_000.0).round() as i64
}

const DAY_MICROS: i64 = 86_400_000_000;

/// `to - from`, both in microseconds of the day, across midnight too. A phase that ends
/// at a run's timestamp (whole milliseconds, truncated) may come out up to 1 ms below
/// zero; it is kept signed.
fn phase(from_of_day: i64, to_of_day: i64) -> i64 {
    let forward = (to_of_day - from_of_day).rem_euclid(DAY_MICROS);
    if forward > DAY_MICROS / 2 {
        forward - DAY_MICROS
    } else {
        forward
    }
}

/// Microseconds as milliseconds.
fn ms(micros: i64) -> f64 {
    micros as f64 / 1000.0
}

/// The nearest-rank percentile `p` of `values`.
fn percentile(values: &[i64], p: f64) -> i64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints the percentiles of `values` (microseconds) in milliseconds.
fn report(name: &str, values: &[i64]) {
    println!(
        "{name:<36} p50 {:>6.2} ms   p99 {:>6.2} ms   min {:>6.2} ms   max {:>6.2} ms",
        ms(percentile(values, 50.0)),
        ms(percentile(values, 99.0)),
        ms(*values.iter().min().unwrap()),
        ms(*values.iter().max().unwrap())
    );
}

fn main() {
    let runs: usize = std::env::var("DISPATCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RUNS)
        .max(50);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(bench(runs));
}

/// The phases of dispatched runs, in microseconds.
#[derive(Default)]
struct Dispatched {
    total: Vec<i64>,
    api: Vec<i64>,
    lease: Vec<i64>,
    worker: Vec<i64>,
}

/// `runs` runs through a `tlao dev` on `dir` with `env`, one after another.
async fn dispatched(dir: &Path, runs: usize, env: &[(&str, &str)], verbose: bool) -> Dispatched {
    let started_file = dir.join("started");
    let mut all = vec![("KIRO_STANDIN_STARTED_FILE", started_file.to_str().unwrap())];
    all.extend_from_slice(env);
    // `DISPATCH_LOG=debug` (a `TLAO_LOG` filter): the server's and its workers' logs,
    // timestamped, on standard error, to see where a phase spends its time.
    let log = std::env::var("DISPATCH_LOG").ok();
    if let Some(filter) = &log {
        all.push(("TLAO_LOG", filter.as_str()));
    }
    let server = DevServer::with_standin(dir, &all);
    let admin = server.admin().await;
    let ws = admin.create_workspace("bench").await;

    // A first run warms the page cache and the server up; it is not measured.
    let mut expected = 0;
    let mut out = Dispatched::default();
    for i in 0..=runs {
        let (code, task) = admin
            .post(
                "/tasks",
                json!({"workspaceId": ws, "taskType": "spec.generate", "input": {"prompt": PROMPT}}),
            )
            .await;
        assert_eq!(code, 201, "{task}");
        let posted_at = now_micros();
        let (code, run) = admin.post("/runs", json!({"taskId": task["taskId"]})).await;
        assert_eq!(code, 201, "{run}");
        expected += 1;
        let agent_at = await_start(&started_file, expected).await;
        let run_id = run["runId"].as_str().unwrap();
        let run = admin.await_final(run_id).await;
        assert_eq!(run["status"], "completed", "{run:#}");
        if i == 0 {
            continue;
        }
        out.total.push(agent_at - posted_at);
        let created = micros_of_day(run["createdAt"].as_str().unwrap());
        let leased = micros_of_day(run["startedAt"].as_str().unwrap());
        // Truncated to whole milliseconds like the run's own timestamps it is compared with.
        let posted = (posted_at - posted_at.rem_euclid(1000)).rem_euclid(DAY_MICROS);
        let agent = agent_at.rem_euclid(DAY_MICROS);
        out.api.push(phase(posted, created));
        out.lease.push(phase(created, leased));
        out.worker.push(phase(leased, agent));
        if verbose {
            eprintln!(
                "run {i:>3}: POST -> agent {:>6.2} ms (API {:>5.2}, lease {:>5.2}, worker {:>6.2})",
                ms(agent_at - posted_at),
                ms(phase(posted, created)),
                ms(phase(created, leased)),
                ms(phase(leased, agent))
            );
        }
    }
    out
}

async fn bench(runs: usize) {
    let verbose = std::env::var_os("DISPATCH_VERBOSE").is_some();
    let dir = tempfile::tempdir().unwrap();
    let (with_standby, without) = (dir.path().join("standby"), dir.path().join("cold"));
    std::fs::create_dir_all(&with_standby).unwrap();
    std::fs::create_dir_all(&without).unwrap();
    let standby = dispatched(&with_standby, runs, &[], verbose).await;
    let cold = dispatched(&without, runs, &[("TLAO_WORKER__STANDBY", "0")], verbose).await;

    let direct_file = dir.path().join("direct-started");
    let out = dir.path().join("direct-out");
    std::fs::create_dir_all(&out).unwrap();
    let path = path_with_standin();
    let mut direct = Vec::with_capacity(runs);
    for i in 0..=runs {
        let spawned_at = now_micros();
        let status = Command::new(fixtures().join("kiro-cli"))
            .args([
                "chat",
                "--no-interactive",
                "--trust-all-tools",
                "--wrap",
                "never",
            ])
            .arg(PROMPT)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("KIRO_STANDIN_STARTED_FILE", &direct_file)
            .env("TLAO_OUTPUT_DIR", &out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the stand-in runs");
        assert!(status.success());
        let agent_at = *started(&direct_file).last().expect("a start time");
        if i > 0 {
            direct.push(agent_at - spawned_at);
        }
    }

    println!();
    println!("dispatch overhead, {runs} runs each (after one warm-up run)");
    let direct_p = (percentile(&direct, 50.0), percentile(&direct, 99.0));
    for (name, d) in [
        ("worker.standby = 1 (default)", &standby),
        ("worker.standby = 0", &cold),
    ] {
        println!("tlao dev, {name}");
        report("  POST /runs -> agent start", &d.total);
        report("    POST -> createdAt (API)", &d.api);
        report("    createdAt -> startedAt (lease)", &d.lease);
        report("    startedAt -> agent start (worker)", &d.worker);
        let (p50, p99) = (
            percentile(&d.total, 50.0) - direct_p.0,
            percentile(&d.total, 99.0) - direct_p.1,
        );
        println!(
            "  overhead over the floor            p50 {:>6.2} ms   p99 {:>6.2} ms   ratio p50 {:.2}x the floor   goal p50 <= 3 ms, p99 <= 10 ms: {}",
            ms(p50),
            ms(p99),
            percentile(&d.total, 50.0) as f64 / direct_p.0.max(1) as f64,
            if p50 <= 3000 && p99 <= 10_000 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    report("floor: direct spawn -> agent start", &direct);
}
