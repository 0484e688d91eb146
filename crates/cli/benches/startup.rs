//! `tlao dev` start-up and idle footprint: the time from spawning `tlao dev` to its
//! `Ready:` line, on a fresh data dir (first start: database, keys, bootstrap) and on
//! the same data dir again (a restart), next to the floor of starting the same binary
//! at all (`tlao --version`, spawn to exit); and the resident memory of the idle server
//! (and of its standby worker) after a few seconds.
//!
//! Goals (issue 18): ready ≤ 100 ms; idle RSS ≤ 30 MB.
//!
//! `cargo bench -p tlao-cli --bench startup` (release build). `STARTUP_RUNS` (default
//! 10) starts of each kind.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DevServer, processes, tlao_bin};

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident memory of `pid` in MiB (`VmRSS`).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let runs: usize = std::env::var("STARTUP_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .max(3);
    let dir = tempfile::tempdir().unwrap();

    let mut floor = Vec::new();
    for _ in 0..=runs {
        let at = Instant::now();
        let status = Command::new(tlao_bin())
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        floor.push(at.elapsed());
    }
    floor.remove(0);

    let (mut fresh, mut again) = (Vec::new(), Vec::new());
    let mut rss = (0.0, 0.0);
    for i in 0..=runs {
        let data = dir.path().join(format!("data-{i}"));
        let config = dir.path().join(format!("config-{i}"));
        let at = Instant::now();
        let server = DevServer::start(&data, &config, &[]);
        let first = at.elapsed();
        if i == runs {
            // Idle for a while: the standby started, the background loops ticked.
            std::thread::sleep(Duration::from_secs(3));
            let standby = processes::standbys_under(&server.work_root());
            rss = (
                rss_mib(server.pid().unwrap()),
                standby.first().map_or(0.0, |pid| rss_mib(*pid)),
            );
        }
        drop(server);
        let at = Instant::now();
        let server = DevServer::start(&data, &config, &[]);
        let second = at.elapsed();
        drop(server);
        if i > 0 {
            fresh.push(first);
            again.push(second);
        }
    }

    let floor = median(&mut floor);
    let (fresh, again) = (median(&mut fresh), median(&mut again));
    println!();
    println!("tlao dev start-up, median of {runs}");
    println!(
        "fresh data dir: spawn -> Ready {:>7.1} ms   {:.1}x the floor   goal <= 100 ms: {}",
        ms(fresh),
        ms(fresh) / ms(floor),
        if fresh <= Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "restart:        spawn -> Ready {:>7.1} ms   {:.1}x the floor   goal <= 100 ms: {}",
        ms(again),
        ms(again) / ms(floor),
        if again <= Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("floor: tlao --version, spawn -> exit {:>5.1} ms", ms(floor));
    println!(
        "idle RSS: server {:.1} MiB   goal <= 30 MB: {}   (its standby worker: {:.1} MiB)",
        rss.0,
        if rss.0 * 1.048_576 <= 30.0 {
            "met"
        } else {
            "MISSED"
        },
        rss.1
    );
}
