//! Helpers shared by the worker's tests: the stand-in kiro-cli, a recording event sink,
//! run directories, and process liveness checks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod fake_api;

use serde_json::json;
use tlao_domain::{
    EventPayload, EventSink, ExecutionContext, LogStream, RunId, TaskSpec, Timestamp, Ulid,
    WorkspaceId,
};

/// The stand-in kiro-cli script.
pub fn stand_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kiro-cli")
}

/// A worker configuration whose agents are sandboxed (the default) and may read the
/// stand-in's directory and write the test's temporary directory, the parent of
/// `work_root`, where the stand-in's wrappers write the pids and arguments they report.
pub fn sandboxed_worker(
    api_url: &str,
    token: &str,
    work_root: &Path,
) -> tlao_worker_kiro::WorkerConfig {
    let mut config = tlao_worker_kiro::WorkerConfig::new(api_url, token, work_root);
    let fixtures = stand_in().parent().unwrap().canonicalize().unwrap();
    config.grants.read.push(fixtures);
    // Files the test's agents write (pids, markers): a directory beside the work root,
    // not its parent — a grant that holds the work root would open other runs, and the
    // worker drops it.
    config.grants.write.push(agent_files(work_root));
    config
}

/// The directory beside `work_root` where a test's agents may write (created).
pub fn agent_files(work_root: &Path) -> PathBuf {
    let dir = work_root.parent().unwrap().join("agent-files");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable `sh` script at `path` that sets `env` and runs the stand-in.
pub fn stand_in_with_env(path: &Path, env: &[(&str, &str)]) -> PathBuf {
    let mut script = String::from("#!/bin/sh\n");
    for (name, value) in env {
        script.push_str(&format!("export {name}='{value}'\n"));
    }
    script.push_str(&format!("exec '{}' \"$@\"\n", stand_in().display()));
    fs::write(path, script).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_owned()
}

/// An [`EventSink`] that keeps every event.
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<EventPayload>>,
}

impl EventSink for RecordingSink {
    fn emit(&self, event: EventPayload) {
        self.events.lock().unwrap().push(event);
    }
}

impl RecordingSink {
    /// The text of the log lines of `stream`.
    pub fn lines(&self, stream: LogStream) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                EventPayload::Log { stream: s, text } if *s == stream => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every event so far.
    pub fn all(&self) -> Vec<EventPayload> {
        self.events.lock().unwrap().clone()
    }
}

/// A run's directories in a temporary directory.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
    pub work: PathBuf,
    pub out: PathBuf,
    pub run_id: RunId,
    pub workspace_id: WorkspaceId,
}

impl Dirs {
    pub fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let out = tmp.path().join("out");
        fs::create_dir(&work).unwrap();
        fs::create_dir(&out).unwrap();
        Dirs {
            tmp,
            work,
            out,
            run_id: RunId::new(Ulid::from_parts(1_700_000_000_000, 1)),
            workspace_id: WorkspaceId::new(Ulid::from_parts(1_700_000_000_000, 2)),
        }
    }

    /// A context for an execution in these directories.
    pub fn context<'a>(&'a self, events: &'a dyn EventSink) -> ExecutionContext<'a> {
        ExecutionContext {
            run_id: &self.run_id,
            workspace_id: &self.workspace_id,
            workdir: &self.work,
            outdir: &self.out,
            deadline: Timestamp::from_unix_millis(i64::MAX / 2),
            events,
        }
    }

    /// A path in the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// A TaskSpec of `task_type` with `prompt`.
pub fn spec(task_type: &str, prompt: &str) -> TaskSpec {
    TaskSpec::parse(&json!({"taskType": task_type, "input": {"prompt": prompt}})).unwrap()
}

/// Whether process `pid` exists and runs: not a zombie, or one whose main thread alone
/// has exited while another thread runs on.
pub fn is_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses; the thread count is
    // field 20 of proc(5).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields
        .first()
        .and_then(|state| state.chars().next())
        .is_none_or(|state| matches!(state, 'Z' | 'X'));
    let threads: u64 = fields.get(17).and_then(|n| n.parse().ok()).unwrap_or(1);
    !zombie || threads > 1
}

/// Waits up to `timeout` for `condition`.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// The pids a hanging stand-in wrote: its own and its child `sleep`'s.
pub fn read_pids(file: &Path) -> Option<(i32, i32)> {
    let text = fs::read_to_string(file).ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<i32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => Some((a, b)),
        _ => None,
    }
}
