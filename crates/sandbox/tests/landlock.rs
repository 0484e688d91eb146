//! Real children in real sandboxes: what they are refused and what they may still do.
//!
//! The child is this test binary again, run with `TLAO_SANDBOX_PROBE` naming one action
//! (`probe_child` performs it and exits with 0 on success or the errno it got), so
//! every check reads the exact error the kernel gave. These tests need Landlock (this
//! machine's kernel reports ABI 7); without it they fail, saying so.
#![cfg(target_os = "linux")]
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tlao_sandbox::{Network, SandboxPolicy, Support, SystemRules, support};

const PROBE: &str = "TLAO_SANDBOX_PROBE";
const EACCES: i32 = 13;
const EPERM: i32 = 1;

/// The child's side: does what `TLAO_SANDBOX_PROBE` says and exits with its errno.
#[test]
fn probe_child() {
    let Ok(probe) = std::env::var(PROBE) else {
        return;
    };
    let (action, arg) = probe.split_once(':').unwrap();
    let result: std::io::Result<()> = match action {
        "read" => std::fs::File::open(arg).and_then(|mut f| {
            let mut text = String::new();
            f.read_to_string(&mut text).map(|_| ())
        }),
        "write" => std::fs::write(arg, b"x"),
        "list" => std::fs::read_dir(arg).map(|_| ()),
        "kill" => {
            let pid: i32 = arg.parse().unwrap();
            nix_kill0(pid)
        }
        "abstract" => {
            let addr = SocketAddr::from_abstract_name(arg.as_bytes()).unwrap();
            UnixStream::connect_addr(&addr).map(|_| ())
        }
        "pathname" => UnixStream::connect(arg).map(|_| ()),
        "tcp" => {
            std::net::TcpStream::connect(("127.0.0.1", arg.parse::<u16>().unwrap())).map(|_| ())
        }
        other => panic!("unknown probe {other}"),
    };
    std::process::exit(match result {
        Ok(()) => 0,
        Err(error) => error.raw_os_error().unwrap_or(255),
    });
}

#[allow(unsafe_code)]
fn nix_kill0(pid: i32) -> std::io::Result<()> {
    // Signal 0 through the C library: no signal is sent, only permission is checked.
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: `kill` with signal 0 has no effect but its error.
    if unsafe { kill(pid, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs the probe `action:arg` in `policy` (or unsandboxed with `None`); its errno.
fn probe(policy: Option<&SandboxPolicy>, action: &str, arg: &str) -> i32 {
    probe_on(policy, None, action, arg)
}

/// As [`probe`], the policy's rules added to `system`, built ahead.
fn probe_on(
    policy: Option<&SandboxPolicy>,
    system: Option<SystemRules>,
    action: &str,
    arg: &str,
) -> i32 {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(&exe);
    command
        .args(["--exact", "probe_child", "--nocapture", "--test-threads=1"])
        .env(PROBE, format!("{action}:{arg}"));
    if let Some(policy) = policy {
        let mut policy = policy.clone();
        // The child is this very binary: it must be readable and executable.
        policy.read.push(exe.clone());
        policy.prepare_on(system).unwrap().apply(&mut command);
    }
    let output = command.output().unwrap();
    output.status.code().unwrap_or(-1)
}

fn needs_landlock() {
    match support() {
        Support::Landlock { abi } => {
            assert!(*abi >= 6, "these tests need Landlock ABI 6, not {abi}")
        }
        Support::Unavailable { reason } => panic!("these tests need Landlock: {reason}"),
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    secret: PathBuf,
    readable: PathBuf,
    writable: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.key");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let readable = tmp.path().join("granted");
    std::fs::create_dir(&readable).unwrap();
    std::fs::write(readable.join("config"), "ok").unwrap();
    let writable = tmp.path().join("work");
    std::fs::create_dir(&writable).unwrap();
    Dirs {
        secret,
        readable,
        writable,
        _tmp: tmp,
    }
}

fn policy(dirs: &Dirs) -> SandboxPolicy {
    SandboxPolicy {
        read: vec![dirs.readable.clone()],
        write: vec![dirs.writable.clone()],
        network: Network::Any,
    }
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn files_outside_the_grants_are_refused_and_granted_ones_work() {
    needs_landlock();
    let dirs = dirs();
    let policy = policy(&dirs);
    // Unsandboxed, every one of these works: the refusals below are the sandbox's.
    assert_eq!(probe(None, "read", &text(&dirs.secret)), 0);
    assert_eq!(probe(None, "write", &text(&dirs.readable.join("new"))), 0);

    assert_eq!(probe(Some(&policy), "read", &text(&dirs.secret)), EACCES);
    let parent = dirs.secret.parent().unwrap();
    assert_eq!(probe(Some(&policy), "list", &text(parent)), EACCES);
    assert_eq!(
        probe(Some(&policy), "write", &text(&parent.join("x"))),
        EACCES
    );
    assert_eq!(
        probe(Some(&policy), "write", "/tmp/tlao-sandbox-escape"),
        EACCES
    );
    assert_eq!(
        probe(Some(&policy), "write", &text(&dirs.readable.join("other"))),
        EACCES
    );
    assert_eq!(
        probe(Some(&policy), "read", &text(&dirs.readable.join("config"))),
        0
    );
    assert_eq!(
        probe(Some(&policy), "write", &text(&dirs.writable.join("out"))),
        0
    );
    assert_eq!(
        std::fs::read_to_string(dirs.writable.join("out")).unwrap(),
        "x"
    );
    // The system's files stay readable, devices writable.
    assert_eq!(probe(Some(&policy), "read", "/etc/hostname"), 0);
    assert_eq!(probe(Some(&policy), "write", "/dev/null"), 0);
    // A missing grant is skipped, not an error.
    let mut missing = policy.clone();
    missing.read.push(PathBuf::from("/does/not/exist"));
    assert_eq!(probe(Some(&missing), "read", "/etc/hostname"), 0);
}

#[test]
fn signals_to_processes_outside_the_sandbox_are_refused() {
    needs_landlock();
    let dirs = dirs();
    let me = std::process::id().to_string();
    assert_eq!(probe(None, "kill", &me), 0);
    assert_eq!(probe(Some(&policy(&dirs)), "kill", &me), EPERM);
}

#[test]
fn the_proc_entries_of_processes_outside_the_sandbox_are_closed() {
    needs_landlock();
    let dirs = dirs();
    let me = std::process::id();
    assert_eq!(probe(None, "read", &format!("/proc/{me}/environ")), 0);
    assert_eq!(
        probe(Some(&policy(&dirs)), "read", &format!("/proc/{me}/environ")),
        EACCES
    );
    assert_eq!(
        probe(Some(&policy(&dirs)), "read", &format!("/proc/{me}/mem")),
        EACCES
    );
    assert_eq!(
        probe(Some(&policy(&dirs)), "read", "/proc/self/status"),
        EACCES
    );
    assert_eq!(probe(Some(&policy(&dirs)), "read", "/proc/cpuinfo"), 0);
    assert_eq!(
        probe(Some(&policy(&dirs)), "read", "/proc/sys/kernel/ostype"),
        0
    );
}

#[test]
fn abstract_unix_sockets_outside_the_sandbox_are_refused() {
    needs_landlock();
    let dirs = dirs();
    let name = format!("tlao-sandbox-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = UnixListener::bind_addr(&addr).unwrap();
    assert_eq!(probe(None, "abstract", &name), 0);
    assert_eq!(probe(Some(&policy(&dirs)), "abstract", &name), EPERM);
}

/// A known limit, pinned: Landlock up to ABI 7 (this machine's) does not scope
/// *pathname* unix sockets, and the sandbox does not handle the later ABI's
/// `LANDLOCK_ACCESS_FS_RESOLVE_UNIX`, so a sandboxed agent reaches a service listening on
/// one outside its grants (a user's systemd, a Docker socket; docs/security.md, Limits).
/// When the sandbox handles that right, this becomes a test of its refusal.
#[test]
fn pathname_unix_sockets_outside_the_grants_are_still_reachable() {
    needs_landlock();
    let dirs = dirs();
    let socket = dirs._tmp.path().join("service.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    let socket = socket.to_str().unwrap();
    assert_eq!(probe(None, "pathname", socket), 0);
    assert_eq!(
        probe(Some(&policy(&dirs)), "pathname", socket),
        0,
        "the sandbox refused a pathname unix socket: docs/security.md's limit is out of date"
    );
}

#[test]
fn the_network_policy_decides_tcp_connects() {
    needs_landlock();
    let dirs = dirs();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port().to_string();
    let other_port = other.local_addr().unwrap().port().to_string();

    let any = policy(&dirs);
    assert_eq!(probe(Some(&any), "tcp", &other_port), 0);

    let none = SandboxPolicy {
        network: Network::None,
        ..policy(&dirs)
    };
    assert_eq!(probe(Some(&none), "tcp", &allowed_port), EACCES);

    let ports = SandboxPolicy {
        network: Network::TcpPorts(BTreeSet::from([allowed.local_addr().unwrap().port()])),
        ..policy(&dirs)
    };
    assert_eq!(probe(Some(&ports), "tcp", &allowed_port), 0);
    assert_eq!(probe(Some(&ports), "tcp", &other_port), EACCES);
}

/// The system's rules built ahead (as a standby worker does) make the same sandbox; rules
/// built for the other kind of network policy are not used, as they would open or close
/// the network against the policy.
#[test]
fn system_rules_built_ahead_make_the_same_sandbox() {
    needs_landlock();
    let dirs = dirs();
    let any = policy(&dirs);
    let ahead = |network_handled| Some(SystemRules::prepare(network_handled).unwrap());
    let on_any = |action: &str, arg: &str| probe_on(Some(&any), ahead(false), action, arg);
    assert_eq!(on_any("read", &text(&dirs.secret)), EACCES);
    assert_eq!(on_any("read", &text(&dirs.readable.join("config"))), 0);
    assert_eq!(on_any("write", &text(&dirs.readable.join("other"))), EACCES);
    assert_eq!(on_any("write", &text(&dirs.writable.join("out"))), 0);
    assert_eq!(on_any("read", "/etc/hostname"), 0);
    assert_eq!(on_any("write", "/dev/null"), 0);
    assert_eq!(on_any("write", "/tmp/tlao-sandbox-escape"), EACCES);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let none = SandboxPolicy {
        network: Network::None,
        ..policy(&dirs)
    };
    assert_eq!(probe_on(Some(&any), ahead(false), "tcp", &port), 0);
    assert_eq!(probe_on(Some(&none), ahead(true), "tcp", &port), EACCES);
    // Built for the other kind: the policy still decides.
    assert_eq!(probe_on(Some(&none), ahead(false), "tcp", &port), EACCES);
    assert_eq!(probe_on(Some(&any), ahead(true), "tcp", &port), 0);
}

/// The cost of the sandbox on starting a process: `/bin/true` spawned and waited for
/// many times with and without one (the ruleset built each time, as the worker does).
#[test]
fn the_cost_of_the_sandbox_on_a_spawn_is_measured() {
    needs_landlock();
    const ROUNDS: u32 = 200;
    let true_bin = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    let run = |sandboxed: bool| {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            let mut command = Command::new(true_bin);
            if sandboxed {
                SandboxPolicy::default()
                    .prepare()
                    .unwrap()
                    .apply(&mut command);
            }
            assert!(command.status().unwrap().success());
        }
        start.elapsed() / ROUNDS
    };
    let _ = run(false);
    let plain = run(false);
    let sandboxed = run(true);
    eprintln!(
        "spawn+wait of true, mean of {ROUNDS}: {plain:?} without a sandbox, {sandboxed:?} with one (+{:?}, x{:.2})",
        sandboxed.saturating_sub(plain),
        sandboxed.as_secs_f64() / plain.as_secs_f64()
    );
}
