//! Stopping `tlao dev` with SIGTERM or Ctrl-C, with real processes and signals: running
//! runs may finish within the grace period, the rest are cancelled with the reason in
//! their log and their processes end, queued runs stay queued for the next start, a
//! second signal stops at once, and no run is left `running`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::processes::{self, await_death};
use common::{Api, DevServer, PATIENCE};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// A `command` executor for `doc.write` named `name` running `script` with `sh -c`.
async fn add_shell_executor(api: &Api, name: &str, script: &str) {
    let (status, body) = api
        .post(
            "/executors",
            json!({
                "name": name,
                "kind": "command",
                "taskTypes": ["doc.write"],
                "config": {"command": ["sh", "-c", script, name, "{workdir}", "{outdir}"]},
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn start(api: &Api, executor: &str) -> String {
    let (_, workspaces) = api.get("/workspaces").await;
    let ws = workspaces["items"][0]["workspaceId"]
        .as_str()
        .unwrap()
        .to_owned();
    api.start_run(
        json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "work"}}),
        Some(executor),
    )
    .await
}

async fn await_status(api: &Api, run_id: &str, status: &str) -> Value {
    api.await_run(run_id, &format!("become {status}"), PATIENCE, |run| {
        run["status"] == status
    })
    .await
}

/// A `sleep` argument no other process has: `sleep` takes fractional seconds.
fn unique_sleep() -> String {
    format!("600.{}", std::process::id())
}

async fn log_of(api: &Api, run_id: &str) -> String {
    api.run(run_id).await["logs"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_lets_a_short_run_finish_and_leaves_queued_runs_for_its_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TLAO_WORKER__MAX_LOCAL_WORKERS", "1"),
        ("TLAO_SERVER__SHUTDOWN_GRACE_SECONDS", "20"),
    ];
    let mut server = DevServer::with_standin(dir.path(), &env);
    let api = server.admin().await;
    add_shell_executor(&api, "brief", "sleep 2; echo done > \"$2/done.txt\"").await;
    let first = start(&api, "brief").await;
    await_status(&api, &first, "running").await;
    let queued = start(&api, "brief").await;

    let (code, took) = server.stop_with(Signal::SIGTERM, Duration::from_secs(20));

    assert_eq!(code, Some(0), "a graceful stop exits 0");
    assert!(took < Duration::from_secs(15), "stopped in {took:?}");
    let restarted = DevServer::with_standin(dir.path(), &env);
    let api = restarted.admin().await;
    let finished = api.run(&first).await;
    assert_eq!(finished["status"], "completed", "{finished:#}");
    let next = api.await_final(&queued).await;
    assert_eq!(next["status"], "completed", "{next:#}");
    assert!(
        next["startedAt"].as_str().unwrap() > finished["finishedAt"].as_str().unwrap(),
        "the queued run was not started by the stopping server: {next:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_outliving_the_grace_period_is_cancelled_with_the_reason_and_its_processes_end() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TLAO_SERVER__SHUTDOWN_GRACE_SECONDS", "1"),
        ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3"),
    ];
    let mut server = DevServer::with_standin(dir.path(), &env);
    let api = server.admin().await;
    let marker = unique_sleep();
    add_shell_executor(&api, "endless", &format!("echo started; sleep {marker}")).await;
    let run_id = start(&api, "endless").await;
    await_status(&api, &run_id, "running").await;
    let sleeper = loop {
        if let Some(pid) = processes::with_arg(&marker).first() {
            break *pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let worker = processes::worker_of(&server.data_dir, &run_id).expect("its worker runs");

    let (code, took) = server.stop_with(Signal::SIGTERM, Duration::from_secs(20));

    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    await_death(sleeper, "the agent's sleep", Duration::from_secs(5)).await;
    await_death(worker, "the worker", Duration::from_secs(5)).await;
    let restarted = DevServer::with_standin(dir.path(), &env);
    let api = restarted.admin().await;
    let run = api.run(&run_id).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let log = log_of(&api, &run_id).await;
    assert!(
        log.contains("run cancelled: the server is stopping and the run did not finish within its 1 s grace period"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_still_leaves_no_run_running() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TLAO_SERVER__SHUTDOWN_GRACE_SECONDS", "120"),
        ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3"),
    ];
    let mut server = DevServer::with_standin(dir.path(), &env);
    let api = server.admin().await;
    let marker = unique_sleep();
    add_shell_executor(&api, "endless", &format!("sleep {marker}")).await;
    let run_id = start(&api, "endless").await;
    await_status(&api, &run_id, "running").await;

    server.send(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, took) = server.stop_with(Signal::SIGINT, Duration::from_secs(20));

    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(8),
        "stopped in {took:?} after the second signal"
    );
    let restarted = DevServer::with_standin(dir.path(), &env);
    let api = restarted.admin().await;
    let run = api.run(&run_id).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert!(
        log_of(&api, &run_id)
            .await
            .contains("run cancelled: the server was stopped at once (a second signal)")
    );
}
