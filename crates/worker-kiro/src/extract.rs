//! Safe extraction of a workspace archive (`tar.gz`) into a run's directory.
//!
//! Archives come from users, so they are treated as hostile: an entry with an absolute
//! path or a `..` component, a device file or fifo, a hard link to anything but a file
//! extracted before it, or a symbolic link that resolves outside the extraction root
//! fails the whole extraction. Total bytes and entry count are capped, and so is the
//! decompressed stream itself, so a gzip bomb fails cleanly instead of filling the disk
//! or memory. Nothing is ever written outside the root:
//!
//! - entries are written through real directories only: a parent that is a symbolic
//!   link fails the extraction;
//! - symbolic links are created last, after every file and directory, so no file is
//!   written through one; each target is resolved against the tree as it is (following
//!   the links already made) and checked again once every link exists, since a later
//!   link can change where an earlier one points.
//!
//! File modes are kept (executable bits included) without setuid, setgid or sticky
//! bits, and the owner can always read and write, so the run's directory can be diffed
//! and removed. On error the partly extracted root is left for the caller to remove.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};
use tlao_domain::guardrails::archive_stream_cap;

/// The most symbolic links followed while resolving one link target.
const MAX_LINK_HOPS: u32 = 40;

/// The caps an extraction enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// The most bytes of file content extracted in all.
    pub max_bytes: u64,
    /// The most entries (files, directories, links) in the archive.
    pub max_entries: u64,
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub directories: u64,
    /// Symbolic and hard links created.
    pub links: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry's path is absolute, has a `..` component, or goes through a link.
    #[error("entry {path:?} {reason}")]
    UnsafePath {
        /// The entry's path as written in the archive.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A symbolic or hard link points outside the extraction root.
    #[error("link {path:?} points outside the workspace (to {target:?})")]
    LinkEscapes {
        /// The link's path.
        path: String,
        /// Its target as written in the archive.
        target: String,
    },
    /// A hard link's target is not a regular file extracted before it.
    #[error("hard link {path:?} points to {target:?}, which is not a file earlier in the archive")]
    DanglingHardLink {
        /// The link's path.
        path: String,
        /// Its target as written in the archive.
        target: String,
    },
    /// An entry of a type a workspace may not contain.
    #[error("entry {path:?} is a {kind}, which a workspace archive may not contain")]
    Unsupported {
        /// The entry's path.
        path: String,
        /// What it is, e.g. `character device`.
        kind: &'static str,
    },
    /// Two entries want the same path in incompatible ways (a file where a directory is).
    #[error("entry {path:?} conflicts with an earlier entry")]
    Conflict {
        /// The entry's path.
        path: String,
    },
    /// More entries than allowed.
    #[error("the archive has more than {max} entries")]
    TooManyEntries {
        /// The cap.
        max: u64,
    },
    /// More bytes than allowed (also a gzip bomb).
    #[error("the archive extracts to more than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: u64,
    },
    /// The bytes are not a readable `tar.gz`.
    #[error("the archive is not a readable tar.gz: {0}")]
    Corrupt(#[source] io::Error),
    /// Writing into the root failed.
    #[error("cannot extract {}: {source}", .path.display())]
    Io {
        /// The path written, relative to the extraction root (`.` for the root itself),
        /// so no message names the worker's own directories.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// Marks the decompressed-stream cap inside an `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("the decompressed archive exceeds its cap")]
struct StreamCapExceeded;

/// Reads at most `remaining` bytes, then fails with [`StreamCapExceeded`].
struct CappedReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One probe byte tells a stream that ends exactly at the cap from a bomb.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(StreamCapExceeded)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn is_cap_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<StreamCapExceeded>())
}

/// Extracts the `tar.gz` file at `archive` into `root` (created when missing).
pub fn extract_archive_file(
    archive: &Path,
    root: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    let file = File::open(archive).map_err(|source| ExtractError::Io {
        path: archive.file_name().map(PathBuf::from).unwrap_or_default(),
        source,
    })?;
    extract_archive(io::BufReader::new(file), root, limits)
}

/// Extracts a `tar.gz` stream into `root` (created when missing), enforcing `limits`
/// and refusing anything that could write outside `root`.
pub fn extract_archive(
    gzipped: impl Read,
    root: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    fs::create_dir_all(root).map_err(|source| ExtractError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    // The same cap the API's upload scan puts on the stream (`Guardrails`).
    let stream_cap = archive_stream_cap(limits.max_bytes, limits.max_entries);
    let reader = CappedReader {
        inner: GzDecoder::new(gzipped),
        remaining: stream_cap,
    };
    let mut extraction = Extraction {
        root,
        limits,
        summary: ExtractSummary::default(),
        symlinks: Vec::new(),
    };
    let result = extraction.unpack_entries(Archive::new(reader));
    result.map_err(|error| match error {
        ExtractError::Corrupt(io) if is_cap_error(&io) => ExtractError::TooLarge {
            max: limits.max_bytes,
        },
        other => relative_to(root, other),
    })?;
    extraction
        .create_symlinks()
        .map_err(|error| relative_to(root, error))?;
    Ok(extraction.summary)
}

/// `error` with the path of an I/O failure made relative to `root`.
fn relative_to(root: &Path, error: ExtractError) -> ExtractError {
    match error {
        ExtractError::Io { path, source } => {
            let relative = match path.strip_prefix(root) {
                Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from("."),
                Ok(rest) => rest.to_owned(),
                Err(_) => path.file_name().map(PathBuf::from).unwrap_or_default(),
            };
            ExtractError::Io {
                path: relative,
                source,
            }
        }
        other => other,
    }
}

/// A symbolic link waiting to be created.
struct PendingLink {
    shown: String,
    relative: PathBuf,
    target: PathBuf,
}

struct Extraction<'a> {
    root: &'a Path,
    limits: &'a ExtractLimits,
    summary: ExtractSummary,
    symlinks: Vec<PendingLink>,
}

impl Extraction<'_> {
    fn unpack_entries<R: Read>(&mut self, mut archive: Archive<R>) -> Result<(), ExtractError> {
        let mut entries = 0u64;
        for entry in archive.entries().map_err(ExtractError::Corrupt)? {
            let mut entry = entry.map_err(ExtractError::Corrupt)?;
            entries += 1;
            if entries > self.limits.max_entries {
                return Err(ExtractError::TooManyEntries {
                    max: self.limits.max_entries,
                });
            }
            let raw_path = entry.path().map_err(ExtractError::Corrupt)?.into_owned();
            let shown = raw_path.to_string_lossy().into_owned();
            let entry_type = entry.header().entry_type();
            if matches!(entry_type, EntryType::XGlobalHeader) {
                continue;
            }
            let Some(relative) = safe_relative(&raw_path, &shown)? else {
                // The root itself (`./`): nothing to create.
                continue;
            };
            let mode = entry.header().mode().map_err(ExtractError::Corrupt)?;
            match entry_type {
                EntryType::Directory => self.directory(&relative, mode)?,
                EntryType::Regular | EntryType::Continuous => {
                    // A file declared larger than what is left of the budget fails
                    // before a byte is written, not after writing the budget's worth.
                    if entry.size() > self.limits.max_bytes - self.summary.bytes {
                        return Err(ExtractError::TooLarge {
                            max: self.limits.max_bytes,
                        });
                    }
                    self.file(&mut entry, &relative, &shown, mode)?
                }
                EntryType::Link => {
                    let target = link_name(&entry, &shown)?;
                    self.hard_link(&relative, &shown, &target)?
                }
                EntryType::Symlink => {
                    let target = link_name(&entry, &shown)?;
                    if target.has_root() {
                        return Err(ExtractError::LinkEscapes {
                            path: shown,
                            target: target.to_string_lossy().into_owned(),
                        });
                    }
                    self.symlinks.push(PendingLink {
                        shown,
                        relative,
                        target,
                    });
                }
                other => {
                    return Err(ExtractError::Unsupported {
                        path: shown,
                        kind: kind_name(other),
                    });
                }
            }
        }
        Ok(())
    }

    fn directory(&mut self, relative: &Path, mode: u32) -> Result<(), ExtractError> {
        let path = self.prepare_parent(relative)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ExtractError::Conflict {
                    path: relative.to_string_lossy().into_owned(),
                });
            }
            Err(_) => {
                fs::create_dir(&path).map_err(|source| io_error(&path, source))?;
                self.summary.directories += 1;
            }
        }
        set_mode(&path, (mode & 0o777) | 0o700)
    }

    fn file(
        &mut self,
        entry: &mut impl Read,
        relative: &Path,
        shown: &str,
        mode: u32,
    ) -> Result<(), ExtractError> {
        let path = self.prepare_parent(relative)?;
        self.remove_existing(&path, shown)?;
        let budget = self.limits.max_bytes - self.summary.bytes;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| io_error(&path, source))?;
        let copied = copy_capped(entry, &mut file, budget, &path)?;
        if copied > budget {
            return Err(ExtractError::TooLarge {
                max: self.limits.max_bytes,
            });
        }
        self.summary.bytes += copied;
        self.summary.files += 1;
        drop(file);
        set_mode(&path, (mode & 0o777) | 0o600)
    }

    fn hard_link(
        &mut self,
        relative: &Path,
        shown: &str,
        target: &Path,
    ) -> Result<(), ExtractError> {
        let escapes = || ExtractError::LinkEscapes {
            path: shown.to_owned(),
            target: target.to_string_lossy().into_owned(),
        };
        // A hard link's target is an archive path, relative to the root.
        let target_relative = match safe_relative(target, shown) {
            Ok(Some(relative)) => relative,
            Ok(None) | Err(_) => return Err(escapes()),
        };
        let source = self.root.join(&target_relative);
        let is_file = self.no_links_above(&target_relative)
            && fs::symlink_metadata(&source).is_ok_and(|meta| meta.file_type().is_file());
        if !is_file {
            return Err(ExtractError::DanglingHardLink {
                path: shown.to_owned(),
                target: target.to_string_lossy().into_owned(),
            });
        }
        let path = self.prepare_parent(relative)?;
        if path == source {
            return Ok(());
        }
        self.remove_existing(&path, shown)?;
        fs::hard_link(&source, &path).map_err(|source| io_error(&path, source))?;
        self.summary.links += 1;
        Ok(())
    }

    /// Creates the symbolic links, each checked against the tree as it is, then checks
    /// every one again against the finished tree.
    fn create_symlinks(&mut self) -> Result<(), ExtractError> {
        let links = std::mem::take(&mut self.symlinks);
        for link in &links {
            self.check_link(link)?;
            let path = self.prepare_parent(&link.relative)?;
            self.remove_existing(&path, &link.shown)?;
            std::os::unix::fs::symlink(&link.target, &path)
                .map_err(|source| io_error(&path, source))?;
            self.summary.links += 1;
        }
        for link in &links {
            self.check_link(link)?;
        }
        Ok(())
    }

    fn check_link(&self, link: &PendingLink) -> Result<(), ExtractError> {
        let parent = link.relative.parent().unwrap_or(Path::new(""));
        if resolves_inside(self.root, parent, &link.target) {
            Ok(())
        } else {
            Err(ExtractError::LinkEscapes {
                path: link.shown.clone(),
                target: link.target.to_string_lossy().into_owned(),
            })
        }
    }

    /// Creates the missing parent directories of `relative` and returns its full path;
    /// fails when a parent is a symbolic link or a file.
    fn prepare_parent(&mut self, relative: &Path) -> Result<PathBuf, ExtractError> {
        let mut current = self.root.to_path_buf();
        let mut components = relative.components().peekable();
        while let Some(component) = components.next() {
            current.push(component);
            if components.peek().is_none() {
                break;
            }
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(ExtractError::UnsafePath {
                        path: relative.to_string_lossy().into_owned(),
                        reason: "goes through a symbolic link",
                    });
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(ExtractError::Conflict {
                        path: relative.to_string_lossy().into_owned(),
                    });
                }
                Err(_) => {
                    fs::create_dir(&current).map_err(|source| io_error(&current, source))?;
                    self.summary.directories += 1;
                }
            }
        }
        Ok(current)
    }

    /// Whether no parent of `relative` is a symbolic link (or missing).
    fn no_links_above(&self, relative: &Path) -> bool {
        let mut current = self.root.to_path_buf();
        let mut components = relative.components().peekable();
        while let Some(component) = components.next() {
            if components.peek().is_none() {
                return true;
            }
            current.push(component);
            if !fs::symlink_metadata(&current).is_ok_and(|meta| meta.is_dir()) {
                return false;
            }
        }
        true
    }

    /// Removes a file or link at `path` so a later entry replaces it (never writing
    /// through it); a directory there is a conflict.
    fn remove_existing(&self, path: &Path, shown: &str) -> Result<(), ExtractError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => Err(ExtractError::Conflict {
                path: shown.to_owned(),
            }),
            Ok(_) => fs::remove_file(path).map_err(|source| io_error(path, source)),
            Err(_) => Ok(()),
        }
    }
}

/// The entry's path as a relative path of normal components; `None` for the root
/// itself; an error when it is absolute or has a `..` component.
fn safe_relative(raw: &Path, shown: &str) -> Result<Option<PathBuf>, ExtractError> {
    let mut relative = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ExtractError::UnsafePath {
                    path: shown.to_owned(),
                    reason: "has a '..' component",
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::UnsafePath {
                    path: shown.to_owned(),
                    reason: "is an absolute path",
                });
            }
        }
    }
    Ok((!relative.as_os_str().is_empty()).then_some(relative))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<PathBuf, ExtractError> {
    match entry.link_name().map_err(ExtractError::Corrupt)? {
        Some(target) if !target.as_os_str().is_empty() => Ok(target.into_owned()),
        _ => Err(ExtractError::UnsafePath {
            path: shown.to_owned(),
            reason: "is a link without a target",
        }),
    }
}

/// Whether the symbolic link target `target`, written in the directory `parent`
/// (relative to `root`), resolves inside `root`, following the links that exist now.
/// A missing component is taken as a plain directory.
pub(crate) fn resolves_inside(root: &Path, parent: &Path, target: &Path) -> bool {
    let mut resolved: Vec<OsString> = parent
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    // A stack of components still to resolve; the next one is at the end.
    let Some(mut pending) = reversed_parts(target) else {
        return false;
    };
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        let name = match part {
            Part::Parent => {
                if resolved.pop().is_none() {
                    return false;
                }
                continue;
            }
            Part::Name(name) => name,
        };
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&name);
        let is_link =
            fs::symlink_metadata(&candidate).is_ok_and(|meta| meta.file_type().is_symlink());
        if !is_link {
            resolved.push(name);
            continue;
        }
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return false;
        }
        // The link's own target is resolved next, from the link's directory.
        match fs::read_link(&candidate)
            .ok()
            .as_deref()
            .and_then(reversed_parts)
        {
            Some(parts) => pending.extend(parts),
            None => return false,
        }
    }
    true
}

/// One component of a link target.
enum Part {
    Parent,
    Name(OsString),
}

/// The components of a relative path, last first; `None` when it is absolute.
fn reversed_parts(path: &Path) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(Part::Name(name.to_owned())),
            Component::ParentDir => parts.push(Part::Parent),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    parts.reverse();
    Some(parts)
}

/// Copies `entry` into `file`, stopping once more than `budget` bytes were copied;
/// returns the bytes copied. Read errors are a corrupt archive, write errors I/O.
fn copy_capped(
    entry: &mut impl Read,
    file: &mut File,
    budget: u64,
    path: &Path,
) -> Result<u64, ExtractError> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match entry.read(&mut buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ExtractError::Corrupt(e)),
        };
        file.write_all(&buffer[..n])
            .map_err(|source| io_error(path, source))?;
        copied += n as u64;
        if copied > budget {
            return Ok(copied);
        }
    }
}

fn kind_name(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        _ => "special file",
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ExtractError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: io::Error) -> ExtractError {
    ExtractError::Io {
        path: path.to_owned(),
        source,
    }
}
