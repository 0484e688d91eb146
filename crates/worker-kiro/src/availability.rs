//! Which executor programs this machine can run (requirement 2.2): for each executor
//! record, whether its program resolves to an executable file on `PATH` and what its
//! `--version` says. Versions are cached per resolved path and modification time — in
//! memory and, for the next worker process, in the work root ([`crate::probe_cache`]) —
//! so a program is asked at most once until it is replaced; the question is bounded in
//! time.
//!
//! The worker probes the records it knows of (those of the runs it was assigned) and
//! reports them when it leases and with its heartbeats; `tlao dev`'s launcher probes the
//! registry with the same code, since its workers exist only while a run does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tlao_domain::{ExecutorDescriptor, ExecutorName, program_of};
use tlao_sdk::worker::{AvailabilityReport, ExecutorProbe};

/// The longest `PROGRAM --version` may take.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(3);
/// The most executors one report carries (the API's limit).
pub const MAX_REPORTED: usize = 100;
/// The longest version text kept (the API's limit).
const MAX_VERSION_CHARS: usize = 200;

/// Versions by (resolved path, modification time); `None` when the program gave none.
type VersionCache = HashMap<(PathBuf, Option<SystemTime>), Option<String>>;

fn cache() -> &'static Mutex<VersionCache> {
    static CACHE: OnceLock<Mutex<VersionCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The records this worker process has been assigned, by name (newest record wins).
fn known() -> &'static Mutex<HashMap<ExecutorName, ExecutorDescriptor>> {
    static KNOWN: OnceLock<Mutex<HashMap<ExecutorName, ExecutorDescriptor>>> = OnceLock::new();
    KNOWN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Remembers an executor record this worker was assigned, so later reports cover it.
pub fn remember(descriptor: &ExecutorDescriptor) {
    if let Ok(mut known) = known().lock() {
        known.insert(descriptor.name.clone(), descriptor.clone());
    }
}

/// The records remembered so far, by name.
pub fn remembered() -> Vec<ExecutorDescriptor> {
    let mut list: Vec<ExecutorDescriptor> = known()
        .lock()
        .map(|known| known.values().cloned().collect())
        .unwrap_or_default();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// A worker id for reports: this host's name and process id, in the characters the
/// API accepts.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let host = if host.is_empty() {
        "worker".into()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// Probes `descriptors` (at most [`MAX_REPORTED`]) against `PATH` and reports them as
/// `worker`.
pub async fn probe(worker: &str, descriptors: &[ExecutorDescriptor]) -> AvailabilityReport {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut executors = Vec::new();
    for descriptor in descriptors.iter().take(MAX_REPORTED) {
        let Some(program) = program_of(descriptor) else {
            continue;
        };
        let resolved = resolve(&program, &path);
        let version = match &resolved {
            Some(found) => version_of(found).await,
            None => None,
        };
        executors.push(ExecutorProbe {
            name: descriptor.name.clone(),
            program: program.chars().take(1024).collect(),
            found: resolved.is_some(),
            version,
        });
    }
    AvailabilityReport {
        worker: worker.to_owned(),
        executors,
    }
}

/// The executable file `program` names: itself when it contains a `/`, else the first
/// match in `path`.
pub fn resolve(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The first non-empty line `program --version` prints, within [`VERSION_TIMEOUT`];
/// cached per path and modification time.
pub async fn version_of(program: &Path) -> Option<String> {
    let mtime = std::fs::metadata(program).and_then(|m| m.modified()).ok();
    let slot = (program.to_path_buf(), mtime);
    if let Some(cached) = cache().lock().ok().and_then(|c| c.get(&slot).cloned()) {
        return cached;
    }
    // Another worker process may have asked already (see `probe_cache`).
    let key = format!(
        "version\u{0}{}\u{0}{:?}",
        program.display(),
        mtime.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    );
    let version = match crate::probe_cache::get(&key) {
        Some(kept) if kept.is_null() || kept.is_string() => kept.as_str().map(str::to_owned),
        _ => {
            let version = ask_version(program).await;
            crate::probe_cache::put(&key, version.clone().into());
            version
        }
    };
    if let Ok(mut cache) = cache().lock() {
        cache.insert(slot, version.clone());
    }
    version
}

async fn ask_version(program: &Path) -> Option<String> {
    let child = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let output = tokio::time::timeout(VERSION_TIMEOUT, child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| line.chars().take(MAX_VERSION_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn finds_programs_on_path_and_reads_their_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("asked");
        script(
            dir.path(),
            "agent-x",
            &format!(
                "echo asked >> {}\necho\necho 'agent-x 1.2.3'",
                counter.display()
            ),
        );
        std::fs::write(dir.path().join("not-executable"), "").unwrap();
        let path = dir.path().as_os_str();
        let found = resolve("agent-x", path).expect("found on PATH");
        assert_eq!(resolve("not-executable", path), None);
        assert_eq!(resolve("no-such-agent", path), None);
        assert_eq!(version_of(&found).await.as_deref(), Some("agent-x 1.2.3"));
        assert_eq!(version_of(&found).await.as_deref(), Some("agent-x 1.2.3"));
        let asked = std::fs::read_to_string(&counter).unwrap();
        assert_eq!(asked.lines().count(), 1, "the version is cached");
    }

    #[tokio::test]
    async fn a_hanging_version_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let slow = script(dir.path(), "slow-agent", "sleep 30");
        let started = std::time::Instant::now();
        assert_eq!(version_of(&slow).await, None);
        assert!(started.elapsed() < VERSION_TIMEOUT + Duration::from_secs(2));
    }
}
