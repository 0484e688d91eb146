//! A root that joins its tree's cgroup after it started
//! ([`ProcessTree::spawn_joining_later`]), alone in its test binary (becoming a child
//! subreaper is a property of the whole process, and orphans count as a tree's only
//! while it is the process's one tree): what it double-forked before the move is
//! outside the cgroup, and still dies with the tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{Cleanup, await_none, await_process, session_of, shell, unique_sleep};
use tlao_process::{Mechanism, Preference, ProcessTree, TreeOptions};

#[tokio::test]
async fn an_orphan_that_left_before_its_root_joined_the_cgroup_still_dies_with_the_tree() {
    let (daemon, root) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
    let mut tree = ProcessTree::create(
        &format!("tlao-test-late-join-{}", std::process::id()),
        TreeOptions {
            preference: Preference::Cgroup,
            adopt_orphans: true,
        },
    )
    .unwrap();
    assert_eq!(tree.mechanism(), Mechanism::Cgroup);
    // The root double-forks a daemon into a new session with an empty environment
    // before it is moved into the tree's cgroup (an agent's first milliseconds, while
    // the move waits for the kernel): no cgroup, group, session, ancestry or marker
    // leads to the daemon; only adoption does.
    let (_child, join) = tree
        .spawn_joining_later(&mut shell(&format!(
            r#"(exec env -i "$(command -v setsid)" "$(command -v sleep)" {daemon} &) ; exec sleep {root}"#
        )))
        .unwrap();
    let daemon_pid = await_process(&daemon);
    await_process(&root);
    join.expect("a cgroup tree's root has a join").run();
    let cgroup = tree.cgroup().unwrap().to_path_buf();
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
    assert!(
        !procs
            .lines()
            .any(|pid| pid.trim() == daemon_pid.to_string()),
        "the daemon stayed outside the cgroup: {procs}"
    );
    assert_ne!(session_of(daemon_pid), session_of(std::process::id()));

    tree.kill();

    await_none(&daemon, Duration::from_secs(3));
    await_none(&root, Duration::from_secs(3));
    let zombie = std::fs::metadata(format!("/proc/{daemon_pid}")).is_ok();
    assert!(!zombie, "the adopted orphan was reaped");
}
