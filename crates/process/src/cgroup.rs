//! cgroup v2 (Linux): finding this process's own cgroup, making child cgroups under it,
//! moving processes in, and ending them all with `cgroup.kill`.
//!
//! Only core files are used (`cgroup.procs`, `cgroup.events`, `cgroup.kill`), no
//! controller: a cgroup with processes and no enabled controllers may have children
//! with processes, so the "no internal processes" rule never applies. The hierarchy is
//! found from `/proc/self/mountinfo` (it is not always at `/sys/fs/cgroup`: hybrid
//! systems mount it at `/sys/fs/cgroup/unified`) and the process's place in it from the
//! `0::` line of `/proc/self/cgroup`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// This process's own cgroup directory, when a cgroup v2 hierarchy is mounted and the
/// process is in it.
pub(crate) fn own_dir() -> Option<PathBuf> {
    dir_of(std::process::id() as i32)
}

/// The directory of the cgroup `pid` is in, as this process sees the hierarchy.
fn dir_of(pid: i32) -> Option<PathBuf> {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    with_cgroup2_mounts(|mounts| {
        mounts.iter().find_map(|(root, mount_point)| {
            let relative = if root == "/" {
                path
            } else {
                path.strip_prefix(root.as_str())?
            };
            let dir = mount_point.join(relative.trim_start_matches('/'));
            dir.join("cgroup.procs").exists().then_some(dir)
        })
    })
}

/// Calls `f` with the `(root, mount point)` of each cgroup v2 mount of this process.
/// Read from `/proc/self/mountinfo` once they are found, instead of on every start of a
/// tree's process (the file has a line per mount: dozens on a container, hundreds on a
/// desktop); until found, on every call. A hierarchy mounted elsewhere later is not
/// seen: [`dir_of`] then finds no `cgroup.procs` and trees fall back to /proc.
fn with_cgroup2_mounts<T>(f: impl FnOnce(&[(String, PathBuf)]) -> T) -> T {
    static MOUNTS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    if let Some(mounts) = MOUNTS.get() {
        return f(mounts);
    }
    let found: Vec<(String, PathBuf)> = fs::read_to_string("/proc/self/mountinfo")
        .map(|mountinfo| mountinfo.lines().filter_map(cgroup2_mount).collect())
        .unwrap_or_default();
    if found.is_empty() {
        return f(&found);
    }
    f(MOUNTS.get_or_init(|| found))
}

/// The `(root, mount point)` of a cgroup2 line of `/proc/self/mountinfo`.
fn cgroup2_mount(line: &str) -> Option<(String, PathBuf)> {
    let (mount, filesystem) = line.split_once(" - ")?;
    if filesystem.split_whitespace().next()? != "cgroup2" {
        return None;
    }
    let fields: Vec<&str> = mount.split_whitespace().collect();
    Some((
        unescape(fields.get(3)?),
        PathBuf::from(unescape(fields.get(4)?)),
    ))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(code) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` lies in a mounted cgroup v2 hierarchy (strictly below its root).
pub(crate) fn is_cgroup_dir(path: &Path) -> bool {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo
        .lines()
        .filter_map(cgroup2_mount)
        .any(|(_, mount_point)| path != mount_point && path.starts_with(&mount_point))
}

/// Makes the cgroup `relative` (one or more components) below this process's own and
/// returns its directory. Fails when there is no cgroup v2, when it may not be written,
/// or when the cgroup already exists (it would not be this tree's alone).
pub(crate) fn create(relative: &str) -> io::Result<PathBuf> {
    let own = own_dir().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "no cgroup v2 hierarchy holds this process",
        )
    })?;
    let dir = own.join(relative);
    // A parent another tree is just removing may vanish between the two steps.
    let mut attempts = 0;
    loop {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent)?;
        }
        match fs::create_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
            Ok(()) => break,
        }
    }
    // Joining needs write access to `cgroup.procs`; find out now rather than at spawn.
    if let Err(e) = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
    {
        let _ = fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// Opens `dir/cgroup.procs` for a child to join with `write("0")` before it executes.
pub(crate) fn open_procs(dir: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
}

/// Moves `pid` into the cgroup.
pub(crate) fn enter(dir: &Path, pid: i32) -> io::Result<()> {
    open_procs(dir)?.write_all(pid.to_string().as_bytes())
}

/// Whether `pid` is in the cgroup `dir` or below it.
pub(crate) fn holds(dir: &Path, pid: i32) -> bool {
    dir_of(pid).is_some_and(|own| own.starts_with(dir))
}

/// Every process in the cgroup and its descendants.
pub(crate) fn members(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for cgroup in subtree(dir) {
        if let Ok(procs) = fs::read_to_string(cgroup.join("cgroup.procs")) {
            pids.extend(
                procs
                    .lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Whether any process is left in the cgroup or below it (zombies do not count). A
/// cgroup that is gone holds none.
pub(crate) fn populated(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("cgroup.events")) {
        Ok(events) => events.lines().any(|line| line.trim() == "populated 1"),
        Err(_) => false,
    }
}

/// Kills every process in the cgroup and below: `cgroup.kill` (Linux 5.14), else a
/// `SIGKILL` to each member found (the caller repeats until none is left).
pub(crate) fn kill_all(dir: &Path) {
    let killed = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut file| file.write_all(b"1"));
    if killed.is_err() {
        kill_members(dir);
    }
}

/// Sends `SIGKILL` to each process listed in the cgroup and below, with `kill(2)`.
///
/// For what outlives `cgroup.kill`: it signals each process through its main thread,
/// and a signal to a thread that has exited reaches no other, so a process whose main
/// thread ended (`pthread_exit`) while others run on is listed, populates the cgroup,
/// and lives on (seen on Linux 6.18). `kill(2)` signals the whole thread group.
pub(crate) fn kill_members(dir: &Path) {
    for pid in members(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Removes the cgroup and its child cgroups, deepest first. Fails with `EBUSY` while a
/// process is left; a cgroup already gone is not an error.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    let mut cgroups = subtree(dir);
    cgroups.reverse();
    for cgroup in cgroups {
        match fs::remove_dir(&cgroup) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the empty cgroups below this process's own whose name is `prefix` followed by
/// the pid of a process that no longer exists (`tlao-4242`, `tlao-agent-4242-3`): what
/// an owner killed without a chance to clean up left. A populated one is left alone:
/// its processes are not this process's to end. Returns how many were removed.
pub(crate) fn sweep(prefix: &str) -> usize {
    let Some(own) = own_dir() else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(&own) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        if !populated(&dir) && remove(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `dir` and every cgroup below it, parents before children.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(cgroup) = pending.pop() {
        if !cgroup.is_dir() {
            continue;
        }
        if let Ok(entries) = fs::read_dir(&cgroup) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
        found.push(cgroup);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup2_line_of_mountinfo_gives_its_root_and_mount_point() {
        let line = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        assert_eq!(
            cgroup2_mount(line),
            Some(("/".to_owned(), PathBuf::from("/sys/fs/cgroup/unified")))
        );
        let v1 = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory";
        assert_eq!(cgroup2_mount(v1), None);
        let spaced = "41 31 0:38 /a\\040b /mnt/c\\040g rw shared:9 - cgroup2 none rw";
        assert_eq!(
            cgroup2_mount(spaced),
            Some(("/a b".to_owned(), PathBuf::from("/mnt/c g")))
        );
    }
}
