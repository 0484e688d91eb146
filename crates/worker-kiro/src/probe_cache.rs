//! What probing agent programs found — `PROGRAM --version`, `kiro-cli chat --help` — kept
//! in a file under the work root so the next worker process need not ask again: a
//! worker executes one run and exits, so an in-memory cache alone would ask on every
//! run, spawning the agent's program once or twice more on the run's critical path.
//!
//! Entries are keyed by what makes them stale (the program's path and modification
//! time; for flags, its path and version), so a replaced program is asked again. The
//! file is written whole to a temporary name and renamed, so concurrent workers never
//! read half of one; it is read only when this user owns it and nobody else can write
//! it, and it is capped ([`MAX_ENTRIES`]). Losing it costs one probe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The most entries kept; past it the file starts over.
pub const MAX_ENTRIES: usize = 256;
/// The file's name, in the work root.
pub const FILE_NAME: &str = ".agent-probes.json";

fn file() -> &'static Mutex<Option<PathBuf>> {
    static FILE: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    FILE.get_or_init(|| Mutex::new(None))
}

/// Keeps the cache in `dir` (the work root) from now on, for this process.
pub fn use_dir(dir: &Path) {
    if let Ok(mut file) = file().lock() {
        *file = Some(dir.join(FILE_NAME));
    }
}

/// The value kept for `key`, if the file holds one.
pub fn get(key: &str) -> Option<Value> {
    let path = file().lock().ok()?.clone()?;
    load(&path).remove(key)
}

/// Keeps `value` for `key`; failing to write only costs a later probe.
pub fn put(key: &str, value: Value) {
    let Some(path) = file().lock().ok().and_then(|f| f.clone()) else {
        return;
    };
    let mut entries = load(&path);
    if entries.len() >= MAX_ENTRIES {
        entries.clear();
    }
    entries.insert(key.to_owned(), value);
    if let Err(error) = store(&path, &entries) {
        tracing::debug!(%error, path = %path.display(), "cannot keep an agent probe");
    }
}

fn load(path: &Path) -> BTreeMap<String, Value> {
    if !trusted(path) {
        return BTreeMap::new();
    }
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Whether `path` is a regular file this user owns and only this user can write.
fn trusted(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.is_file() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

fn store(path: &Path, entries: &BTreeMap<String, Value>) -> std::io::Result<()> {
    // The first run of a new work root probes before its run directory is made.
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(&temporary)?;
        out.write_all(&bytes)?;
    }
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the file is process-wide state.
    #[test]
    fn entries_survive_the_process_in_a_trusted_file_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(get("k"), None, "no file configured");
        use_dir(dir.path());
        assert_eq!(get("k"), None);
        put("k", Value::from("v"));
        put("n", Value::Null);
        assert_eq!(get("k"), Some(Value::from("v")));
        assert_eq!(get("n"), Some(Value::Null));
        let path = dir.path().join(FILE_NAME);
        let on_disk: BTreeMap<String, Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk.len(), 2);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            assert_eq!(get("k"), None, "a file others can write is not read");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        for i in 0..MAX_ENTRIES {
            put(&format!("fill-{i}"), Value::from(i));
        }
        let on_disk: BTreeMap<String, Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(on_disk.len() <= MAX_ENTRIES, "capped: {}", on_disk.len());
        // The directory goes with this test; other tests of the process keep nothing.
        if let Ok(mut file) = file().lock() {
            *file = None;
        }
    }
}
