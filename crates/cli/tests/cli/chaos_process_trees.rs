//! Process trees end with their run, whatever happens to the worker or the server: real
//! `tlao dev` processes, real signals, `/proc` scanned for every process of the run.
//!
//! Each run's agent is a `command` executor that double-forks a daemon `sleep` into a
//! new session (out of the agent's process group and away from its parent) and then
//! sleeps itself; all of them carry a marker unique to the test in their arguments.
//!
//! - `kill -9` the worker: the run fails as `worker_lost` at once and its agent and the
//!   agent's daemon die with it.
//! - `SIGSTOP` the worker: the reaper fails the run as `worker_lost` after the heartbeat
//!   timeout, the launcher kills the stopped worker and its tree, and the next run takes
//!   the freed slot and completes.
//! - `kill -9` the server: its worker dies with it; a restart on the same data dir
//!   fails the run as `worker_lost` before it is ready (not after the heartbeat timeout)
//!   and ends what was left of the tree.
//!
//! The `kill -9` scenarios also run without cgroups (`TLAO_PROCESS_TREE=fallback`: the
//! trees are found through `/proc`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::processes::{self, await_death};
use common::{Api, DevServer, PATIENCE, POLL};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// How long a killed process may take to be gone.
const DEATH: Duration = Duration::from_secs(5);

/// A marker no other test's processes carry.
fn unique_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("600.{}{nanos:09}", std::process::id())
}

/// The live processes whose arguments contain `marker`.
fn marked(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| processes::is_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// What a failing test shows of a process: its stat line, cgroup, the tree markers in
/// its environment, and its command line.
fn describe(pid: u32) -> String {
    let read = |file: &str| std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let environ = read("environ");
    let markers: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|entry| entry.starts_with(b"TLAO_PROCESS_TREES="))
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect();
    format!(
        "pid {pid}: stat {:?}; cgroup {:?}; markers {markers:?}; cmdline {:?}",
        String::from_utf8_lossy(&read("stat")).trim(),
        String::from_utf8_lossy(&read("cgroup")).trim(),
        String::from_utf8_lossy(&read("cmdline")).replace('\0', " "),
    )
}

/// Waits until `count` processes carry `marker`: the agent, its daemon, its own sleep.
async fn await_marked(marker: &str, count: usize) {
    let end = Instant::now() + PATIENCE;
    while marked(marker).len() < count {
        assert!(
            Instant::now() < end,
            "the agent's {count} processes did not start within {PATIENCE:?}; found {:?}",
            marked(marker)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until no process carries `marker`; returns how long that took.
async fn await_none_marked(marker: &str, deadline: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = marked(marker);
        if left.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "processes of the run are alive {deadline:?} later: {:#?}",
            left.iter().map(|pid| describe(*pid)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills every process carrying the marker when dropped, so a failing test leaves
/// nothing behind.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in marked(&self.0) {
            processes::kill_now(pid);
        }
    }
}

/// Registers the executor `hang`: an agent that double-forks `sleep <marker>` into a
/// new session, then runs `sleep <marker>` itself.
async fn register_hang(admin: &Api, marker: &str) {
    let script = format!(
        r#"(exec "$(command -v setsid)" sleep {marker} &) ; echo started ; sleep {marker}"#
    );
    let (status, body) = admin
        .post(
            "/executors",
            json!({
                "name": "hang",
                "kind": "command",
                "taskTypes": ["doc.write"],
                "config": {"command": ["sh", "-c", script]}
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Queues a `doc.write` run in `workspace` on `executor`.
async fn start(admin: &Api, workspace: &str, executor: &str) -> String {
    admin
        .start_run(
            json!({"workspaceId": workspace, "taskType": "doc.write", "input": {"prompt": "x"}}),
            Some(executor),
        )
        .await
}

fn status(run: &Value) -> &str {
    run["status"].as_str().unwrap_or_default()
}

fn assert_lost(run: &Value) {
    assert_eq!(status(run), "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "worker_lost", "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_takes_its_agent_and_the_agents_daemon_with_it() {
    a_killed_worker_takes_its_tree_with_it("auto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_a_worker_killed_with_sigkill_still_takes_its_tree_with_it() {
    a_killed_worker_takes_its_tree_with_it("fallback").await;
}

/// `kill -9` the worker with process trees as `containment` says (`TLAO_PROCESS_TREE`).
async fn a_killed_worker_takes_its_tree_with_it(containment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker();
    let _cleanup = Cleanup(marker.clone());
    // A heartbeat timeout far beyond the bounds below: what ends the run is the exit.
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "60"),
            ("TLAO_PROCESS_TREE", containment),
        ],
    );
    let admin = server.admin().await;
    let ws = admin.create_workspace("chaos").await;
    register_hang(&admin, &marker).await;
    let run_id = start(&admin, &ws, "hang").await;
    await_marked(&marker, 3).await;
    let worker = processes::worker_of(&server.data_dir, &run_id).expect("a worker runs the run");

    let killed_at = Instant::now();
    processes::kill_now(worker);
    let run = admin
        .await_run(&run_id, "fail after its worker was killed", DEATH, |run| {
            status(run) != "running"
        })
        .await;
    let failed_after = killed_at.elapsed();
    await_none_marked(&marker, DEATH).await;
    let gone_after = killed_at.elapsed();

    assert_lost(&run);
    assert!(!processes::is_alive(worker));
    eprintln!(
        "measured ({containment}): worker killed -> run worker_lost {failed_after:?}, every process of the run gone {gone_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_is_killed_with_its_tree_when_its_run_is_lost_and_its_slot_runs_the_next_run()
 {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker();
    let _cleanup = Cleanup(marker.clone());
    let heartbeat_timeout = Duration::from_secs(3);
    let server = DevServer::with_standin(
        dir.path(),
        &[
            ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "3"),
            ("TLAO_WORKER__MAX_LOCAL_WORKERS", "1"),
        ],
    );
    let admin = server.admin().await;
    let ws = admin.create_workspace("chaos").await;
    register_hang(&admin, &marker).await;
    let hung = start(&admin, &ws, "hang").await;
    await_marked(&marker, 3).await;
    let next = start(&admin, &ws, "shell").await;
    let worker = processes::worker_of(&server.data_dir, &hung).expect("a worker runs the run");

    let stopped_at = Instant::now();
    processes::signal(worker, Signal::SIGSTOP);
    let run = admin
        .await_run(
            &hung,
            "fail after its worker was stopped",
            heartbeat_timeout + Duration::from_secs(5),
            |run| status(run) != "running",
        )
        .await;
    let failed_after = stopped_at.elapsed();
    assert_lost(&run);
    await_death(worker, "the stopped worker", DEATH).await;
    await_none_marked(&marker, DEATH).await;
    let killed_after = stopped_at.elapsed();
    let next_run = admin
        .await_run(&next, "complete in the freed slot", PATIENCE, |run| {
            status(run) != "queued" && status(run) != "running"
        })
        .await;

    assert_eq!(status(&next_run), "completed", "{next_run:#}");
    eprintln!(
        "measured: worker stopped -> run worker_lost {failed_after:?}, worker and tree dead {killed_after:?}, next run completed {:?}",
        stopped_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_sigkill_leaves_nothing_running_and_its_restart_fails_the_run_at_once()
{
    a_killed_server_is_recovered_from("auto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_the_restart_of_a_killed_server_still_ends_what_it_left() {
    a_killed_server_is_recovered_from("fallback").await;
}

/// `kill -9` the server and restart it, with process trees as `containment` says.
async fn a_killed_server_is_recovered_from(containment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = (dir.path().join("data"), dir.path().join("config"));
    let marker = unique_marker();
    let _cleanup = Cleanup(marker.clone());
    // The heartbeat timeout is far beyond the bound: only the launcher's records can
    // fail the run that fast.
    let env = [
        ("TLAO_WORKER__HEARTBEAT_TIMEOUT_SECONDS", "120"),
        ("TLAO_PROCESS_TREE", containment),
    ];
    let mut first = DevServer::start(&data, &config, &env);
    let admin = first.admin().await;
    let ws = admin.create_workspace("chaos").await;
    register_hang(&admin, &marker).await;
    let run_id = start(&admin, &ws, "hang").await;
    await_marked(&marker, 3).await;
    let worker = processes::worker_of(&first.data_dir, &run_id).expect("a worker runs the run");

    first.stop_with(Signal::SIGKILL, DEATH);
    // The worker dies with its server; the agent with its worker.
    await_death(worker, "the worker of the killed server", DEATH).await;
    let restarted_at = Instant::now();
    let second = DevServer::start(&data, &config, &env);
    let ready_after = restarted_at.elapsed();
    let admin = second.admin().await;
    let run = admin.run(&run_id).await;
    let failed_after = restarted_at.elapsed();
    let gone_after = await_none_marked(&marker, DEATH).await;

    assert_lost(&run);
    assert!(
        failed_after < Duration::from_secs(20),
        "the run was judged {failed_after:?} after the restart"
    );
    assert!(
        !data.join("workers").join(format!("{run_id}.json")).exists(),
        "the gone worker's record is removed"
    );
    eprintln!(
        "measured ({containment}): restart ready {ready_after:?}, run already worker_lost when first read {failed_after:?} after the restart (heartbeat timeout 120 s), leftovers gone {gone_after:?} later"
    );
}
