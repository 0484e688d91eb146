//! Safe extraction of hostile workspace archives: each attack fails cleanly and writes
//! nothing outside the extraction root; a normal archive keeps its modes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};
use tlao_worker_kiro::{ExtractError, ExtractLimits, extract_archive};

/// One raw tar entry; names are written byte for byte, unchecked.
enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Special(&'a str, EntryType),
    Zeros(&'a str, u64),
}

fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    let raw = header.as_old_mut();
    raw.name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header
}

fn with_link(mut header: Header, target: &str) -> Header {
    header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    header
}

fn tar_gz(items: &[Item<'_>]) -> Vec<u8> {
    let encoder = GzEncoder::new(Vec::new(), Compression::best());
    let mut builder = tar::Builder::new(encoder);
    for item in items {
        let (mut header, data): (Header, Box<dyn std::io::Read>) = match item {
            Item::File(name, data, mode) => (
                header(name, EntryType::Regular, data.len() as u64, *mode),
                Box::new(*data),
            ),
            Item::Dir(name) => (
                header(name, EntryType::Directory, 0, 0o755),
                Box::new(&[][..]),
            ),
            Item::Symlink(name, target) => (
                with_link(header(name, EntryType::Symlink, 0, 0o777), target),
                Box::new(&[][..]),
            ),
            Item::HardLink(name, target) => (
                with_link(header(name, EntryType::Link, 0, 0o644), target),
                Box::new(&[][..]),
            ),
            Item::Special(name, kind) => (header(name, *kind, 0, 0o644), Box::new(&[][..])),
            Item::Zeros(name, size) => (
                header(name, EntryType::Regular, *size, 0o644),
                Box::new(std::io::Read::take(std::io::repeat(0), *size)),
            ),
        };
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A sandbox: `root/` to extract into and `outside/secret` next to it.
struct Sandbox {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        fs::create_dir(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), "secret").unwrap();
        Sandbox { _dir: dir, base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn extract(
        &self,
        items: &[Item<'_>],
    ) -> Result<tlao_worker_kiro::ExtractSummary, ExtractError> {
        self.extract_with(items, limits())
    }

    fn extract_with(
        &self,
        items: &[Item<'_>],
        limits: ExtractLimits,
    ) -> Result<tlao_worker_kiro::ExtractSummary, ExtractError> {
        let archive = tar_gz(items);
        extract_archive(&archive[..], &self.root(), &limits)
    }

    /// Everything outside `root/` is as it was.
    fn assert_outside_untouched(&self) {
        let mut names: Vec<String> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["outside", "root"]);
        let outside: Vec<_> = fs::read_dir(self.base.join("outside")).unwrap().collect();
        assert_eq!(outside.len(), 1, "something was written into outside/");
        assert_eq!(
            fs::read_to_string(self.base.join("outside/secret")).unwrap(),
            "secret"
        );
        assert_eq!(
            fs::metadata(self.base.join("outside/secret"))
                .unwrap()
                .nlink(),
            1
        );
    }
}

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_bytes: 10 * 1024 * 1024,
        max_entries: 1000,
    }
}

#[test]
fn a_path_with_a_parent_component_is_refused() {
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[
            Item::File("ok.txt", b"fine", 0o644),
            Item::File("../escaped.txt", b"x", 0o644),
        ])
        .unwrap_err();
    assert!(matches!(error, ExtractError::UnsafePath { .. }), "{error}");
    assert!(error.to_string().contains("'..'"), "{error}");
    assert!(!sandbox.base.join("escaped.txt").exists());
    sandbox.assert_outside_untouched();
}

#[test]
fn a_nested_parent_component_is_refused() {
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[Item::File("a/../../outside/secret", b"overwritten", 0o644)])
        .unwrap_err();
    assert!(matches!(error, ExtractError::UnsafePath { .. }), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn an_absolute_path_is_refused() {
    let sandbox = Sandbox::new();
    let target = sandbox.base.join("outside/absolute.txt");
    let name = target.to_str().unwrap().to_owned();
    let error = sandbox
        .extract(&[Item::File(&name, b"x", 0o644)])
        .unwrap_err();
    assert!(error.to_string().contains("absolute"), "{error}");
    assert!(!target.exists());
    sandbox.assert_outside_untouched();
}

#[test]
fn a_symlink_pointing_outside_is_refused_and_nothing_is_written_through_it() {
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[
            Item::Symlink("escape", "../outside"),
            Item::File("escape/pwned", b"x", 0o644),
        ])
        .unwrap_err();
    assert!(matches!(error, ExtractError::LinkEscapes { .. }), "{error}");
    assert!(!sandbox.base.join("outside/pwned").exists());
    sandbox.assert_outside_untouched();
}

#[test]
fn an_absolute_symlink_is_refused() {
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[Item::Symlink("passwd", "/etc/passwd")])
        .unwrap_err();
    assert!(matches!(error, ExtractError::LinkEscapes { .. }), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn a_symlink_escaping_through_another_symlink_is_refused() {
    // `here -> .` is harmless, but `up -> here/..` is the root's parent, which a purely
    // lexical check would take for the root itself.
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[Item::Symlink("up", "here/.."), Item::Symlink("here", ".")])
        .unwrap_err();
    assert!(matches!(error, ExtractError::LinkEscapes { .. }), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn a_hard_link_to_a_file_outside_is_refused() {
    let sandbox = Sandbox::new();
    let error = sandbox
        .extract(&[Item::HardLink("stolen", "../outside/secret")])
        .unwrap_err();
    assert!(matches!(error, ExtractError::LinkEscapes { .. }), "{error}");
    let sandbox = Sandbox::new();
    let absolute = sandbox.base.join("outside/secret");
    let error = sandbox
        .extract(&[Item::HardLink("stolen", absolute.to_str().unwrap())])
        .unwrap_err();
    assert!(matches!(error, ExtractError::LinkEscapes { .. }), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn device_files_and_fifos_are_refused() {
    for (kind, word) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let sandbox = Sandbox::new();
        let error = sandbox.extract(&[Item::Special("dev", kind)]).unwrap_err();
        assert!(matches!(error, ExtractError::Unsupported { .. }), "{error}");
        assert!(error.to_string().contains(word), "{error}");
        assert!(!sandbox.root().join("dev").exists());
        sandbox.assert_outside_untouched();
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_byte_cap() {
    let sandbox = Sandbox::new();
    let cap = 1024 * 1024;
    // 16 MiB of zeros compress to a few dozen KiB.
    let items = [Item::Zeros("bomb.bin", 16 * 1024 * 1024)];
    let archive = tar_gz(&items);
    assert!(archive.len() < 64 * 1024, "{} bytes", archive.len());
    let error = extract_archive(
        &archive[..],
        &sandbox.root(),
        &ExtractLimits {
            max_bytes: cap,
            max_entries: 10,
        },
    )
    .unwrap_err();
    assert!(
        matches!(error, ExtractError::TooLarge { max } if max == cap),
        "{error}"
    );
    let written = fs::metadata(sandbox.root().join("bomb.bin")).map_or(0, |m| m.len());
    assert!(written <= cap + 64 * 1024, "{written} bytes written");
    sandbox.assert_outside_untouched();
}

#[test]
fn a_file_declared_larger_than_the_byte_cap_is_refused_before_anything_is_written() {
    let sandbox = Sandbox::new();
    let items = [
        Item::Zeros("small.bin", 1000),
        Item::Zeros("bomb.bin", 16 * 1024 * 1024),
    ];
    let error = sandbox
        .extract_with(
            &items,
            ExtractLimits {
                max_bytes: 1024 * 1024,
                max_entries: 10,
            },
        )
        .unwrap_err();
    assert!(matches!(error, ExtractError::TooLarge { .. }), "{error}");
    assert!(sandbox.root().join("small.bin").exists());
    assert!(!sandbox.root().join("bomb.bin").exists());
    sandbox.assert_outside_untouched();
}

#[test]
fn many_small_files_over_the_byte_cap_are_refused() {
    let sandbox = Sandbox::new();
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.bin")).collect();
    let items: Vec<Item<'_>> = names.iter().map(|n| Item::Zeros(n, 1000)).collect();
    let error = sandbox
        .extract_with(
            &items,
            ExtractLimits {
                max_bytes: 10_000,
                max_entries: 100,
            },
        )
        .unwrap_err();
    assert!(matches!(error, ExtractError::TooLarge { .. }), "{error}");
}

#[test]
fn too_many_entries_are_refused() {
    let sandbox = Sandbox::new();
    let names: Vec<String> = (0..50).map(|i| format!("f{i}.txt")).collect();
    let items: Vec<Item<'_>> = names.iter().map(|n| Item::File(n, b"x", 0o644)).collect();
    let error = sandbox
        .extract_with(
            &items,
            ExtractLimits {
                max_bytes: 1 << 20,
                max_entries: 10,
            },
        )
        .unwrap_err();
    assert!(
        matches!(error, ExtractError::TooManyEntries { max: 10 }),
        "{error}"
    );
    assert_eq!(error.to_string(), "the archive has more than 10 entries");
    let written = fs::read_dir(sandbox.root()).unwrap().count();
    assert!(written <= 10, "{written} files written");
}

#[test]
fn bytes_that_are_not_gzip_are_a_clean_error() {
    let sandbox = Sandbox::new();
    let error =
        extract_archive(&b"not a tarball at all"[..], &sandbox.root(), &limits()).unwrap_err();
    assert!(matches!(error, ExtractError::Corrupt(_)), "{error}");
}

#[test]
fn a_normal_archive_extracts_with_its_modes_and_inner_links() {
    let sandbox = Sandbox::new();
    let summary = sandbox
        .extract(&[
            Item::Dir("./"),
            Item::Dir("src"),
            Item::File("src/main.rs", b"fn main() {}\n", 0o644),
            Item::File("run.sh", b"#!/bin/sh\necho hi\n", 0o755),
            Item::File("setuid", b"x", 0o4755),
            Item::File("deep/nested/file.txt", b"created with its parents", 0o600),
            Item::Symlink("docs", "src"),
            Item::Symlink("src/up", "../run.sh"),
            Item::HardLink("copy.rs", "src/main.rs"),
        ])
        .unwrap();
    let root = sandbox.root();
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(mode("src/main.rs"), 0o644);
    assert_eq!(mode("setuid"), 0o755, "setuid bits are dropped");
    assert_eq!(
        fs::read_to_string(root.join("deep/nested/file.txt")).unwrap(),
        "created with its parents"
    );
    assert_eq!(fs::read_link(root.join("docs")).unwrap(), Path::new("src"));
    assert_eq!(
        fs::read_to_string(root.join("docs/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("src/up")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(fs::metadata(root.join("copy.rs")).unwrap().nlink(), 2);
    assert_eq!(summary.files, 4);
    assert_eq!(summary.links, 3);
    let output = std::process::Command::new(root.join("run.sh"))
        .output()
        .unwrap();
    assert_eq!(output.stdout, b"hi\n");
    sandbox.assert_outside_untouched();
}

#[test]
fn an_archive_made_by_tar_round_trips() {
    // Archives made by the real tar (GNU long names, pax headers) extract too.
    let sandbox = Sandbox::new();
    let source = sandbox.base.join("source");
    let long = "a".repeat(120);
    fs::create_dir_all(source.join(&long)).unwrap();
    fs::write(source.join(&long).join("file.txt"), "long name").unwrap();
    let archive = sandbox.base.join("a.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&source)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let mut bytes = Vec::new();
    fs::File::open(&archive)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .unwrap();
    extract_archive(&bytes[..], &sandbox.root(), &limits()).unwrap();
    assert_eq!(
        fs::read_to_string(sandbox.root().join(&long).join("file.txt")).unwrap(),
        "long name"
    );
}

#[test]
fn a_write_that_fails_is_named_relative_to_the_root_never_by_the_workers_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("run").join("work");
    // A name longer than any file system allows for one component.
    let long = format!("src/{}.txt", "n".repeat(300));
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, &long, &b"hi"[..]).unwrap();
    let archive = builder.into_inner().unwrap().finish().unwrap();

    let error = extract_archive(&archive[..], &root, &limits()).unwrap_err();

    let message = error.to_string();
    assert!(matches!(error, ExtractError::Io { .. }), "{message}");
    assert!(
        message.starts_with(&format!("cannot extract {long}: ")),
        "{message}"
    );
    assert!(
        !message.contains(dir.path().to_str().unwrap()),
        "the message names the worker's directory: {message}"
    );

    // The root itself that cannot be made is ".".
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let error = extract_archive(&archive[..], &file.join("root"), &limits()).unwrap_err();
    assert!(
        error.to_string().starts_with("cannot extract .: "),
        "{error}"
    );
}
