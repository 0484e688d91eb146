//! Chaos: `tlao dev` killed with SIGKILL while runs are running and queued, then started
//! again on the same data dir and port. Every run ends within its bound, each is
//! completed exactly once (one terminal status event, nothing stored after it), no
//! process of any run is left, and the slots are free for new runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::processes::{self, workers_under};
use common::{Api, DevServer, FINAL_STATUSES};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const RUNS: usize = 5;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(api: &Api) -> String {
    let (_, workspaces) = api.get("/workspaces").await;
    let ws = workspaces["items"][0]["workspaceId"].clone();
    api.start_run(
        json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "count"}}),
        Some("steady"),
    )
    .await
}

/// Checks one finished run's stored history: exactly one terminal status event, and it
/// is the last event before `end`.
fn assert_ended_once(run_id: &str, events: &[(String, Value)]) {
    let statuses: Vec<(usize, &str)> = events
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name == "status")
        .map(|(i, (_, data))| (i, data["status"].as_str().unwrap_or_default()))
        .collect();
    let terminal: Vec<&(usize, &str)> = statuses
        .iter()
        .filter(|(_, status)| FINAL_STATUSES.contains(status))
        .collect();
    assert_eq!(terminal.len(), 1, "run {run_id}: {statuses:?}");
    let (at, _) = terminal[0];
    let after: Vec<&(String, Value)> = events[at + 1..]
        .iter()
        .filter(|(name, _)| name != "end")
        .collect();
    assert!(
        after.is_empty(),
        "run {run_id} gained events after its end: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarted_ends_every_run_once_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (data, config) = (dir.path().join("data"), dir.path().join("config"));
    let path = common::path_with_standin();
    let env = [
        ("PATH", path.as_str()),
        ("TLAO_WORKER__MAX_LOCAL_WORKERS", "2"),
        ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3"),
    ];
    let mut server = DevServer::start_on(&addr, &data, &config, &env);
    let api = server.admin().await;
    let (status, body) = api
        .post(
            "/executors",
            json!({"name": "steady", "kind": "command", "taskTypes": ["doc.write"],
                   "config": {"command": ["sh", "-c",
                       "i=1; while [ $i -le 20 ]; do echo line $i; i=$((i+1)); sleep 0.1; done; echo ok > \"$1/out.txt\"",
                       "steady", "{outdir}"]}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push(start(&api).await);
    }
    let end = Instant::now() + Duration::from_secs(30);
    while workers_under(&server.work_root()).len() < 2 {
        assert!(Instant::now() < end, "two workers did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (_, _) = server.stop_with(Signal::SIGKILL, Duration::from_secs(10));
    let restarted = DevServer::start_on(&addr, &data, &config, &env);
    let api = restarted.admin().await;

    let bound = Duration::from_secs(45);
    let started = Instant::now();
    for run_id in &runs {
        let run = api
            .await_run(run_id, "end after the restart", bound, |run| {
                FINAL_STATUSES.contains(&run["status"].as_str().unwrap_or_default())
            })
            .await;
        assert!(
            ["completed", "failed"].contains(&run["status"].as_str().unwrap()),
            "{run:#}"
        );
        assert_ended_once(run_id, &api.events(run_id).await);
    }
    let took = started.elapsed();
    let completed = {
        let mut n = 0;
        for run_id in &runs {
            n += usize::from(api.run(run_id).await["status"] == "completed");
        }
        n
    };
    assert!(
        completed >= RUNS - 2,
        "only {completed} of {RUNS} completed"
    );
    let end = Instant::now() + Duration::from_secs(10);
    while !workers_under(&restarted.work_root()).is_empty() {
        assert!(
            Instant::now() < end,
            "workers left: {:?}",
            workers_under(&restarted.work_root())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        processes::with_arg("steady").is_empty(),
        "an agent outlived its run"
    );
    // The killed server's standby worker died with it: only the new server's is left.
    let standbys = processes::standbys_under(&restarted.work_root());
    assert!(standbys.len() <= 1, "standby workers: {standbys:?}");
    // The slots are free: a new run is started and completes.
    let next = start(&api).await;
    assert_eq!(api.await_final(&next).await["status"], "completed");
    eprintln!("all {RUNS} runs ended {took:?} after the restart; {completed} completed");
}
