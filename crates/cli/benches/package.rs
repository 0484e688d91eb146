//! Packaging speed of `tlao run`: the CLI's packager (`src/package.rs`, walk + tar +
//! gzip on several threads) next to `git archive HEAD | gzip` and `tar czf` over the same
//! file set, on a generated repository of 10,000 source files with ignored
//! `node_modules` and `target` trees beside them (the packager must skip those; the
//! other two never see them: git ignores them, `tar` gets the committed file list).
//!
//! `cargo bench -p tlao-cli --bench package` (release build). Each tool runs once to
//! warm the page cache, then `PACKAGE_ROUNDS` times (default 5); the median is shown.
//! Goal (issue 18): at least 2x as fast as `tar czf` on 2 cores.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The module's unit tests are compiled out here (no test harness), their imports with them.
#[allow(dead_code, unused_imports)]
#[path = "../src/package.rs"]
mod package;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Source files in the generated repository.
const FILES: usize = 10_000;
/// Files under `node_modules/` and `target/`, which must be left out.
const IGNORED_FILES: usize = 3_000;
const DEFAULT_ROUNDS: usize = 5;

/// A deterministic pseudo-random generator (xorshift), so every run builds the same tree.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Source-like text of about `len` bytes: words from a small vocabulary, so it
/// compresses the way code does.
fn source_text(noise: &mut Noise, len: usize) -> String {
    const WORDS: [&str; 24] = [
        "fn", "let", "mut", "self", "match", "Some", "None", "Ok", "Err", "return", "impl",
        "struct", "pub", "use", "crate", "value", "count", "items", "config", "error", "=>", "{",
        "}", ";",
    ];
    let mut text = String::with_capacity(len + 16);
    let mut line = 0;
    while text.len() < len {
        let word = WORDS[(noise.next() % WORDS.len() as u64) as usize];
        text.push_str(word);
        line += word.len() + 1;
        if line > 60 + (noise.next() % 30) as usize {
            text.push('\n');
            line = 0;
        } else {
            text.push(' ');
        }
        if noise.next().is_multiple_of(97) {
            text.push_str(&format!("{}", noise.next() % 100_000));
        }
    }
    text
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The repository: `FILES` files in nested directories (sizes from 200 B to 16 KiB),
/// some executable, committed; `node_modules/` and `target/` ignored beside them.
fn generate(root: &Path) {
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    write(root, ".gitignore", b"node_modules/\ntarget/\n*.log\n");
    for i in 0..FILES {
        let dir = format!("src/mod{:02}/sub{:02}", i % 40, (i / 40) % 25);
        let len = 200 + (noise.next() % 16_000) as usize;
        let path = format!("{dir}/file{i:05}.rs");
        write(root, &path, source_text(&mut noise, len).as_bytes());
        if i.is_multiple_of(50) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join(&path), PermissionsExt::from_mode(0o755)).unwrap();
        }
    }
    for i in 0..IGNORED_FILES {
        let len = 500 + (noise.next() % 8_000) as usize;
        let text = source_text(&mut noise, len);
        if i.is_multiple_of(3) {
            write(
                root,
                &format!("target/debug/deps/obj{i:05}.o"),
                text.as_bytes(),
            );
        } else {
            write(
                root,
                &format!("node_modules/pkg{:03}/lib/index{i:05}.js", i % 300),
                text.as_bytes(),
            );
        }
    }
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args([
                "-c",
                "user.email=bench@example.com",
                "-c",
                "user.name=bench",
            ])
            .args(args)
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "generated"]);
}

/// Runs `work` once to warm up, then `rounds` times; the median duration and the size
/// of `out` after the last round.
fn measure(rounds: usize, out: &Path, mut work: impl FnMut()) -> (Duration, u64) {
    work();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    (times[times.len() / 2], size)
}

fn shell(script: &str, dir: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("sh runs");
    assert!(status.success(), "{script}");
}

fn main() {
    let rounds = std::env::var("PACKAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
        .max(1);
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    generate(&repo);
    println!(
        "generated {FILES} committed files (+{IGNORED_FILES} ignored) in {:.1?}",
        started.elapsed()
    );
    shell(
        &format!("git ls-files -z > {}", out.join("files.txt").display()),
        &repo,
    );

    let cli_out = out.join("cli.tar.gz");
    let mut stored = package::Packaged::default();
    let (cli, cli_size) = measure(rounds, &cli_out, || {
        let file = std::fs::File::create(&cli_out).unwrap();
        stored = package::package(&repo, file, |_| {}).unwrap();
    });
    assert_eq!(
        stored.files as usize,
        FILES + 1,
        "the sources and .gitignore"
    );

    let git_out = out.join("git.tar.gz");
    let (git, git_size) = measure(rounds, &git_out, || {
        shell(
            &format!("git archive HEAD | gzip > {}", git_out.display()),
            &repo,
        );
    });

    let tar_out = out.join("tar.tar.gz");
    let (tar, tar_size) = measure(rounds, &tar_out, || {
        shell(
            &format!(
                "tar czf {} --null -T {}",
                tar_out.display(),
                out.join("files.txt").display()
            ),
            &repo,
        );
    });

    println!("median of {rounds} rounds, same {} files:", FILES + 1);
    let row = |name: &str, time: Duration, size: u64| {
        println!(
            "  {name:<26} {:>8.1} ms  {:>6.2} MiB  {:>5.2}x git archive | gzip",
            time.as_secs_f64() * 1000.0,
            size as f64 / (1024.0 * 1024.0),
            time.as_secs_f64() / git.as_secs_f64()
        );
    };
    row("tlao packager", cli, cli_size);
    row("git archive HEAD | gzip", git, git_size);
    row("tar czf", tar, tar_size);
    let speedup = tar.as_secs_f64() / cli.as_secs_f64();
    println!(
        "the packager is {speedup:.2}x as fast as tar czf (goal >= 2x): goal {}",
        if speedup >= 2.0 { "met" } else { "missed" }
    );
}
