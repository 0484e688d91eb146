//! Packaging a directory as the workspace archive `tlao run` uploads: a `tar.gz` of
//! what a developer would commit (requirement 8.6).
//!
//! What goes in: the files the `ignore` crate's walker keeps — `.gitignore` files at
//! every level (negations included, and those of parent directories), `.git/info/exclude`,
//! the global git excludes, and `.tlaoignore` files (same syntax) — minus directories
//! that are never source: [`ALWAYS_EXCLUDED`] (`.git`, `node_modules`, `target`, `build`,
//! `dist`, virtualenvs, caches...), unless the root `.tlaoignore` re-includes one with a
//! negated pattern (`!build/`). Regular files keep their mode bits and modification
//! time; owners are dropped. Symbolic links are stored as links, never followed; a link
//! whose target leaves the directory (absolute, or `..` past the root) is skipped, since
//! the worker would refuse the whole archive for it. Other file types (sockets, fifos,
//! devices) are skipped.
//!
//! The archive is written as it is made: a thread walks the tree and writes the tar
//! stream into a bounded channel in chunks, threads deflate the chunks side by side, and
//! the calling thread writes them, in order, as one gzip stream (as `pigz` does), so
//! memory stays at a few chunks whatever the tree's size, and reading overlaps
//! compressing.
//!
//! This module stands alone (no `crate::` imports) so the packaging benchmark can
//! include it as is.

use std::fs::{File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::Compression;
use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Directory names that are never packaged: version control, dependencies, build
/// outputs and caches, wherever they appear in the tree.
pub const ALWAYS_EXCLUDED: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".jj",
    "node_modules",
    "bower_components",
    ".pnpm-store",
    ".yarn",
    "target",
    "build",
    "dist",
    "out",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".next",
    ".nuxt",
    ".svelte-kit",
    ".turbo",
    ".parcel-cache",
    ".angular",
    ".gradle",
    ".terraform",
    ".serverless",
    ".aws-sam",
    ".cdk.staging",
    "cdk.out",
    ".DS_Store",
];

/// The file name of the packaging-specific ignore files.
pub const TLAOIGNORE: &str = ".tlaoignore";

/// How many bytes of tar stream travel in one chunk to the compressor.
const CHUNK_BYTES: usize = 256 * 1024;
/// How many chunks may wait for the compressor.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The directory to package is not one.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source} (add it to {TLAOIGNORE} to leave it out)")]
    Read {
        /// The path, relative to the packaged directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The archive could not be written.
    #[error("cannot write the archive: {0}")]
    Write(#[source] io::Error),
}

/// How far packaging got; passed to the progress callback after each file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries (files, directories, links) written so far.
    pub entries: u64,
    /// File content bytes read so far.
    pub bytes: u64,
}

/// A finished archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packaged {
    /// Regular files stored.
    pub files: u64,
    /// Directories stored.
    pub directories: u64,
    /// Symbolic links stored.
    pub symlinks: u64,
    /// File content bytes stored (uncompressed).
    pub content_bytes: u64,
    /// The archive's size in bytes (compressed).
    pub archive_bytes: u64,
    /// Every stored file with its size, in archive order.
    pub file_sizes: Vec<(PathBuf, u64)>,
    /// Links left out because they point outside the directory: `(link, target)`.
    pub skipped_links: Vec<(PathBuf, PathBuf)>,
    /// Entries left out because they are not files, directories or links.
    pub skipped_special: u64,
}

impl Packaged {
    /// The largest paths (directories or files, uncompressed) that together make up
    /// the archive, at most `count`, largest first: what to add to `.tlaoignore` when
    /// the archive is too large. A directory is shown instead of its biggest child
    /// unless that child alone holds nearly all of it.
    pub fn largest_paths(&self, count: usize) -> Vec<(PathBuf, u64, bool)> {
        use std::collections::BTreeMap;
        let mut sizes: BTreeMap<PathBuf, (u64, bool)> = BTreeMap::new();
        for (path, size) in &self.file_sizes {
            sizes.insert(path.clone(), (*size, false));
            for ancestor in path.ancestors().skip(1) {
                if ancestor.as_os_str().is_empty() {
                    break;
                }
                sizes.entry(ancestor.to_path_buf()).or_insert((0, true)).0 += size;
            }
        }
        // The deepest directory still holding 90% of its parent stands for it.
        let narrow = |mut path: PathBuf| loop {
            let (size, _) = sizes[&path];
            let child = sizes
                .range(path.clone()..)
                .skip(1)
                .take_while(|(p, _)| p.starts_with(&path))
                .filter(|(p, _)| p.parent() == Some(path.as_path()))
                .max_by_key(|(_, (s, _))| *s)
                .map(|(p, (s, _))| (p.clone(), *s));
            match child {
                Some((child, child_size)) if child_size * 10 >= size * 9 => path = child,
                _ => return path,
            }
        };
        let mut ranked: Vec<(&PathBuf, u64)> = sizes.iter().map(|(p, (s, _))| (p, *s)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut chosen: Vec<PathBuf> = Vec::new();
        for (path, _) in ranked {
            if chosen.len() >= count {
                break;
            }
            if chosen
                .iter()
                .any(|c| path.starts_with(c) || c.starts_with(path))
            {
                continue;
            }
            let narrowed = narrow(path.clone());
            if !chosen.iter().any(|c| narrowed.starts_with(c)) {
                chosen.push(narrowed);
            }
        }
        chosen
            .into_iter()
            .map(|path| {
                let (size, is_dir) = sizes[&path];
                (path, size, is_dir)
            })
            .collect()
    }
}

/// Packages `root` as a tar.gz written to `out` (which should be buffered or a file;
/// it is wrapped in a `BufWriter`), calling `progress` as files are stored.
pub fn package<W, P>(root: &Path, out: W, mut progress: P) -> Result<Packaged, PackageError>
where
    W: Write,
    P: FnMut(Progress) + Send,
{
    let metadata = std::fs::metadata(root).map_err(|source| PackageError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(PackageError::NotADirectory(root.to_path_buf()));
    }
    let (sender, receiver) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let counted = CountingWriter::new(BufWriter::with_capacity(CHUNK_BYTES, out));
    std::thread::scope(|scope| {
        let walker = scope.spawn(move || {
            let chunks = ChunkSender::new(sender);
            write_tar(root, chunks, &mut progress)
        });
        let compressed = compress(receiver, counted);
        let walked = walker
            .join()
            .map_err(|_| PackageError::Write(io::Error::other("the packaging thread panicked")))?;
        match (walked, compressed) {
            (Ok(mut packaged), Ok(size)) => {
                packaged.archive_bytes = size;
                Ok(packaged)
            }
            // The compressor failed first (a full disk): its error is the cause.
            (Err(PackageError::Write(e)), Err(cause)) if e.kind() == io::ErrorKind::BrokenPipe => {
                Err(cause)
            }
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
        }
    })
}

/// Gzips the chunks from `receiver` into `out`, on [`compressors`] threads; returns the
/// compressed size.
///
/// One gzip stream, as `pigz` writes it: each chunk is deflated on its own and ends
/// with a sync flush (an empty stored block, so the pieces join at byte boundaries);
/// the pieces are written in order after one gzip header, then an empty final block and
/// the trailer (the CRC-32 of the whole, combined from the chunks', and the size). Any
/// gzip reader reads it as one member. Chunks do not share a dictionary, which costs a
/// little ratio (each starts cold; at 256 KiB chunks, well under 1 %).
fn compress<W: Write>(
    receiver: Receiver<Vec<u8>>,
    mut out: CountingWriter<BufWriter<W>>,
) -> Result<u64, PackageError> {
    let threads = compressors();
    let work = std::sync::Mutex::new(receiver.into_iter().enumerate());
    let (done_tx, done_rx) = sync_channel::<(usize, io::Result<Piece>)>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work = &work;
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next chunk, in order.
                    let next = work.lock().map(|mut chunks| chunks.next());
                    let Ok(Some((index, chunk))) = next else {
                        return;
                    };
                    if done_tx.send((index, deflate_piece(&chunk))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        write_gzip(done_rx, &mut out)
    })?;
    out.flush().map_err(PackageError::Write)?;
    Ok(out.count)
}

/// How many threads deflate: the machine's cores, at most 4 (the walker needs one too,
/// and past that the disk or the walk is the limit).
fn compressors() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, 4)
}

/// One deflated chunk: its raw deflate bytes (ending in a sync flush), and the CRC-32
/// and length of what it holds.
struct Piece {
    deflated: Vec<u8>,
    crc: flate2::Crc,
}

/// Deflates `chunk` on its own, ending with a sync flush.
fn deflate_piece(chunk: &[u8]) -> io::Result<Piece> {
    let mut crc = flate2::Crc::new();
    crc.update(chunk);
    let mut deflater = flate2::Compress::new(Compression::default(), false);
    let mut deflated = Vec::with_capacity(chunk.len() / 3 + 1024);
    loop {
        let consumed = usize::try_from(deflater.total_in()).unwrap_or(chunk.len());
        deflater
            .compress_vec(
                &chunk[consumed..],
                &mut deflated,
                flate2::FlushCompress::Sync,
            )
            .map_err(io::Error::other)?;
        // The flush is complete once all input is taken and the output had room left.
        if deflater.total_in() as usize == chunk.len() && deflated.len() < deflated.capacity() {
            return Ok(Piece { deflated, crc });
        }
        deflated.reserve(deflated.capacity().max(4096));
    }
}

/// The gzip header `gzip -n` writes: deflate, no name, no time, Unix.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03];
/// An empty final deflate block (fixed Huffman codes): ends the stream of pieces.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// Writes the pieces arriving on `done` (in any order) as one gzip stream into `out`.
fn write_gzip<W: Write>(
    done: Receiver<(usize, io::Result<Piece>)>,
    out: &mut W,
) -> Result<(), PackageError> {
    out.write_all(&GZIP_HEADER).map_err(PackageError::Write)?;
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0;
    let mut crc = flate2::Crc::new();
    for (index, piece) in done {
        waiting.insert(index, piece.map_err(PackageError::Write)?);
        while let Some(piece) = waiting.remove(&next) {
            out.write_all(&piece.deflated)
                .map_err(PackageError::Write)?;
            crc.combine(&piece.crc);
            next += 1;
        }
    }
    out.write_all(&FINAL_EMPTY_BLOCK)
        .map_err(PackageError::Write)?;
    out.write_all(&crc.sum().to_le_bytes())
        .map_err(PackageError::Write)?;
    out.write_all(&crc.amount().to_le_bytes())
        .map_err(PackageError::Write)
}

/// Walks `root` and writes the tar stream into `out`.
fn write_tar<W: Write>(
    root: &Path,
    out: W,
    progress: &mut dyn FnMut(Progress),
) -> Result<Packaged, PackageError> {
    let reincluded = root_reincludes(root);
    let mut walk = WalkBuilder::new(root);
    walk.hidden(false)
        .ignore(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .add_custom_ignore_filename(TLAOIGNORE)
        .sort_by_file_name(|a, b| a.cmp(b));
    let filter_root = root.to_path_buf();
    walk.filter_entry(move |entry| {
        let always = entry.depth() > 0
            && entry.file_type().is_some_and(|t| t.is_dir() || t.is_file())
            && entry
                .file_name()
                .to_str()
                .is_some_and(|name| ALWAYS_EXCLUDED.contains(&name));
        if !always {
            return true;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        let relative = entry
            .path()
            .strip_prefix(&filter_root)
            .unwrap_or(entry.path());
        reincluded
            .as_ref()
            .is_some_and(|rules| rules.matched(relative, is_dir).is_whitelist())
    });

    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut packaged = Packaged::default();
    let mut done = Progress::default();
    for entry in walk.build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                if let Some(io_error) = error.io_error() {
                    let path = error_path(&error).unwrap_or_else(|| root.to_path_buf());
                    return Err(PackageError::Read {
                        path: relative_to(root, &path),
                        source: io::Error::new(io_error.kind(), io_error.to_string()),
                    });
                }
                // A malformed pattern in an ignore file: the rest of the file applies.
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.path();
        let relative = relative_to(root, path);
        let read_error = |source: io::Error| PackageError::Read {
            path: relative.clone(),
            source,
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(read_error)?;
            if !stays_inside(&relative, &target) {
                packaged.skipped_links.push((relative, target));
                continue;
            }
            let metadata = entry.metadata().map_err(|e| {
                read_error(
                    e.into_io_error()
                        .unwrap_or_else(|| io::Error::other("no metadata")),
                )
            })?;
            let mut header = header_for(&metadata, tar::EntryType::Symlink, 0);
            header.set_mode(0o777);
            tar.append_link(&mut header, &relative, &target)
                .map_err(PackageError::Write)?;
            packaged.symlinks += 1;
        } else if file_type.is_dir() {
            let metadata = std::fs::symlink_metadata(path).map_err(read_error)?;
            let mut header = header_for(&metadata, tar::EntryType::Directory, 0);
            tar.append_data(&mut header, &relative, io::empty())
                .map_err(PackageError::Write)?;
            packaged.directories += 1;
        } else if file_type.is_file() {
            let file = File::open(path).map_err(read_error)?;
            let metadata = file.metadata().map_err(read_error)?;
            let size = metadata.len();
            let mut header = header_for(&metadata, tar::EntryType::Regular, size);
            let exact = ExactReader {
                inner: file.take(size),
                remaining: size,
            };
            tar.append_data(&mut header, &relative, exact)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => read_error(e),
                    _ => PackageError::Write(e),
                })?;
            packaged.files += 1;
            packaged.content_bytes += size;
            done.bytes += size;
            packaged.file_sizes.push((relative, size));
        } else {
            packaged.skipped_special += 1;
            continue;
        }
        done.entries += 1;
        progress(done);
    }
    tar.into_inner()
        .and_then(|mut out| out.flush())
        .map_err(PackageError::Write)?;
    Ok(packaged)
}

/// The root `.tlaoignore` as a matcher, to let a negated pattern (`!build/`) bring
/// back a directory of [`ALWAYS_EXCLUDED`].
fn root_reincludes(root: &Path) -> Option<Gitignore> {
    let file = root.join(TLAOIGNORE);
    if !file.is_file() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(root);
    builder.add(file);
    builder.build().ok()
}

/// A tar header for an entry: its mode bits (without set-id and sticky bits), its
/// modification time, and no owner.
fn header_for(metadata: &Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(metadata.mode() & 0o777);
    header.set_mtime(u64::try_from(metadata.mtime()).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Whether the link at `link` (relative to the root) with target `target` resolves,
/// lexically, to a path inside the root.
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: usize = link.parent().map_or(0, |p| p.components().count());
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn relative_to(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

/// Reads exactly `remaining` bytes or fails: a file that shrinks while it is packaged
/// must not leave a tar header promising bytes that never come.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packaged",
            ));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

/// Sends what is written in chunks of [`CHUNK_BYTES`] to the compressor.
struct ChunkSender {
    sender: SyncSender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl ChunkSender {
    fn new(sender: SyncSender<Vec<u8>>) -> Self {
        ChunkSender {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.buffer.len();
        let n = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use flate2::read::GzDecoder;

    use super::*;

    /// What an archive holds: path → (kind, mode, link target or content).
    fn entries(archive: &[u8]) -> BTreeMap<String, (char, u32, String)> {
        let mut tar = tar::Archive::new(GzDecoder::new(archive));
        let mut found = BTreeMap::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            let (kind, detail) = match entry.header().entry_type() {
                tar::EntryType::Symlink => (
                    'l',
                    entry.link_name().unwrap().unwrap().display().to_string(),
                ),
                tar::EntryType::Directory => ('d', String::new()),
                _ => {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).unwrap();
                    ('f', text)
                }
            };
            found.insert(path.trim_end_matches('/').to_owned(), (kind, mode, detail));
        }
        found
    }

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn package_dir(root: &Path) -> (Packaged, Vec<u8>) {
        let mut out = Vec::new();
        let packaged = package(root, &mut out, |_| {}).unwrap();
        assert_eq!(packaged.archive_bytes, out.len() as u64);
        (packaged, out)
    }

    #[test]
    fn gitignore_rules_apply_at_every_level_with_negations() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".gitignore", "*.log\n!keep.log\nsecrets/\n");
        write(root, "app.log", "no");
        write(root, "keep.log", "yes");
        write(root, "secrets/key", "no");
        write(root, "src/.gitignore", "generated.rs\n");
        write(root, "src/generated.rs", "no");
        write(root, "src/main.rs", "fn main() {}");
        write(root, ".tlaoignore", "big.bin\n");
        write(root, "big.bin", "no");

        let (_, archive) = package_dir(root);
        let found = entries(&archive);

        let paths: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".gitignore",
                ".tlaoignore",
                "keep.log",
                "src",
                "src/.gitignore",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn version_control_dependencies_and_build_outputs_are_always_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for excluded in [
            ".git/HEAD",
            "node_modules/x/index.js",
            "target/debug/app",
            "web/dist/app.js",
            "web/node_modules/y.js",
            "py/__pycache__/m.pyc",
            ".venv/bin/python",
        ] {
            write(root, excluded, "no");
        }
        write(root, "web/src/app.ts", "yes");
        write(root, "targets.txt", "a file named like a directory stays");

        let (_, archive) = package_dir(root);
        let found = entries(&archive);

        let files: Vec<&str> = found
            .iter()
            .filter(|(_, (kind, _, _))| *kind == 'f')
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(files, ["targets.txt", "web/src/app.ts"]);
    }

    #[test]
    fn a_negated_tlaoignore_pattern_brings_back_an_always_excluded_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".tlaoignore", "!build/\n");
        write(root, "build/gen.sh", "echo");
        write(root, "dist/out.js", "no");

        let (_, archive) = package_dir(root);

        let found = entries(&archive);
        assert!(found.contains_key("build/gen.sh"), "{found:?}");
        assert!(!found.contains_key("dist/out.js"));
    }

    #[test]
    fn file_modes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run.sh", "#!/bin/sh\n");
        write(root, "data.txt", "x");
        std::fs::set_permissions(root.join("run.sh"), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(root.join("data.txt"), PermissionsExt::from_mode(0o640)).unwrap();

        let (_, archive) = package_dir(root);
        let found = entries(&archive);

        assert_eq!(found["run.sh"].1, 0o755);
        assert_eq!(found["data.txt"].1, 0o640);
    }

    #[test]
    fn symlinks_are_stored_as_links_and_never_followed_out_of_the_tree() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", "outside");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "docs/real.md", "inside");
        symlink("real.md", root.join("docs/alias.md")).unwrap();
        symlink("../docs", root.join("docs/loop")).unwrap();
        symlink("docs", root.join("docs-link")).unwrap();
        symlink(outside.path().join("secret.txt"), root.join("absolute")).unwrap();
        symlink("../../etc/passwd", root.join("docs/escape")).unwrap();
        symlink(outside.path(), root.join("outside-dir")).unwrap();

        let (packaged, archive) = package_dir(root);
        let found = entries(&archive);

        assert_eq!(found["docs/alias.md"], ('l', 0o777, "real.md".into()));
        assert_eq!(found["docs/loop"], ('l', 0o777, "../docs".into()));
        assert_eq!(found["docs-link"], ('l', 0o777, "docs".into()));
        for skipped in ["absolute", "docs/escape", "outside-dir"] {
            assert!(!found.contains_key(skipped), "{skipped} was packaged");
        }
        assert_eq!(packaged.skipped_links.len(), 3);
        assert!(!found.values().any(|(_, _, text)| text == "outside"));
        assert_eq!(packaged.symlinks, 3);
    }

    #[test]
    fn the_largest_paths_name_the_directory_that_holds_the_bulk() {
        let packaged = Packaged {
            file_sizes: vec![
                ("assets/video/a.mp4".into(), 500),
                ("assets/video/b.mp4".into(), 490),
                ("assets/logo.png".into(), 5),
                ("src/main.rs".into(), 50),
                ("README.md".into(), 10),
            ],
            ..Packaged::default()
        };

        let largest = packaged.largest_paths(3);

        assert_eq!(
            largest,
            vec![
                (PathBuf::from("assets/video"), 990, true),
                (PathBuf::from("src/main.rs"), 50, false),
                (PathBuf::from("README.md"), 10, false),
            ]
        );
    }

    #[test]
    fn a_file_in_place_of_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", "x");

        let error = package(&dir.path().join("f"), Vec::new(), |_| {}).unwrap_err();

        assert!(matches!(error, PackageError::NotADirectory(_)));
    }

    #[test]
    fn a_tree_of_many_chunks_is_one_gzip_stream_any_reader_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // ~3 MiB of text in 300 files: a dozen chunks, deflated side by side.
        let mut expected = BTreeMap::new();
        for i in 0..300 {
            let text: String = (0..10_000)
                .map(|j| char::from(b'a' + ((i * 31 + j * 7 + j / 13) % 26) as u8))
                .collect();
            write(root, &format!("src/f{i:03}.txt"), &text);
            expected.insert(format!("src/f{i:03}.txt"), text);
        }
        let (_, archive) = package_dir(root);

        // flate2 checks the trailer's CRC-32 and size as it reads.
        let found = entries(&archive);
        for (path, text) in &expected {
            assert_eq!(&found[path].2, text, "{path}");
        }
        // And so does gzip itself: one member, nothing after it.
        let file = root.join("archive.tar.gz");
        std::fs::write(&file, &archive).unwrap();
        let tested = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&file)
            .status()
            .unwrap();
        assert!(tested.success(), "gzip -t refused the archive");
        assert!(
            archive.len() < 3_000_000 / 2,
            "compressed to {} bytes",
            archive.len()
        );
    }

    #[test]
    fn a_piece_ends_at_a_byte_boundary_and_pieces_join_into_one_stream() {
        let chunks: Vec<Vec<u8>> = vec![b"hello ".repeat(1000), Vec::new(), b"world".repeat(7)];
        let mut out = Vec::new();
        let (tx, rx) = sync_channel(3);
        // Out of order, as the compressors may finish.
        for index in [2, 0, 1] {
            tx.send((index, deflate_piece(&chunks[index]))).unwrap();
        }
        drop(tx);
        write_gzip(rx, &mut out).unwrap();
        let mut read = Vec::new();
        GzDecoder::new(&out[..]).read_to_end(&mut read).unwrap();
        assert_eq!(read, chunks.concat());
    }
}
