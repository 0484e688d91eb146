//! `changes.patch`: what the executor did to the workspace, as a unified diff of the
//! pristine copy (`base/`) against the working copy (`work/`).
//!
//! The diff is in `git diff` format (`diff --git a/… b/…`, `new file mode`, `deleted
//! file mode`, `/dev/null` for the missing side, mode changes), so `git apply` takes it
//! in a fresh copy of the archive. Text files are diffed with three lines of context;
//! binary files (a NUL byte or invalid UTF-8), files over [`MAX_DIFF_BYTES`] and
//! symbolic links are listed as comment lines at the top, which `git apply` skips.
//! Symbolic links are never followed, and `.git` directories are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use similar::TextDiff;

/// The largest file diffed as text; larger ones are listed, not diffed.
pub const MAX_DIFF_BYTES: u64 = 8 * 1024 * 1024;
/// How long diffing one file may take before a less minimal diff is accepted.
const DIFF_TIMEOUT: Duration = Duration::from_secs(5);

/// What is at a path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { path: PathBuf, executable: bool },
    Symlink { target: PathBuf },
}

/// The diff of `base` against `work`, or `None` when nothing changed.
pub fn diff_trees(base: &Path, work: &Path) -> io::Result<Option<String>> {
    let before = collect(base)?;
    let after = collect(work)?;
    let names: BTreeSet<&Vec<u8>> = before.keys().chain(after.keys()).collect();
    let mut notes = String::new();
    let mut body = String::new();
    for name in names {
        let shown = String::from_utf8_lossy(name);
        match (before.get(name), after.get(name)) {
            (Some(old), Some(new)) if old == new && !is_file(old) => {}
            (
                Some(Node::File {
                    path: old,
                    executable: old_x,
                }),
                Some(Node::File {
                    path: new,
                    executable: new_x,
                }),
            ) => {
                let old_bytes = read_limited(old)?;
                let new_bytes = read_limited(new)?;
                if old_bytes == new_bytes && old_x == new_x {
                    continue;
                }
                let texts = match (&old_bytes, &new_bytes) {
                    (Some(a), Some(b)) => as_text(a).zip(as_text(b)),
                    _ => None,
                };
                match texts {
                    Some((old_text, new_text)) => {
                        let _ = writeln!(
                            body,
                            "diff --git {} {}",
                            quote(b"a/", name),
                            quote(b"b/", name)
                        );
                        if old_x != new_x {
                            let _ = writeln!(body, "old mode {}", mode(*old_x));
                            let _ = writeln!(body, "new mode {}", mode(*new_x));
                        }
                        if old_text != new_text {
                            hunks(
                                &mut body,
                                old_text,
                                new_text,
                                &quote(b"a/", name),
                                &quote(b"b/", name),
                            );
                        }
                    }
                    None => note(&mut notes, "binary file changed", &shown),
                }
            }
            (None, Some(Node::File { path, executable })) => {
                match read_limited(path)?.as_deref().and_then(as_text) {
                    Some(text) => {
                        let _ = writeln!(
                            body,
                            "diff --git {} {}",
                            quote(b"a/", name),
                            quote(b"b/", name)
                        );
                        let _ = writeln!(body, "new file mode {}", mode(*executable));
                        if !text.is_empty() {
                            hunks(&mut body, "", text, "/dev/null", &quote(b"b/", name));
                        }
                    }
                    None => note(&mut notes, "binary file added", &shown),
                }
            }
            (Some(Node::File { path, executable }), None) => {
                match read_limited(path)?.as_deref().and_then(as_text) {
                    Some(text) => {
                        let _ = writeln!(
                            body,
                            "diff --git {} {}",
                            quote(b"a/", name),
                            quote(b"b/", name)
                        );
                        let _ = writeln!(body, "deleted file mode {}", mode(*executable));
                        if !text.is_empty() {
                            hunks(&mut body, text, "", &quote(b"a/", name), "/dev/null");
                        }
                    }
                    None => note(&mut notes, "binary file deleted", &shown),
                }
            }
            (None, Some(_)) => note(&mut notes, "symbolic link added", &shown),
            (Some(_), None) => note(&mut notes, "symbolic link deleted", &shown),
            (Some(_), Some(_)) => note(&mut notes, "symbolic link changed", &shown),
            (None, None) => {}
        }
    }
    if body.is_empty() && notes.is_empty() {
        return Ok(None);
    }
    Ok(Some(notes + &body))
}

/// Writes the diff of `base` against `work` to `dest`; `false` (and no file) when
/// nothing changed.
pub fn write_patch(base: &Path, work: &Path, dest: &Path) -> io::Result<bool> {
    match diff_trees(base, work)? {
        Some(patch) => {
            fs::write(dest, patch)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

fn is_file(node: &Node) -> bool {
    matches!(node, Node::File { .. })
}

fn note(notes: &mut String, what: &str, name: &str) {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let _ = writeln!(notes, "# tlao: {what}, not diffed: {name}");
}

fn hunks(out: &mut String, old: &str, new: &str, old_name: &str, new_name: &str) {
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new);
    let _ = writeln!(out, "--- {old_name}");
    let _ = writeln!(out, "+++ {new_name}");
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = write!(out, "{hunk}");
    }
}

fn mode(executable: bool) -> &'static str {
    if executable { "100755" } else { "100644" }
}

/// The file's bytes, or `None` when it is larger than [`MAX_DIFF_BYTES`].
fn read_limited(path: &Path) -> io::Result<Option<Vec<u8>>> {
    if fs::symlink_metadata(path)?.len() > MAX_DIFF_BYTES {
        return Ok(None);
    }
    fs::read(path).map(Some)
}

fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The files and links under `root`, by `/`-separated relative path; `.git` skipped.
fn collect(root: &Path) -> io::Result<BTreeMap<Vec<u8>, Node>> {
    let mut nodes = BTreeMap::new();
    if fs::symlink_metadata(root).is_ok_and(|meta| meta.is_dir()) {
        walk(root, Vec::new(), &mut nodes)?;
    }
    Ok(nodes)
}

fn walk(dir: &Path, prefix: Vec<u8>, nodes: &mut BTreeMap<Vec<u8>, Node>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let mut name = prefix.clone();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(file_name.as_bytes());
        let file_type = entry.file_type()?;
        let path = entry.path();
        if file_type.is_dir() {
            if file_name != ".git" {
                walk(&path, name, nodes)?;
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(&path)?;
            nodes.insert(name, Node::Symlink { target });
        } else if file_type.is_file() {
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            nodes.insert(name, Node::File { path, executable });
        }
    }
    Ok(())
}

/// `prefix` + `name` as `git diff` prints a path: as is when plain, otherwise in
/// double quotes with C escapes (octal for non-ASCII bytes), like `core.quotePath`.
fn quote(prefix: &[u8], name: &[u8]) -> String {
    let full: Vec<u8> = prefix.iter().chain(name).copied().collect();
    let plain = full
        .iter()
        .all(|b| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\');
    if plain {
        return String::from_utf8_lossy(&full).into_owned();
    }
    let mut quoted = String::from("\"");
    for b in full {
        match b {
            b'"' => quoted.push_str("\\\""),
            b'\\' => quoted.push_str("\\\\"),
            b'\t' => quoted.push_str("\\t"),
            b'\n' => quoted.push_str("\\n"),
            b'\r' => quoted.push_str("\\r"),
            0x20..=0x7e => quoted.push(char::from(b)),
            other => {
                let _ = write!(quoted, "\\{other:03o}");
            }
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_names_are_quoted_like_git() {
        assert_eq!(quote(b"a/", b"src/main.rs"), "a/src/main.rs");
        assert_eq!(
            quote(b"b/", "café.txt".as_bytes()),
            "\"b/caf\\303\\251.txt\""
        );
        assert_eq!(quote(b"a/", b"tab\there"), "\"a/tab\\there\"");
    }
}
