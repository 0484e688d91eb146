//! A run's directory under the worker's work root, removed when dropped.
//!
//! ```text
//! <work_root>/<runId>.<leaseId>/
//!     archive.tar.gz   the downloaded workspace archive
//!     base/            the archive, pristine (the "before" of changes.patch)
//!     work/            the archive, the executor's working directory
//!     out/             the executor's output directory (files become artifacts)
//!     home/            the agent's HOME (granted paths under the real HOME linked in)
//!     tmp/             the agent's TMPDIR
//!     changes.patch, transcript.txt
//! <work_root>/.standby-<pid>/   the same layout, made by a standby worker ahead of
//!                               its run and renamed to the run's name when it starts
//! <work_root>/.home-places      the places in home/ the last run linked (one per
//!                               line), which the next standby links ahead
//! ```
//!
//! Removal does not depend on how the run ended (panic and cancellation included), and
//! first makes every directory writable again, since an agent may have made one
//! read-only. Symbolic links are removed, never followed.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tlao_domain::{LeaseId, RunId, WorkspaceId};

/// The directory of one run; removed (with everything in it) on drop.
#[derive(Debug)]
pub struct RunDir {
    root: PathBuf,
    workspace_id: WorkspaceId,
    run_id: RunId,
    /// The places of `home/` a standby linked ahead (see [`prepare_ahead`]).
    home_linked_ahead: Vec<PathBuf>,
}

impl RunDir {
    /// Creates `<work_root>/<runId>.<leaseId>` with empty `base/`, `work/`, `out/`,
    /// `home/` and `tmp/`
    /// for run `run_id` of `workspace_id`.
    pub fn create(
        work_root: &Path,
        workspace_id: &WorkspaceId,
        run_id: &RunId,
        lease_id: &LeaseId,
    ) -> io::Result<RunDir> {
        fs::create_dir_all(work_root)?;
        let root = work_root.join(format!("{run_id}.{lease_id}"));
        if fs::symlink_metadata(&root).is_ok() {
            remove_tree(&root)?;
        }
        let mut dir = RunDir {
            root,
            workspace_id: workspace_id.clone(),
            run_id: run_id.clone(),
            home_linked_ahead: Vec::new(),
        };
        match claim_prepared(work_root, &dir.root) {
            Some(linked) => dir.home_linked_ahead = linked,
            None => make_layout(&dir.root)?,
        }
        Ok(dir)
    }

    /// The places of `home/` linked to the real home ahead of the run, by the standby
    /// that prepared this directory ([`crate::confine::link_home_ahead`]).
    pub fn home_linked_ahead(&self) -> &[PathBuf] {
        &self.home_linked_ahead
    }

    /// The run's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The pristine copy of the workspace.
    pub fn base(&self) -> PathBuf {
        self.root.join("base")
    }

    /// The executor's working directory.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The executor's output directory.
    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    /// The agent's home directory.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The agent's temporary directory.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the downloaded archive is kept.
    pub fn archive(&self) -> PathBuf {
        self.root.join("archive.tar.gz")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(error) = remove_tree(&self.root) {
            tracing::warn!(
                workspace_id = %self.workspace_id, run_id = %self.run_id, operation = "cleanup",
                path = %self.root.display(), %error, "cannot remove a run directory"
            );
        }
    }
}

/// The subdirectories of a run's directory.
const SUBDIRECTORIES: [&str; 5] = ["base", "work", "out", "home", "tmp"];

/// Names a directory [`prepare`] made: `.standby-<pid>`.
const PREPARED_PREFIX: &str = ".standby-";

/// A directory [`prepare`] made and no run has taken yet.
struct Prepared {
    root: PathBuf,
    /// The places of its `home/` linked ahead.
    home_linked: Vec<PathBuf>,
}

/// The directory [`prepare`] made and no run has taken yet.
static PREPARED: Kept<Prepared> = Kept::new();

/// One thing a standby worker made ahead of its run (see [`Ahead`]), kept until the
/// run takes it or it is discarded.
pub(crate) struct Kept<T>(Mutex<Option<T>>);

impl<T> Kept<T> {
    pub(crate) const fn new() -> Self {
        Kept(Mutex::new(None))
    }

    /// What is kept. Only whole values go in and out: a poisoned lock is used as it is.
    pub(crate) fn slot(&self) -> MutexGuard<'_, Option<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates `root` and its empty subdirectories.
fn make_layout(root: &Path) -> io::Result<()> {
    fs::create_dir(root)?;
    for sub in SUBDIRECTORIES {
        fs::create_dir(root.join(sub))?;
    }
    Ok(())
}

/// What a standby worker made ahead of its run while it waited: the run's directory
/// (`<work_root>/.standby-<pid>`, laid out like a run's, with the links into the real
/// home the last run's grants made, and renamed to the run's name by
/// [`RunDir::create`]), its agent's process tree and the system's rules of its sandbox. The
/// run takes them when it starts; dropping this removes whatever no run took, however
/// the worker ends (released without a run, stopped, failed before its run began).
#[must_use = "what was prepared is removed when this is dropped"]
pub struct Ahead(());

/// Makes what [`Ahead`] holds, the sandbox's system rules for a worker in `sandbox`
/// mode whose network policy is `network` included. Failing to make any only means the
/// run makes its own.
pub fn prepare_ahead(
    work_root: &Path,
    sandbox: crate::confine::SandboxMode,
    network: &crate::confine::Network,
) -> Ahead {
    let real_home = crate::confine::real_home();
    if let Err(error) = prepare(work_root, real_home.as_deref()) {
        tracing::debug!(%error, work_root = %work_root.display(), "cannot prepare a run directory ahead");
    }
    crate::process::prepare_agent_tree();
    crate::confine::prepare_system_rules(sandbox, network);
    Ahead(())
}

impl Drop for Ahead {
    fn drop(&mut self) {
        discard_prepared();
        crate::process::discard_prepared_tree();
        crate::confine::discard_system_rules();
    }
}

/// Makes the next run's directory ahead of its run, for a standby worker to do while it
/// waits: `<work_root>/.standby-<pid>`, laid out like a run's, its `home/` holding the
/// links the last run made ([`crate::confine::link_home_ahead`], when the worker has a
/// `real_home`). [`RunDir::create`] then renames it to the run's name — one rename on the
/// run's critical path instead of six new directories and the home's links. First
/// removes what standbys that were killed before their run left behind (a
/// `.standby-<pid>` whose process is gone).
fn prepare(work_root: &Path, real_home: Option<&Path>) -> io::Result<()> {
    fs::create_dir_all(work_root)?;
    sweep_prepared(work_root);
    let root = work_root.join(format!("{PREPARED_PREFIX}{}", std::process::id()));
    if fs::symlink_metadata(&root).is_ok() {
        remove_tree(&root)?;
    }
    if let Err(error) = make_layout(&root) {
        let _ = remove_tree(&root);
        return Err(error);
    }
    let home_linked = real_home
        .map(|real_home| crate::confine::link_home_ahead(work_root, real_home, &root.join("home")))
        .unwrap_or_default();
    let replaced = PREPARED.slot().replace(Prepared { root, home_linked });
    if let Some(old) = replaced {
        let _ = remove_tree(&old.root);
    }
    Ok(())
}

/// Removes the directory [`prepare`] made, if no run took it.
fn discard_prepared() {
    if let Some(prepared) = PREPARED.slot().take() {
        let _ = remove_tree(&prepared.root);
    }
}

/// Renames the prepared directory, if there is one under `work_root`, to `root`; the
/// places of its home linked ahead when it did. A prepared directory it could not
/// rename is removed.
fn claim_prepared(work_root: &Path, root: &Path) -> Option<Vec<PathBuf>> {
    let prepared = PREPARED
        .slot()
        .take_if(|prepared| prepared.root.parent() == Some(work_root))?;
    if fs::rename(&prepared.root, root).is_ok() {
        return Some(prepared.home_linked);
    }
    let _ = remove_tree(&prepared.root);
    None
}

/// Removes the `.standby-<pid>` directories of processes that are gone.
fn sweep_prepared(work_root: &Path) {
    let Ok(entries) = fs::read_dir(work_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PREPARED_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && tlao_process::ProcessIdentity::of(pid).is_none() {
            let _ = remove_tree(&entry.path());
        }
    }
}

/// Removes `path` and everything under it, making directories writable first.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    make_writable(path);
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u128) -> tlao_domain::Ulid {
        tlao_domain::Ulid::from_parts(1, n)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// One test, so no other test in this process takes the prepared directory.
    #[test]
    fn a_prepared_directory_becomes_the_next_run_s_and_leftovers_are_swept() {
        let work_root = tempfile::tempdir().unwrap();
        let root = work_root.path();
        // A standby killed before its run left this (no process has that pid).
        fs::create_dir(root.join(".standby-4294967295")).unwrap();
        fs::create_dir(root.join("unrelated")).unwrap();

        prepare(root, None).unwrap();
        let prepared = prepared_root(root);
        assert_eq!(names(&prepared), ["base", "home", "out", "tmp", "work"]);
        assert!(
            !root.join(".standby-4294967295").exists(),
            "the leftover is swept"
        );
        assert!(
            root.join("unrelated").exists(),
            "only standby leftovers are swept"
        );

        let (ws, run, lease) = (
            WorkspaceId::new(id(1)),
            RunId::new(id(2)),
            LeaseId::new(id(3)),
        );
        let dir = RunDir::create(root, &ws, &run, &lease).unwrap();
        assert!(!prepared.exists(), "the run took the prepared directory");
        assert_eq!(names(dir.root()), ["base", "home", "out", "tmp", "work"]);
        drop(dir);

        // Nothing prepared: the run makes its own.
        let dir = RunDir::create(root, &ws, &RunId::new(id(4)), &LeaseId::new(id(5))).unwrap();
        assert_eq!(names(dir.root()), ["base", "home", "out", "tmp", "work"]);
        drop(dir);

        // Prepared under another work root: not taken, left for its own run.
        let other = tempfile::tempdir().unwrap();
        prepare(other.path(), None).unwrap();
        let dir = RunDir::create(root, &ws, &RunId::new(id(6)), &LeaseId::new(id(7))).unwrap();
        drop(dir);
        assert!(prepared_root(other.path()).exists());

        discard_prepared();
        assert_eq!(names(other.path()), Vec::<String>::new());
        assert_eq!(names(root), ["unrelated"]);

        // Links into the real home made ahead: the places the last run linked, those
        // this run's grants do not name removed before its own are linked.
        let real = tempfile::tempdir().unwrap();
        let real = real.path();
        fs::write(
            root.join(crate::confine::HOME_PLACES_FILE),
            ".kiro\n.config\n.cache/old/x\n../escape\n/absolute\n",
        )
        .unwrap();
        prepare(root, Some(real)).unwrap();
        let home = prepared_root(root).join("home");
        assert_eq!(names(&home), [".cache", ".config", ".kiro"]);
        assert_eq!(
            fs::read_link(home.join(".kiro")).unwrap(),
            real.join(".kiro")
        );
        let dir = RunDir::create(root, &ws, &RunId::new(id(8)), &LeaseId::new(id(9))).unwrap();
        assert_eq!(
            dir.home_linked_ahead(),
            [".kiro", ".config", ".cache/old/x"].map(PathBuf::from)
        );
        let grants = crate::confine::AgentGrants {
            read: vec![real.join(".kiro"), real.join(".config/kiro")],
            ..Default::default()
        };
        let (confinement, _) = crate::confine::Confinement::for_run(
            crate::confine::SandboxMode::Auto,
            grants,
            &dir,
            Vec::new(),
            Some(real),
        )
        .unwrap();
        let home = confinement.home;
        assert_eq!(
            names(&home),
            [".config", ".kiro"],
            "the unneeded link and its directories are gone"
        );
        assert!(
            fs::symlink_metadata(home.join(".config")).unwrap().is_dir(),
            "not the link made ahead"
        );
        assert_eq!(
            fs::read_link(home.join(".config/kiro")).unwrap(),
            real.join(".config/kiro")
        );
        assert_eq!(
            fs::read_link(home.join(".kiro")).unwrap(),
            real.join(".kiro")
        );
        assert_eq!(
            fs::read_to_string(root.join(crate::confine::HOME_PLACES_FILE)).unwrap(),
            ".kiro\n.config/kiro\n",
            "the next standby links what this run linked"
        );
        drop(dir);
    }

    fn prepared_root(work_root: &Path) -> PathBuf {
        work_root.join(format!(".standby-{}", std::process::id()))
    }
}
