//! `changes.patch` applies with `git apply` in a fresh copy of the archive and turns it
//! into the executor's working copy: added, changed, deleted, renamed-mode and oddly
//! named files; binary files are listed, not diffed; an unchanged tree has no patch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tlao_worker_kiro::{diff_trees, write_patch};

fn write(root: &Path, name: &str, content: &[u8]) {
    let path = root.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn chmod(root: &Path, name: &str, mode: u32) {
    fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file under `root` (not `.git`) with its bytes and executable bit.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, bool)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, bool)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let executable = fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0;
                out.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    (fs::read(&path).unwrap(), executable),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Copies `from` into a new directory `to` with `cp -a`.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn git_apply(dir: &Path, patch: &Path, check: bool) -> std::process::Output {
    let mut command = Command::new("git");
    command.arg("apply");
    if check {
        command.arg("--check");
    }
    command.arg(patch).current_dir(dir).output().unwrap()
}

struct Trees {
    tmp: tempfile::TempDir,
}

impl Trees {
    fn new() -> Trees {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("base")).unwrap();
        Trees { tmp }
    }
    fn base(&self) -> PathBuf {
        self.tmp.path().join("base")
    }
    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }
    fn fresh(&self) -> PathBuf {
        self.tmp.path().join("fresh")
    }
    fn patch(&self) -> PathBuf {
        self.tmp.path().join("changes.patch")
    }
    /// `work/` starts as a copy of `base/`.
    fn fork(&self) {
        copy_tree(&self.base(), &self.work());
    }
}

#[test]
fn the_patch_applies_with_git_apply_and_reproduces_the_working_copy() {
    let trees = Trees::new();
    let base = trees.base();
    write(&base, "README.md", b"# Project\n\nSome text.\n");
    write(&base, "obsolete.txt", b"remove me\n");
    write(
        &base,
        "src/lib.rs",
        b"pub fn a() {}\n\npub fn b() {}\n\npub fn c() {}\n\npub fn d() {}\n",
    );
    write(&base, "unchanged.txt", b"same\n");
    write(&base, "no-newline.txt", b"first\nlast without newline");
    write(&base, "run.sh", b"#!/bin/sh\necho hi\n");
    write(&base, "empty-to-delete", b"");
    trees.fork();
    let work = trees.work();
    write(
        &work,
        "README.md",
        b"# Project\n\nSome text.\nChanged by the kiro-cli stand-in.\n",
    );
    fs::remove_file(work.join("obsolete.txt")).unwrap();
    write(&work, "NEW_FILE.md", b"# New file\n");
    write(
        &work,
        "src/lib.rs",
        b"pub fn a() {}\n\npub fn b2() {}\n\npub fn c() {}\n\npub fn d() {}\n",
    );
    write(
        &work,
        "no-newline.txt",
        b"first\nlast, still without newline",
    );
    chmod(&work, "run.sh", 0o755);
    write(
        &work,
        "dir with space/caf\u{e9}.txt",
        "unicode name\n".as_bytes(),
    );
    write(&work, "empty-new", b"");
    fs::remove_file(work.join("empty-to-delete")).unwrap();
    write(&work, "nested/deeper/tool.sh", b"#!/bin/sh\n");
    chmod(&work, "nested/deeper/tool.sh", 0o755);

    assert!(write_patch(&base, &work, &trees.patch()).unwrap());
    let patch = fs::read_to_string(trees.patch()).unwrap();
    assert!(
        patch.contains("diff --git a/README.md b/README.md\n"),
        "{patch}"
    );
    assert!(
        patch.contains("--- /dev/null\n+++ b/NEW_FILE.md\n"),
        "{patch}"
    );
    assert!(
        patch.contains("deleted file mode 100644\n--- a/obsolete.txt\n+++ /dev/null\n"),
        "{patch}"
    );
    assert!(
        patch.contains("old mode 100644\nnew mode 100755\n"),
        "{patch}"
    );
    assert!(!patch.contains("unchanged.txt"), "{patch}");

    copy_tree(&base, &trees.fresh());
    let check = git_apply(&trees.fresh(), &trees.patch(), true);
    assert!(
        check.status.success(),
        "git apply --check: {}\n{patch}",
        String::from_utf8_lossy(&check.stderr)
    );
    let apply = git_apply(&trees.fresh(), &trees.patch(), false);
    assert!(
        apply.status.success(),
        "git apply: {}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(snapshot(&trees.fresh()), snapshot(&work));
}

#[test]
fn binary_files_are_listed_as_comments_and_the_rest_still_applies() {
    let trees = Trees::new();
    let base = trees.base();
    write(&base, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary");
    write(&base, "notes.txt", b"one\n");
    trees.fork();
    let work = trees.work();
    write(&work, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0changed binary");
    write(&work, "added.bin", b"\0\x01\x02");
    write(&work, "notes.txt", b"one\ntwo\n");
    let patch = diff_trees(&base, &work).unwrap().unwrap();
    assert!(
        patch.contains("# tlao: binary file changed, not diffed: logo.png\n"),
        "{patch}"
    );
    assert!(
        patch.contains("# tlao: binary file added, not diffed: added.bin\n"),
        "{patch}"
    );
    fs::write(trees.patch(), &patch).unwrap();
    copy_tree(&base, &trees.fresh());
    let apply = git_apply(&trees.fresh(), &trees.patch(), false);
    assert!(
        apply.status.success(),
        "git apply: {}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(
        fs::read_to_string(trees.fresh().join("notes.txt")).unwrap(),
        "one\ntwo\n"
    );
}

#[test]
fn an_unchanged_tree_has_no_patch() {
    let trees = Trees::new();
    write(&trees.base(), "a.txt", b"a\n");
    write(&trees.base(), ".git/HEAD", b"ref: refs/heads/main\n");
    trees.fork();
    // Changes inside .git are not the agent's work.
    write(&trees.work(), ".git/HEAD", b"ref: refs/heads/other\n");
    assert_eq!(diff_trees(&trees.base(), &trees.work()).unwrap(), None);
    assert!(!write_patch(&trees.base(), &trees.work(), &trees.patch()).unwrap());
    assert!(!trees.patch().exists());
}
