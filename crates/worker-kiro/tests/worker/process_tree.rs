//! Nothing an agent starts outlives its run: a daemon the agent double-forks into a new
//! session (out of its process group, away from its parent) is dead when the run
//! completes, is cancelled or times out, and so is one whose main thread ended while
//! another runs on — checked in `/proc`, with the worker's run loop against a fake
//! control plane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use support::fake_api::{FakeApi, TOKEN};
use tlao_domain::{CommandConfig, ExecutorConfig, PromptVia, RunStatus, TaskType};
use tlao_worker_kiro::{RunSummary, run_once};

/// How long a killed process may take to be gone from `/proc`.
const DEATH: Duration = Duration::from_secs(3);

/// A `sleep` argument no other process has.
fn unique_sleep() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "600.{}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The live processes with `arg` among their arguments.
fn with_arg(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| support::is_alive(*pid as i32))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| bytes.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Waits up to `deadline` for `condition`.
async fn within(deadline: Duration, condition: impl Fn() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// A command executor whose agent double-forks `sleep <daemon>` into a new session,
/// waits until the daemon has touched `ready`, then runs `tail` (its own last act).
fn daemonizing_agent(daemon: &str, ready: &std::path::Path, tail: &str) -> ExecutorConfig {
    let ready = ready.display();
    ExecutorConfig::Command(CommandConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                r#"(exec "$(command -v setsid)" sh -c 'touch {ready}; exec sleep {daemon}' &)
while [ ! -e {ready} ]; do sleep 0.01; done
echo started
{tail}"#
            ),
        ],
        env: BTreeMap::new(),
        prompt_via: PromptVia::Arg,
        max_run_seconds: None,
    })
}

/// Runs the fake control plane's one run with a sandboxed worker under `work_root`, to
/// its end (within 20 s).
async fn run_to_its_end(api: &FakeApi, work_root: &std::path::Path) -> RunSummary {
    let config = support::sandboxed_worker(&api.url, TOKEN, work_root);
    tokio::time::timeout(Duration::from_secs(20), run_once(&config, Duration::ZERO))
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

/// Kills what a failing test left behind.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for arg in &self.0 {
            for pid in with_arg(arg) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_the_agent_started_dies_when_the_run_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = unique_sleep();
    let _cleanup = Cleanup(vec![daemon.clone()]);
    // The agent exits successfully as soon as its daemon is up.
    let api = FakeApi::start(
        TaskType::DocWrite,
        daemonizing_agent(
            &daemon,
            &support::agent_files(&tmp.path().join("runs")).join("ready"),
            "true",
        ),
        "x",
        None,
        60_000,
    );

    let summary = run_to_its_end(&api, &tmp.path().join("runs")).await;

    assert_eq!(summary.status, Some(RunStatus::Completed));
    assert!(
        within(DEATH, || with_arg(&daemon).is_empty()).await,
        "the daemon {:?} outlived its completed run",
        with_arg(&daemon)
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_the_agent_started_dies_when_the_run_is_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, agent) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), agent.clone()]);
    let api = FakeApi::start(
        TaskType::DocWrite,
        daemonizing_agent(
            &daemon,
            &support::agent_files(&tmp.path().join("runs")).join("ready"),
            &format!("exec sleep {agent}"),
        ),
        "x",
        None,
        60_000,
    );
    let mut config = support::sandboxed_worker(&api.url, TOKEN, &tmp.path().join("runs"));
    config.heartbeat_interval = Duration::from_millis(200);
    let run = tokio::spawn({
        let config = config.clone();
        async move { run_once(&config, Duration::ZERO).await }
    });
    assert!(
        within(Duration::from_secs(10), || !with_arg(&daemon).is_empty()
            && !with_arg(&agent).is_empty())
        .await
    );

    api.with(|s| s.status = Some(RunStatus::Cancelled));
    let summary = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(summary.status, Some(RunStatus::Cancelled));
    assert!(
        within(DEATH, || with_arg(&daemon).is_empty()
            && with_arg(&agent).is_empty())
        .await,
        "alive after the cancel: daemon {:?}, agent {:?}",
        with_arg(&daemon),
        with_arg(&agent)
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_the_agent_started_dies_when_the_run_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, agent) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), agent.clone()]);
    let api = FakeApi::start(
        TaskType::DocWrite,
        daemonizing_agent(
            &daemon,
            &support::agent_files(&tmp.path().join("runs")).join("ready"),
            &format!("exec sleep {agent}"),
        ),
        "x",
        None,
        2_000,
    );
    let config = support::sandboxed_worker(&api.url, TOKEN, &tmp.path().join("runs"));
    let started = Instant::now();

    let summary = tokio::time::timeout(Duration::from_secs(10), run_once(&config, Duration::ZERO))
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(summary.status, Some(RunStatus::TimedOut));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        within(DEATH, || with_arg(&daemon).is_empty()
            && with_arg(&agent).is_empty())
        .await,
        "alive after the timeout: daemon {:?}, agent {:?}",
        with_arg(&daemon),
        with_arg(&agent)
    );
    api.stop().await;
}

/// The system's Python 3, which a sandboxed agent can run (a `python3` first on `PATH`
/// may be a version manager's shim reading its own directory, which the sandbox hides).
fn system_python() -> std::path::PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists())
        .expect("the tests need python3 in /usr/bin or /usr/local/bin")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_main_thread_exited_while_another_runs_on_dies_with_its_run() {
    let tmp = tempfile::tempdir().unwrap();
    let files = support::agent_files(&tmp.path().join("runs"));
    let pid_file = files.join("pid");
    // The agent double-forks a Python daemon into a new session; the daemon starts a
    // sleeping thread, says its pid and ends its main thread: `/proc` shows a zombie,
    // `cgroup.kill` signals that exited thread alone, yet the process runs on.
    let script = format!(
        r#"import ctypes, os, threading, time
threading.Thread(target=lambda: time.sleep(600), daemon=True).start()
open({pid_file:?} + ".tmp", "w").write(str(os.getpid()))
os.rename({pid_file:?} + ".tmp", {pid_file:?})
ctypes.CDLL(None).pthread_exit(None)"#
    );
    let agent = ExecutorConfig::Command(CommandConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                r#"(exec "$(command -v setsid)" {python} -c "$0" &)
n=0
while [ ! -e {pid} ]; do
  n=$((n + 1)); [ $n -lt 1000 ] || {{ echo "the daemon did not start" >&2; exit 1; }}
  sleep 0.01
done
echo started"#,
                pid = pid_file.display(),
                python = system_python().display(),
            ),
            script,
        ],
        env: BTreeMap::new(),
        prompt_via: PromptVia::Arg,
        max_run_seconds: None,
    });
    let api = FakeApi::start(TaskType::DocWrite, agent, "x", None, 60_000);

    let summary = run_to_its_end(&api, &tmp.path().join("runs")).await;

    assert_eq!(
        summary.status,
        Some(RunStatus::Completed),
        "{:?}",
        api.log_lines()
    );
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let _cleanup = KillOnDrop(pid);
    assert!(
        within(DEATH, || !support::is_alive(pid as i32)).await,
        "a thread of the daemon {pid} outlived its completed run"
    );
    api.stop().await;
}

/// Kills a process when dropped, so a failing test leaves nothing behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
