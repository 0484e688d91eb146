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
//! ```
//!
//! Removal does not depend on how the run ended (panic and cancellation included), and
//! first makes every directory writable again, since an agent may have made one
//! read-only. Symbolic links are removed, never followed.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tlao_domain::{LeaseId, RunId, WorkspaceId};

/// The directory of one run; removed (with everything in it) on drop.
#[derive(Debug)]
pub struct RunDir {
    root: PathBuf,
    workspace_id: WorkspaceId,
    run_id: RunId,
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
        fs::create_dir(&root)?;
        let dir = RunDir {
            root,
            workspace_id: workspace_id.clone(),
            run_id: run_id.clone(),
        };
        for sub in [dir.base(), dir.work(), dir.out(), dir.home(), dir.tmp()] {
            fs::create_dir(sub)?;
        }
        Ok(dir)
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
