//! The developer's git repository, as `tlao run` and `tlao apply` see it: which commit
//! a directory was packed from (and whether its tree was dirty), and applying a run's
//! patch without touching the repository until the outcome is known.
//!
//! Applying is planned in a scratch work tree outside the repository: the files the
//! patch names are copied there as they are now, indexed in a temporary index whose
//! objects go to a temporary object directory (the repository's own objects are read
//! through `GIT_ALTERNATE_OBJECT_DIRECTORIES`, so the patch's preimages are found for a
//! 3-way merge), and `git apply` — then `git apply --3way` when the patch does not apply
//! as it is — runs there. Only when the result is known, and wanted, are the files
//! written into the repository. A refusal leaves the repository byte for byte as it was:
//! every command run in it before then is read-only (`GIT_OPTIONAL_LOCKS=0`, so not even
//! `git status` refreshes the index).

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, bail};
use tlao_domain::{CommitId, SourceRevision};

use crate::errors::CliError;

/// A git repository and the directory of it a command works in.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The top of its work tree.
    pub top: PathBuf,
    /// Its git directory (absolute).
    pub git_dir: PathBuf,
    /// Its object directory (absolute; the common one for a linked work tree).
    pub objects: PathBuf,
    /// The working directory relative to `top`, `/`-terminated, or empty at the top.
    pub prefix: String,
}

/// Runs `git` with `args` in `dir`, read-only (no optional locks); returns its output.
fn git_in(dir: &Path, args: &[&OsStr]) -> anyhow::Result<Output> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .output()
        .context("running git (is it installed and on PATH?)")
}

/// Runs `git` with string `args` in `dir`, failing with its stderr unless it succeeds;
/// returns its stdout.
fn git_ok(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let os: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let output = git_in(dir, &os)?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Repo {
    /// The repository `dir` is in, or `None` when it is in none.
    pub fn discover(dir: &Path) -> anyhow::Result<Option<Repo>> {
        let output = git_in(
            dir,
            &[
                "rev-parse",
                "--show-toplevel",
                "--absolute-git-dir",
                "--git-path",
                "objects",
                "--show-prefix",
            ]
            .map(OsStr::new),
        )?;
        if !output.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8(output.stdout)
            .context("git printed a path that is not UTF-8, which tlao does not handle")?;
        let lines: Vec<&str> = text.lines().collect();
        let [top, git_dir, objects, rest @ ..] = lines.as_slice() else {
            bail!("git rev-parse printed an unexpected answer: {text:?}");
        };
        let objects = Path::new(objects);
        let objects = if objects.is_absolute() {
            objects.to_path_buf()
        } else {
            dir.join(objects)
        };
        Ok(Some(Repo {
            top: PathBuf::from(top),
            git_dir: PathBuf::from(git_dir),
            objects,
            prefix: rest.first().copied().unwrap_or_default().to_owned(),
        }))
    }

    /// The repository `dir` is in; a usage error when it is in none.
    pub fn require(dir: &Path) -> anyhow::Result<Repo> {
        Repo::discover(dir)?.ok_or_else(|| {
            CliError::Usage(format!(
                "{} is not in a git repository; `tlao apply` applies a run's patch to one",
                dir.display()
            ))
            .into()
        })
    }

    /// The commit checked out, or `None` before the first commit.
    pub fn head(&self) -> anyhow::Result<Option<CommitId>> {
        let output = git_in(
            &self.top,
            &["rev-parse", "--verify", "-q", "HEAD^{commit}"].map(OsStr::new),
        )?;
        if !output.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(Some(text.parse::<CommitId>()?))
    }

    /// Whether the repository has the commit `commit`.
    pub fn has_commit(&self, commit: &CommitId) -> anyhow::Result<bool> {
        let spec = format!("{commit}^{{commit}}");
        Ok(
            git_in(&self.top, &["cat-file", "-e", &spec].map(OsStr::new))?
                .status
                .success(),
        )
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &CommitId, descendant: &CommitId) -> anyhow::Result<bool> {
        let output = git_in(
            &self.top,
            &[
                "merge-base",
                "--is-ancestor",
                ancestor.as_str(),
                descendant.as_str(),
            ]
            .map(OsStr::new),
        )?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!(
                "git merge-base failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }

    /// The paths under the working directory that differ from HEAD (staged, unstaged,
    /// or untracked and not ignored), relative to the top.
    pub fn changed_paths(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.top.join(&self.prefix);
        let output = git_in(
            &dir,
            &[
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--",
                ".",
            ]
            .map(OsStr::new),
        )?;
        if !output.status.success() {
            bail!(
                "git status failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let mut paths = Vec::new();
        let mut fields = output.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
        while let Some(entry) = fields.next() {
            if entry.len() < 4 {
                continue;
            }
            paths.push(String::from_utf8_lossy(&entry[3..]).into_owned());
            // A rename or copy names its source next.
            if matches!(entry[0], b'R' | b'C')
                && let Some(source) = fields.next()
            {
                paths.push(String::from_utf8_lossy(source).into_owned());
            }
        }
        Ok(paths)
    }

    /// Whether `name` is a valid new branch name.
    pub fn check_branch_name(&self, name: &str) -> anyhow::Result<()> {
        let ok = !name.starts_with('-')
            && git_in(
                &self.top,
                &["check-ref-format", "--branch", name].map(OsStr::new),
            )?
            .status
            .success();
        if !ok {
            return Err(CliError::Usage(format!("{name:?} is not a valid branch name")).into());
        }
        let reference = format!("refs/heads/{name}");
        let exists = git_in(
            &self.top,
            &["show-ref", "--verify", "-q", &reference].map(OsStr::new),
        )?
        .status
        .success();
        if exists {
            bail!("a branch named {name} exists already; name another with --branch NAME");
        }
        Ok(())
    }

    /// The committer identity git would use, or an error saying how to set one.
    pub fn identity(&self) -> anyhow::Result<String> {
        let output = git_in(&self.top, &["var", "GIT_AUTHOR_IDENT"].map(OsStr::new))?;
        if !output.status.success() {
            bail!(
                "git has no identity to commit with: set one with `git config --global user.name NAME` and `git config --global user.email EMAIL`"
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// A git configuration value, when set.
    pub fn config(&self, key: &str) -> anyhow::Result<Option<String>> {
        let output = git_in(&self.top, &["config", "--get", key].map(OsStr::new))?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|value| !value.is_empty()))
    }

    /// Creates the branch `name` at HEAD and checks it out (the working tree and the
    /// index stay as they are).
    pub fn create_branch(&self, name: &str) -> anyhow::Result<()> {
        git_ok(&self.top, &["switch", "--quiet", "-c", name]).map(drop)
    }

    /// Stages `paths` (relative to the top; deletions included) and commits exactly
    /// them with `message`; returns the new commit.
    pub fn commit_paths(&self, paths: &[String], message: &str) -> anyhow::Result<CommitId> {
        let mut file = tempfile::NamedTempFile::new().context("creating a temporary file")?;
        file.write_all(message.as_bytes())?;
        let mut add = vec!["add", "-A", "--"];
        add.extend(paths.iter().map(String::as_str));
        git_ok(&self.top, &add)?;
        let message_file = file.path().to_string_lossy().into_owned();
        let mut commit = vec![
            "commit",
            "--quiet",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            &message_file,
            "--",
        ];
        commit.extend(paths.iter().map(String::as_str));
        git_ok(&self.top, &commit)?;
        self.head()?
            .ok_or_else(|| anyhow::anyhow!("HEAD names no commit after committing"))
    }
}

/// The commit `dir` was packed from and whether its tree was dirty, when `dir` is in a
/// git repository with a commit; `None` otherwise (or when git is not installed).
pub fn source_of(dir: &Path) -> Option<SourceRevision> {
    let repo = Repo::discover(dir).ok()??;
    let commit = repo.head().ok()??;
    let dirty = !repo.changed_paths().ok()?.is_empty();
    Some(SourceRevision { commit, dirty })
}

/// How one file of a patch changes the working tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The file is new.
    Added,
    /// The file changes.
    Modified,
    /// The file goes.
    Deleted,
}

impl Change {
    /// The one-letter mark `git status` uses.
    pub fn mark(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Modified => 'M',
            Change::Deleted => 'D',
        }
    }
}

/// How a patch would apply to the working tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Fit {
    /// It applies as it is.
    Clean,
    /// It applies through a 3-way merge, without conflicts.
    Merged,
    /// A 3-way merge leaves conflicts (in [`Plan::conflicts`]).
    Conflicts,
}

/// A patch applied in a scratch work tree, ready to be written into the repository.
#[derive(Debug)]
pub struct Plan {
    /// How it applies.
    pub fit: Fit,
    /// Each file it changes (relative to the top), and how.
    pub files: Vec<(String, Change)>,
    /// The files a 3-way merge left conflict markers in.
    pub conflicts: Vec<String>,
    scratch: tempfile::TempDir,
}

/// Why a patch cannot be applied at all (not even with conflicts).
#[derive(Debug, thiserror::Error)]
#[error("the patch does not apply to {top}: {reason}")]
pub struct DoesNotApply {
    /// The repository.
    pub top: String,
    /// What git said.
    pub reason: String,
}

impl Repo {
    /// `patch` with an `index` line naming each changed file's preimage blob in
    /// `base`, where the patch has none (a worker's `changes.patch` has none): what a
    /// 3-way merge needs to find the version the patch was made against. Sections
    /// that have one, create a file, quote their path, or name a path `base` lacks are
    /// left as they are.
    pub fn with_preimages(&self, patch: &[u8], base: &CommitId) -> anyhow::Result<Vec<u8>> {
        let Ok(text) = std::str::from_utf8(patch) else {
            return Ok(patch.to_vec());
        };
        let null = "0".repeat(base.as_str().len());
        let mut out = String::with_capacity(text.len() + 256);
        let mut in_header = false;
        let mut has_index = false;
        for line in text.split_inclusive('\n') {
            if line.starts_with("diff --git ") {
                in_header = true;
                has_index = false;
            } else if in_header && (line.starts_with("index ") || line.starts_with("new file mode"))
            {
                // A new file has no preimage to name.
                has_index = true;
            } else if in_header && line.starts_with("--- ") {
                in_header = false;
                // A name with a space may end with a tab, as in `git diff`'s headers.
                let path = line["--- ".len()..].trim_end_matches(['\n', '\r', '\t']);
                if let Some(path) = path.strip_prefix("a/").filter(|_| !has_index) {
                    let spec = format!("{base}:{}{path}", self.prefix);
                    let output = git_in(
                        &self.top,
                        &["rev-parse", "--verify", "-q", &spec].map(OsStr::new),
                    )?;
                    if output.status.success() {
                        let blob = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                        out.push_str(&format!("index {blob}..{null}\n"));
                    }
                }
            } else if in_header && line.starts_with("@@") {
                in_header = false;
            }
            out.push_str(line);
        }
        Ok(out.into_bytes())
    }

    /// Applies `patch` (paths relative to the working directory) in a scratch copy of
    /// the files it names; the repository is only read.
    pub fn plan(&self, patch: &[u8]) -> anyhow::Result<Plan> {
        let scratch = tempfile::Builder::new()
            .prefix("tlao-apply-")
            .tempdir()
            .context("creating a scratch directory")?;
        let work = scratch.path().join("work");
        let objects = scratch.path().join("objects");
        fs::create_dir_all(&work)?;
        fs::create_dir_all(objects.join("info"))?;
        fs::create_dir_all(objects.join("pack"))?;
        let patch_file = scratch.path().join("changes.patch");
        fs::write(&patch_file, patch)?;
        let scratch_git = |args: &[&OsStr]| -> anyhow::Result<Output> {
            Command::new("git")
                .args(args)
                .current_dir(&work)
                .env("GIT_DIR", &self.git_dir)
                .env("GIT_WORK_TREE", &work)
                .env("GIT_INDEX_FILE", scratch.path().join("index"))
                .env("GIT_OBJECT_DIRECTORY", &objects)
                .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &self.objects)
                .env("GIT_OPTIONAL_LOCKS", "0")
                .stdin(Stdio::null())
                .output()
                .context("running git (is it installed and on PATH?)")
        };
        let directory = format!("--directory={}", self.prefix);
        let mut apply_args: Vec<&OsStr> = vec![OsStr::new("apply")];
        if !self.prefix.is_empty() {
            apply_args.push(OsStr::new(&directory));
        }

        // The paths it names, each checked before anything is read or written there.
        let mut numstat = apply_args.clone();
        numstat.extend(["--numstat", "-z"].map(OsStr::new));
        numstat.push(patch_file.as_os_str());
        let listed = scratch_git(&numstat)?;
        if !listed.status.success() {
            return Err(DoesNotApply {
                top: self.top.display().to_string(),
                reason: String::from_utf8_lossy(&listed.stderr).trim().to_owned(),
            }
            .into());
        }
        let paths = numstat_paths(&listed.stdout)?;
        for path in &paths {
            check_path(&self.top, path)?;
        }

        // The files as they are now, in the scratch work tree and its index.
        let mut present = Vec::new();
        for path in &paths {
            if copy_entry(&self.top.join(path), &work.join(path))? {
                present.push(path.clone());
            }
        }
        if !present.is_empty() {
            let mut add: Vec<&OsStr> = ["update-index", "--add", "--"].map(OsStr::new).to_vec();
            add.extend(present.iter().map(OsStr::new));
            let added = scratch_git(&add)?;
            if !added.status.success() {
                bail!(
                    "git update-index failed in the scratch copy: {}",
                    String::from_utf8_lossy(&added.stderr).trim()
                );
            }
        }

        let mut check = apply_args.clone();
        check.push(OsStr::new("--check"));
        check.push(patch_file.as_os_str());
        let clean = scratch_git(&check)?.status.success();
        let mut apply = apply_args.clone();
        if !clean {
            apply.push(OsStr::new("--3way"));
        }
        apply.push(patch_file.as_os_str());
        let applied = scratch_git(&apply)?;
        let conflicts = if applied.status.success() {
            Vec::new()
        } else {
            let unmerged = scratch_git(&["ls-files", "-u", "-z"].map(OsStr::new))?;
            let mut conflicts: Vec<String> = unmerged
                .stdout
                .split(|b| *b == 0)
                .filter_map(|entry| entry.splitn(2, |b| *b == b'\t').nth(1))
                .map(|path| String::from_utf8_lossy(path).into_owned())
                .collect();
            conflicts.dedup();
            if conflicts.is_empty() {
                return Err(DoesNotApply {
                    top: self.top.display().to_string(),
                    reason: String::from_utf8_lossy(&applied.stderr).trim().to_owned(),
                }
                .into());
            }
            conflicts
        };

        let mut files = Vec::new();
        for path in paths {
            let before = self.top.join(&path).symlink_metadata().is_ok();
            let after = work.join(&path).symlink_metadata().is_ok();
            let change = match (before, after) {
                (false, false) => continue,
                (false, true) => Change::Added,
                (true, false) => Change::Deleted,
                (true, true) => {
                    if same_entry(&self.top.join(&path), &work.join(&path))? {
                        continue;
                    }
                    Change::Modified
                }
            };
            files.push((path, change));
        }
        let fit = match (clean, conflicts.is_empty()) {
            (true, _) => Fit::Clean,
            (false, true) => Fit::Merged,
            (false, false) => Fit::Conflicts,
        };
        Ok(Plan {
            fit,
            files,
            conflicts,
            scratch,
        })
    }

    /// Writes what `plan` computed into the working tree: each changed file replaced
    /// atomically, deleted files removed (and the directories they leave empty).
    pub fn write(&self, plan: &Plan) -> anyhow::Result<()> {
        let work = plan.scratch.path().join("work");
        for (path, change) in &plan.files {
            let target = self.top.join(path);
            match change {
                Change::Deleted => {
                    fs::remove_file(&target)
                        .with_context(|| format!("removing {}", target.display()))?;
                    let mut dir = target.parent();
                    while let Some(parent) = dir {
                        if parent == self.top || fs::remove_dir(parent).is_err() {
                            break;
                        }
                        dir = parent.parent();
                    }
                }
                Change::Added | Change::Modified => {
                    replace_entry(&work.join(path), &target)
                        .with_context(|| format!("writing {}", target.display()))?;
                }
            }
        }
        Ok(())
    }
}

/// The paths `git apply --numstat -z` names (both names of a rename).
fn numstat_paths(stdout: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut paths = Vec::new();
    let mut fields = stdout.split(|b| *b == 0);
    while let Some(entry) = fields.next() {
        if entry.is_empty() {
            continue;
        }
        // "added\tdeleted\tpath", or "added\tdeleted\t" then the old and new paths.
        let mut parts = entry.splitn(3, |b| *b == b'\t');
        let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("git apply --numstat printed an unexpected line");
        };
        let names: Vec<&[u8]> = if path.is_empty() {
            vec![
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            ]
        } else {
            vec![path]
        };
        for name in names {
            let name = std::str::from_utf8(name)
                .context("the patch names a path that is not UTF-8")?
                .to_owned();
            if !paths.contains(&name) {
                paths.push(name);
            }
        }
    }
    Ok(paths)
}

/// Refuses a patch path that is absolute, climbs out, enters `.git`, or passes through
/// a symbolic link of the working tree.
fn check_path(top: &Path, path: &str) -> anyhow::Result<()> {
    let relative = Path::new(path);
    let safe = !path.is_empty()
        && relative.components().all(|c| match c {
            Component::Normal(name) => name != ".git",
            _ => false,
        });
    if !safe {
        bail!("the patch names the path {path:?}, which is not inside the working tree");
    }
    let mut at = top.to_path_buf();
    let components: Vec<Component> = relative.components().collect();
    for component in &components[..components.len().saturating_sub(1)] {
        at.push(component);
        if at
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            bail!(
                "the patch writes {path:?} through {}, a symbolic link",
                at.display()
            );
        }
    }
    Ok(())
}

/// Copies the file or link at `from` to `to` (creating its directories); `false` when
/// there is nothing at `from`.
fn copy_entry(from: &Path, to: &Path) -> anyhow::Result<bool> {
    let Ok(meta) = from.symlink_metadata() else {
        return Ok(false);
    };
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(from)?, to)?;
    } else if meta.is_file() {
        fs::copy(from, to).with_context(|| format!("reading {}", from.display()))?;
    } else {
        bail!(
            "{} is not a file; the patch cannot change it",
            from.display()
        );
    }
    Ok(true)
}

/// Whether the entries at `a` and `b` have the same kind, content and executable bit.
fn same_entry(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let (ma, mb) = (a.symlink_metadata()?, b.symlink_metadata()?);
    if ma.file_type().is_symlink() || mb.file_type().is_symlink() {
        return Ok(ma.file_type().is_symlink()
            && mb.file_type().is_symlink()
            && fs::read_link(a)? == fs::read_link(b)?);
    }
    let executable = |m: &fs::Metadata| m.permissions().mode() & 0o111 != 0;
    Ok(executable(&ma) == executable(&mb) && fs::read(a)? == fs::read(b)?)
}

/// Replaces `target` with the entry at `source` by a rename, so a reader sees the old
/// or the new file, never half of one.
fn replace_entry(source: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", target.display()))?;
    fs::create_dir_all(dir)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = dir.join(format!(".{name}.tlao-apply-{}", std::process::id()));
    let _ = fs::remove_file(&staged);
    let meta = source.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(source)?, &staged)?;
    } else {
        fs::copy(source, &staged)?;
        fs::set_permissions(
            &staged,
            fs::Permissions::from_mode(meta.permissions().mode()),
        )?;
    }
    if let Err(e) = fs::rename(&staged, target) {
        let _ = fs::remove_file(&staged);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_names_both_paths_of_a_rename() {
        let out = b"1\t0\tREADME.md\0-\t-\tlogo.png\x000\t0\t\0old name.txt\0new.txt\0";
        assert_eq!(
            numstat_paths(out).unwrap(),
            ["README.md", "logo.png", "old name.txt", "new.txt"]
        );
    }

    /// A repository in `dir/repo` with one commit of `a.txt`.
    fn repository(dir: &Path) -> Repo {
        let top = dir.join("repo");
        fs::create_dir_all(&top).unwrap();
        fs::write(top.join("a.txt"), "one\ntwo\n").unwrap();
        for args in [
            vec!["init", "-q"],
            vec!["add", "a.txt"],
            vec![
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-q",
                "-m",
                "base",
            ],
        ] {
            let done = Command::new("git")
                .args(&args)
                .current_dir(&top)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(done.status.success(), "git {args:?}: {done:?}");
        }
        Repo::discover(&top).unwrap().unwrap()
    }

    #[test]
    fn a_patch_that_leaves_the_tree_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let patch = b"diff --git a/../outside.txt b/../outside.txt\nnew file mode 100644\n--- /dev/null\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+escaped\n";

        assert!(repo.plan(patch).is_err());
        assert!(!dir.path().join("outside.txt").exists());
    }

    #[test]
    fn a_plan_changes_nothing_until_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let patch = b"diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n";

        let plan = repo.plan(patch).unwrap();
        assert_eq!(plan.fit, Fit::Clean);
        assert_eq!(plan.files, [("a.txt".to_owned(), Change::Modified)]);
        assert_eq!(
            fs::read_to_string(repo.top.join("a.txt")).unwrap(),
            "one\ntwo\n"
        );

        repo.write(&plan).unwrap();
        assert_eq!(
            fs::read_to_string(repo.top.join("a.txt")).unwrap(),
            "one\nTWO\n"
        );
    }

    #[test]
    fn preimages_are_named_from_the_base_for_changed_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let base = repo.head().unwrap().unwrap();
        let blob = git_ok(&repo.top, &["rev-parse", "HEAD:a.txt"]).unwrap();
        let patch = "# symlink x: listed, not diffed\n\
            diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+ONE\n\
            diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+n\n";

        let named = repo.with_preimages(patch.as_bytes(), &base).unwrap();

        let null = "0".repeat(40);
        let expected = patch.replace(
            "--- a/a.txt",
            &format!("index {}..{null}\n--- a/a.txt", blob.trim()),
        );
        assert_eq!(String::from_utf8(named).unwrap(), expected);
    }

    #[test]
    fn paths_outside_the_tree_or_in_git_are_refused() {
        let top = tempfile::tempdir().unwrap();
        for bad in [
            "../x",
            "/etc/passwd",
            ".git/config",
            "a/../../b",
            "a/.git/hooks/x",
            "",
        ] {
            assert!(check_path(top.path(), bad).is_err(), "{bad:?} was accepted");
        }
        fs::create_dir(top.path().join("real")).unwrap();
        symlink("/tmp", top.path().join("link")).unwrap();
        assert!(check_path(top.path(), "real/file.txt").is_ok());
        assert!(check_path(top.path(), "link/file.txt").is_err());
        // The link itself may be changed; only passing through it is refused.
        assert!(check_path(top.path(), "link").is_ok());
    }
}
