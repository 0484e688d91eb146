//! Process trees with real processes and real signals: a member that double-forks into
//! a new session and drops its environment still dies with its tree; killing is final
//! and spares everything outside; dropping kills; a tree left by a dead owner is
//! reclaimed from its record. The cgroup tests need a writable cgroup v2 hierarchy
//! (the test machines have one); the /proc fallback is forced with
//! [`Preference::NoCgroup`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Cleanup, await_none, await_process, is_alive, session_of, shell, unique_sleep};
use tlao_process::{Mechanism, Preference, ProcessIdentity, ProcessTree, TreeOptions};

/// How long killing may take: the rounds of [`ProcessTree::kill`] are bounded by 2 s.
const KILL_BOUND: Duration = Duration::from_secs(3);

fn tree(preference: Preference) -> ProcessTree {
    let name = format!("tlao-test-{}-{}", std::process::id(), unique_sleep());
    ProcessTree::create(
        &name,
        TreeOptions {
            preference,
            adopt_orphans: false,
        },
    )
    .unwrap()
}

/// A root that starts a daemon (a double fork into a new session, `sleep daemon`) and
/// then sleeps itself (`sleep root`). With `clean_env` the daemon also drops its
/// environment, and with it the tree's marker.
fn daemonizing_root(daemon: &str, root: &str, clean_env: bool) -> tokio::process::Command {
    let env = if clean_env { "env -i" } else { "" };
    shell(&format!(
        r#"(exec {env} "$(command -v setsid)" "$(command -v sleep)" {daemon} &) ; exec sleep {root}"#
    ))
}

async fn a_double_forked_daemon_dies_with_its_tree(preference: Preference, clean_env: bool) {
    let (daemon, root) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
    let mut tree = tree(preference);
    let _child = tree
        .spawn(&mut daemonizing_root(&daemon, &root, clean_env))
        .unwrap();
    let daemon_pid = await_process(&daemon);
    let root_pid = await_process(&root);
    assert_ne!(
        session_of(daemon_pid),
        session_of(root_pid),
        "the daemon left the root's session"
    );
    // A cgroup tree whose root joined before it executed is found by its cgroup alone.
    assert_eq!(tree.is_sealed(), preference == Preference::Cgroup);
    assert_eq!(tree.members().len(), 2, "{:?}", tree.members());

    let started = Instant::now();
    tree.kill();

    assert!(started.elapsed() < KILL_BOUND, "{:?}", started.elapsed());
    assert!(!is_alive(daemon_pid), "the daemon survived");
    assert!(!is_alive(root_pid), "the root survived");
    assert!(tree.members().is_empty());
}

#[tokio::test]
async fn a_daemon_that_left_the_session_and_its_environment_dies_with_its_cgroup_tree() {
    a_double_forked_daemon_dies_with_its_tree(Preference::Cgroup, true).await;
}

#[tokio::test]
async fn a_daemon_that_left_the_session_dies_with_a_tree_found_through_proc() {
    a_double_forked_daemon_dies_with_its_tree(Preference::NoCgroup, false).await;
}

#[tokio::test]
async fn a_root_that_joins_later_unseals_its_tree_and_what_it_started_outside_still_dies() {
    let (daemon, root) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
    let mut tree = tree(Preference::Cgroup);
    assert!(tree.is_sealed(), "a cgroup tree with no root yet is sealed");
    // The root double-forks a daemon into a new session before it is moved into the
    // cgroup: the daemon stays outside it, found only by the marker it inherited.
    let (_child, join) = tree
        .spawn_joining_later(&mut daemonizing_root(&daemon, &root, false))
        .unwrap();
    assert!(
        !tree.is_sealed(),
        "a root that ran outside the cgroup unseals it"
    );
    let daemon_pid = await_process(&daemon);
    await_process(&root);
    join.unwrap().run();
    let procs = std::fs::read_to_string(tree.cgroup().unwrap().join("cgroup.procs")).unwrap();
    assert!(
        !procs
            .lines()
            .any(|pid| pid.trim() == daemon_pid.to_string()),
        "the daemon stayed outside the cgroup: {procs}"
    );
    assert_eq!(tree.members().len(), 2, "{:?}", tree.members());

    tree.kill();

    await_none(&daemon, KILL_BOUND);
    await_none(&root, KILL_BOUND);
}

#[tokio::test]
async fn a_tree_has_a_cgroup_where_one_can_be_made_and_none_when_told_not_to() {
    let with = tree(Preference::Auto);
    assert_eq!(with.mechanism(), Mechanism::Cgroup);
    let dir = with.cgroup().unwrap().to_path_buf();
    assert!(dir.join("cgroup.procs").exists());
    drop(with);
    assert!(!dir.exists(), "the cgroup is removed with its tree");

    let without = tree(Preference::NoCgroup);
    assert_eq!(without.mechanism(), Mechanism::Scan);
    assert!(without.cgroup().is_none());
}

#[tokio::test]
async fn a_root_starts_inside_the_cgroup_leading_its_own_session() {
    let root = unique_sleep();
    let _cleanup = Cleanup(vec![root.clone()]);
    let mut tree = tree(Preference::Cgroup);
    let child = tree
        .spawn(tokio::process::Command::new("sleep").arg(&root))
        .unwrap();
    let pid = child.id().unwrap();

    let procs = std::fs::read_to_string(tree.cgroup().unwrap().join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    assert_eq!(session_of(pid), Some(pid as i32));
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let marker = format!("TLAO_PROCESS_TREES={}", tree.id());
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|entry| entry == marker.as_bytes()),
        "the root carries the tree's marker"
    );
}

#[tokio::test]
async fn dropping_a_tree_kills_every_process_in_it() {
    for preference in [Preference::Cgroup, Preference::NoCgroup] {
        let (daemon, root) = (unique_sleep(), unique_sleep());
        let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
        let mut tree = tree(preference);
        let _child = tree
            .spawn(&mut daemonizing_root(&daemon, &root, false))
            .unwrap();
        await_process(&daemon);
        await_process(&root);

        drop(tree);

        await_none(&daemon, KILL_BOUND);
        await_none(&root, KILL_BOUND);
    }
}

#[tokio::test]
async fn killing_a_tree_spares_the_processes_outside_it_and_is_final() {
    let (inside, outside) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![inside.clone(), outside.clone()]);
    let mut bystander = tokio::process::Command::new("sleep")
        .arg(&outside)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for preference in [Preference::Cgroup, Preference::NoCgroup] {
        let mut tree = tree(preference);
        let _child = tree
            .spawn(tokio::process::Command::new("sleep").arg(&inside))
            .unwrap();
        await_process(&inside);

        tree.kill();
        tree.kill();

        await_none(&inside, KILL_BOUND);
        assert!(tree.has_ended());
        assert!(
            tree.spawn(tokio::process::Command::new("sleep").arg(&inside))
                .is_err(),
            "a killed tree starts nothing"
        );
    }
    assert!(
        is_alive(bystander.id().unwrap()),
        "a process outside the trees was killed"
    );
    bystander.kill().await.unwrap();
}

#[tokio::test]
async fn a_tree_its_owner_left_behind_is_reclaimed_from_its_id_and_cgroup() {
    for preference in [Preference::Cgroup, Preference::NoCgroup] {
        let (daemon, root) = (unique_sleep(), unique_sleep());
        let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
        let mut tree = tree(preference);
        let mut child = tree
            .spawn(&mut daemonizing_root(&daemon, &root, false))
            .unwrap();
        await_process(&daemon);
        await_process(&root);
        let (id, cgroup) = (
            tree.id().to_owned(),
            tree.cgroup().map(std::path::Path::to_path_buf),
        );
        // The owner vanishes without running a destructor, as if killed with SIGKILL;
        // only what it recorded is left.
        std::mem::forget(tree);
        child.start_kill().unwrap();

        ProcessTree::reclaim(&id, cgroup.as_deref()).unwrap();

        await_none(&daemon, KILL_BOUND);
        await_none(&root, KILL_BOUND);
        if let Some(dir) = cgroup {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
    }
}

#[tokio::test]
async fn a_record_cannot_make_a_process_reclaim_its_own_cgroup() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo
        .lines()
        .find(|line| line.contains(" - cgroup2 "))
        .and_then(|line| line.split_whitespace().nth(4))
        .unwrap();
    let result = ProcessTree::reclaim("nobody", Some(std::path::Path::new(mount)));
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    let result = ProcessTree::reclaim("nobody", Some(std::path::Path::new("/tmp")));
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_process_identity_does_not_outlive_its_process() {
    let mut child = tokio::process::Command::new("sleep")
        .arg(unique_sleep())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let identity = ProcessIdentity::of(child.id().unwrap()).unwrap();
    assert!(identity.is_running());
    let reused = ProcessIdentity {
        start_ticks: identity.start_ticks + 1,
        ..identity.clone()
    };
    assert!(!reused.is_running(), "a later process with the same pid");
    let other_boot = ProcessIdentity {
        boot_id: "another-boot".into(),
        ..identity.clone()
    };
    assert!(!other_boot.is_running());

    child.kill().await.unwrap();

    assert!(!identity.is_running());
    assert!(ProcessIdentity::of(identity.pid).is_none());
}

#[tokio::test]
async fn a_tree_that_must_have_a_cgroup_fails_without_one_rather_than_falling_back() {
    // An existing name cannot be made again.
    let first = tree(Preference::Cgroup);
    let dir = first.cgroup().unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    let again = ProcessTree::create(
        name,
        TreeOptions {
            preference: Preference::Cgroup,
            adopt_orphans: false,
        },
    );
    assert!(again.is_err());
    let fallback = ProcessTree::create(name, TreeOptions::default()).unwrap();
    assert_eq!(fallback.mechanism(), Mechanism::Scan);
}

#[tokio::test]
async fn empty_cgroups_left_by_gone_owners_are_swept_and_nothing_else() {
    let prefix = format!("tlao-sweep{}-", std::process::id());
    let mut gone = tokio::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id().unwrap();
    gone.wait().await.unwrap();
    let mut alive = tokio::process::Command::new("sleep")
        .arg(unique_sleep())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let options = TreeOptions {
        preference: Preference::Cgroup,
        adopt_orphans: false,
    };
    // A gone owner's empty tree, and one with a child cgroup: both go.
    let empty = ProcessTree::create(&format!("{prefix}{gone_pid}-1"), options).unwrap();
    let nested = ProcessTree::create(&format!("{prefix}{gone_pid}-2/run"), options).unwrap();
    // A live owner's empty tree, and a gone owner's tree with a process in it: both stay.
    let live = ProcessTree::create(&format!("{prefix}{}", alive.id().unwrap()), options).unwrap();
    let root = unique_sleep();
    let _cleanup = Cleanup(vec![root.clone()]);
    let mut populated = ProcessTree::create(&format!("{prefix}{gone_pid}-3"), options).unwrap();
    let _child = populated
        .spawn(tokio::process::Command::new("sleep").arg(&root))
        .unwrap();
    let dirs: Vec<std::path::PathBuf> = [&empty, &nested, &live, &populated]
        .iter()
        .map(|tree| tree.cgroup().unwrap().to_path_buf())
        .collect();
    let nested_parent = dirs[1].parent().unwrap().to_path_buf();
    // Their owners vanish without cleaning up.
    std::mem::forget(empty);
    std::mem::forget(nested);

    let removed = ProcessTree::sweep_leftovers(&prefix);

    assert_eq!(removed, 2);
    assert!(!dirs[0].exists());
    assert!(!nested_parent.exists());
    assert!(dirs[2].exists(), "a live owner's cgroup stays");
    assert!(dirs[3].exists(), "a populated cgroup stays");
    drop(live);
    drop(populated);
    alive.kill().await.unwrap();
}

#[tokio::test]
async fn a_process_whose_main_thread_exited_while_another_runs_on_dies_with_its_tree() {
    let cases = [
        (Preference::Cgroup, false),
        (Preference::Cgroup, true),
        (Preference::NoCgroup, false),
        (Preference::NoCgroup, true),
    ];
    for (preference, detached) in cases {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let root = unique_sleep();
        let _cleanup = Cleanup(vec![root.clone()]);
        let mut tree = tree(preference);
        // The main thread ends (`pthread_exit`) while a second thread sleeps on: the
        // process table shows the process as a zombie, yet it runs. Detached, it is
        // double-forked into a new session: without a cgroup only the tree's marker in
        // its environment leads to it, and its main thread's `environ` reads empty.
        let script = format!(
            r#"import ctypes, os, threading, time
threading.Thread(target=lambda: time.sleep(600), daemon=True).start()
open({pid_file:?} + ".tmp", "w").write(str(os.getpid()))
os.rename({pid_file:?} + ".tmp", {pid_file:?})
ctypes.CDLL(None).pthread_exit(None)"#
        );
        let start = if detached {
            r#"(exec "$(command -v setsid)" python3 -c "$0" &)"#
        } else {
            r#"python3 -c "$0" &"#
        };
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{start}\nexec sleep {root}"))
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let _child = tree.spawn(&mut command).unwrap();
        await_process(&root);
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the script did not start");
            std::thread::sleep(Duration::from_millis(10));
        };
        let _daemon = KillOnDrop(pid);
        while !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        }) {
            assert!(Instant::now() < deadline, "its main thread did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_alive(pid), "{preference:?}: its second thread runs");

        tree.kill();

        // Its last thread leaves the cgroup a moment before the kernel releases it.
        let end = Instant::now() + KILL_BOUND;
        while is_alive(pid) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !is_alive(pid),
            "{preference:?}, detached {detached}: a thread of {pid} outlived the kill of its tree"
        );
        await_none(&root, KILL_BOUND);
    }
}

/// Kills a process when dropped, so a failing test leaves nothing behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
