//! Looking at and ending the processes a test started, through `/proc` (Linux): the
//! workers `tlao dev` launches, the stand-in `kiro-cli` they run, and its `sleep`.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The fields of `/proc/<pid>/stat` after the command name: whether it runs (its state
/// is not a zombie's, or it still has more than its exited main thread), then its
/// parent pid.
fn stat_fields(pid: u32) -> Option<(bool, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 3 (state), 4 (ppid) and 20 (num_threads) of proc(5).
    let state = fields.first()?.chars().next()?;
    let parent = fields.get(1)?.parse().ok()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    Some((!matches!(state, 'Z' | 'X' | 'x') || threads > 1, parent))
}

/// Whether `pid` is a live process. A zombie counts as dead: it has exited and only
/// waits for a parent to reap it (a container's init may never do that); but not one
/// whose main thread alone has exited while another thread runs on.
pub fn is_alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|(runs, _)| runs)
}

/// The parent of `pid`, while it exists.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).map(|(_, parent)| parent)
}

/// Every process id in `/proc`.
fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The arguments of `pid`.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The live processes one of whose arguments is exactly `arg` (a marker a test put in
/// a command line).
pub fn with_arg(arg: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| is_alive(*pid) && cmdline(*pid).iter().any(|a| a == arg))
        .collect()
}

/// The live `tlao worker` process executing `run_id` for the server on `data_dir`, if
/// there is one: the pid its launcher recorded (`<data dir>/workers/<run id>.json`; a
/// standby worker's arguments do not name its run), else a `--run <run_id>` process.
pub fn worker_of(data_dir: &Path, run_id: &str) -> Option<u32> {
    let is_worker = |pid: u32| is_alive(pid) && cmdline(pid).iter().any(|arg| arg == "worker");
    let recorded = std::fs::read(data_dir.join("workers").join(format!("{run_id}.json")))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|record| record["pid"].as_u64())
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| is_worker(*pid));
    recorded.or_else(|| {
        all_pids().into_iter().find(|pid| {
            is_worker(*pid)
                && cmdline(*pid)
                    .windows(2)
                    .any(|pair| pair[0] == "--run" && pair[1] == run_id)
        })
    })
}

/// The descendants of `pid` (children, their children...), found by parent links.
pub fn descendants(pid: u32) -> Vec<u32> {
    let links: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|child| Some((child, parent_of(child)?)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in links.iter().filter(|(_, p)| *p == parent) {
            if !found.contains(child) {
                found.push(*child);
                frontier.push(*child);
            }
        }
    }
    found
}

/// The live `tlao worker` processes unpacking runs under `work_root` (a test's own
/// temporary directory, so they can only be that test's), but for idle standbys
/// ([`standbys_under`]).
pub fn workers_under(work_root: &Path) -> Vec<u32> {
    worker_processes_under(work_root)
        .into_iter()
        .filter(|pid| !is_idle_standby(*pid))
        .collect()
}

/// The standby workers under `work_root` still waiting for a run (`worker.standby`):
/// started ahead of their runs, they are not running anything.
pub fn standbys_under(work_root: &Path) -> Vec<u32> {
    worker_processes_under(work_root)
        .into_iter()
        .filter(|pid| is_idle_standby(*pid))
        .collect()
}

/// Whether `pid` is a standby worker waiting for its run (it names itself so).
fn is_idle_standby(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "tlao-standby")
}

/// Every live `tlao worker` process unpacking runs under `work_root`.
fn worker_processes_under(work_root: &Path) -> Vec<u32> {
    let root = work_root.to_string_lossy();
    all_pids()
        .into_iter()
        .filter(|pid| {
            let args = cmdline(*pid);
            is_alive(*pid)
                && args.iter().any(|arg| arg == "worker")
                && args
                    .windows(2)
                    .any(|pair| pair[0] == "--work-root" && pair[1] == root)
        })
        .collect()
}

/// Kills the workers under `work_root` (standbys too) and everything they started.
pub fn kill_workers_under(work_root: &Path) {
    for worker in worker_processes_under(work_root) {
        signal(worker, Signal::SIGSTOP);
        for pid in descendants(worker) {
            kill_now(pid);
        }
        kill_now(worker);
    }
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

/// Kills `pid` with `SIGKILL`.
pub fn kill_now(pid: u32) {
    signal(pid, Signal::SIGKILL);
}

/// Waits until `pid` is dead; panics naming `what` after `deadline`.
pub async fn await_death(pid: u32, what: &str, deadline: Duration) {
    let end = Instant::now() + deadline;
    while is_alive(pid) {
        assert!(
            Instant::now() < end,
            "{what} (pid {pid}) was still alive {deadline:?} later"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `(stand-in pid, its sleep's pid)` pairs a hanging stand-in appended to
/// `KIRO_STANDIN_PIDS_FILE`.
pub fn standin_pids(file: &Path) -> Vec<(u32, u32)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut pids = line.split_whitespace().map(str::parse::<u32>);
            match (pids.next(), pids.next()) {
                (Some(Ok(own)), Some(Ok(child))) => Some((own, child)),
                _ => None,
            }
        })
        .collect()
}

/// Waits until the pids file names `count` hanging stand-ins, and returns them.
pub async fn await_standins(file: &Path, count: usize, deadline: Duration) -> Vec<(u32, u32)> {
    let end = Instant::now() + deadline;
    loop {
        let pids = standin_pids(file);
        if pids.len() >= count {
            return pids;
        }
        assert!(
            Instant::now() < end,
            "{count} stand-in(s) did not start hanging within {deadline:?}; {} did",
            pids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
