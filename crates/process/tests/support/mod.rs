//! Helpers of the process tree tests: unique `sleep` processes to look for, and `/proc`
//! scans with deadlines.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a process may take to appear or to die.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A `sleep` argument no other process has: `600.<pid><n>` seconds.
pub fn unique_sleep() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "600.{}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The live processes with `arg` among their arguments.
pub fn with_arg(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| bytes.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether `pid` is alive: a zombie is not, unless only its main thread has exited and
/// another runs on (field 20 of proc(5), the thread count, says so).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')').is_some_and(|(_, rest)| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let zombie = fields
                .first()
                .and_then(|state| state.chars().next())
                .is_none_or(|state| matches!(state, 'Z' | 'X' | 'x'));
            let threads: u64 = fields.get(17).and_then(|n| n.parse().ok()).unwrap_or(1);
            !zombie || threads > 1
        })
    })
}

/// The session of `pid`.
pub fn session_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Waits until a live process has `arg`, and returns its pid.
pub fn await_process(arg: &str) -> u32 {
    let end = Instant::now() + PATIENCE;
    loop {
        if let Some(pid) = with_arg(arg).first() {
            return *pid;
        }
        assert!(
            Instant::now() < end,
            "no process with argument {arg} appeared within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until no live process has `arg`; panics after `deadline`.
pub fn await_none(arg: &str, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        let left = with_arg(arg);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "processes {left:?} with argument {arg} were alive {deadline:?} later"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills every process with `arg` when dropped, so a failing test leaves nothing behind.
pub struct Cleanup(pub Vec<String>);

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

/// A `sh -c` command.
pub fn shell(script: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}
