//! Stopping an agent stops all of it: dropping the execution future kills the whole
//! process group, a background process left behind by an agent that exited is killed,
//! and the agent dies with the thread that started it even when no destructor runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{Dirs, RecordingSink, eventually, is_alive, read_pids, spec, stand_in_with_env};
use tlao_domain::{CommandConfig, ExecutionStatus, Executor, KiroConfig, PromptVia};
use tlao_worker_kiro::{CommandExecutor, KiroExecutor};

fn hanging_kiro(dirs: &Dirs) -> (KiroExecutor, std::path::PathBuf) {
    let pids = dirs.path("pids.txt");
    let binary = stand_in_with_env(
        &dirs.path("kiro-hang"),
        &[("KIRO_STANDIN_PIDS_FILE", pids.to_str().unwrap())],
    );
    let executor = KiroExecutor::new(KiroConfig {
        binary: binary.to_str().unwrap().to_owned(),
        agent: None,
        extra_args: Vec::new(),
        preflight: false,
        max_run_seconds: None,
        harness: Default::default(),
    });
    (executor, pids)
}

#[tokio::test]
async fn dropping_the_execution_future_kills_the_whole_process_group() {
    let dirs = Dirs::new();
    let (executor, pids_file) = hanging_kiro(&dirs);
    let sink = RecordingSink::default();
    let spec = spec("code.change", "hang");
    let execution = executor.execute(&spec, dirs.context(&sink));
    // Let it run until the stand-in and its child `sleep` are up, then drop it.
    let outcome = tokio::time::timeout(Duration::from_secs(2), execution).await;
    assert!(outcome.is_err(), "the stand-in should still be hanging");
    let (shell, child) = read_pids(&pids_file).expect("the stand-in wrote its pids");
    assert!(
        eventually(Duration::from_secs(5), || !is_alive(shell)
            && !is_alive(child))
        .await,
        "shell {shell} alive: {}, child sleep {child} alive: {}",
        is_alive(shell),
        is_alive(child)
    );
}

#[tokio::test]
async fn a_background_process_left_by_an_agent_that_exited_is_killed() {
    let dirs = Dirs::new();
    let pid_file = dirs.path("bg.pid");
    let executor = CommandExecutor::new(CommandConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                "sleep 3600 & echo $! > {}; echo started",
                pid_file.display()
            ),
        ],
        env: BTreeMap::new(),
        prompt_via: PromptVia::Arg,
        max_run_seconds: None,
    });
    let sink = RecordingSink::default();
    let started = Instant::now();
    let outcome = executor
        .execute(&spec("code.change", "x"), dirs.context(&sink))
        .await;
    assert_eq!(outcome.status, ExecutionStatus::Completed);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the background sleep held the output open for {:?}",
        started.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !is_alive(pid)).await,
        "sleep {pid} survived"
    );
}

#[test]
fn the_agent_dies_with_the_thread_that_started_it_even_without_destructors() {
    let dirs = Dirs::new();
    let (executor, pids_file) = hanging_kiro(&dirs);
    let thread_dirs_work = dirs.work.clone();
    let thread_dirs_out = dirs.out.clone();
    let pids_for_thread = pids_file.clone();
    // A "worker" thread starts the agent, then vanishes without running any destructor
    // of the execution, as if the worker had been killed with SIGKILL. It says which
    // cgroup the agent's tree was given, for the test to remove.
    let cgroup = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cgroup = runtime.block_on(async move {
            let sink: &'static RecordingSink = Box::leak(Box::default());
            let spec: &'static tlao_domain::TaskSpec =
                Box::leak(Box::new(spec("code.change", "hang")));
            let run_id: &'static tlao_domain::RunId = Box::leak(Box::new(tlao_domain::RunId::new(
                tlao_domain::Ulid::from_parts(1, 1),
            )));
            let ws: &'static tlao_domain::WorkspaceId = Box::leak(Box::new(
                tlao_domain::WorkspaceId::new(tlao_domain::Ulid::from_parts(1, 2)),
            ));
            let work: &'static std::path::Path = Box::leak(thread_dirs_work.into_boxed_path());
            let out: &'static std::path::Path = Box::leak(thread_dirs_out.into_boxed_path());
            let executor: &'static KiroExecutor = Box::leak(Box::new(executor));
            let context = tlao_domain::ExecutionContext {
                run_id,
                workspace_id: ws,
                workdir: work,
                outdir: out,
                deadline: tlao_domain::Timestamp::from_unix_millis(i64::MAX / 2),
                events: sink,
            };
            let mut execution = Box::pin(executor.execute(spec, context));
            let started = Instant::now();
            while read_pids(&pids_for_thread).is_none()
                && started.elapsed() < Duration::from_secs(5)
            {
                let _ = tokio::time::timeout(Duration::from_millis(50), execution.as_mut()).await;
            }
            let cgroup = read_pids(&pids_for_thread).and_then(|(shell, _)| cgroup_of(shell));
            std::mem::forget(execution);
            cgroup
        });
        std::mem::forget(runtime);
        cgroup
    })
    .join()
    .unwrap();
    let (shell, _child) = read_pids(&pids_file).expect("the stand-in wrote its pids");
    // Its own child is not covered by the death signal: the group and the tree's cgroup
    // are cleaned up at the end.
    let _cleanup = KillGroupOnDrop(shell, cgroup);
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(shell) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !is_alive(shell),
        "the agent {shell} outlived the thread that started it"
    );
}

/// The cgroup directory `pid` is in, below the cgroup v2 mount.
fn cgroup_of(pid: i32) -> Option<std::path::PathBuf> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo
        .lines()
        .find(|line| line.contains(" - cgroup2 "))?
        .split_whitespace()
        .nth(4)?;
    Some(std::path::Path::new(mount).join(path.trim_start_matches('/')))
}

/// Kills a process group when dropped, also when the test fails, and removes the
/// cgroup its tree was given (nothing ran the tree's destructor).
struct KillGroupOnDrop(i32, Option<std::path::PathBuf>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
        if let Some(dir) = &self.1 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
