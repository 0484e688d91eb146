//! The subreaper fallback, alone in its test binary: becoming a child subreaper is a
//! property of the whole process, and orphans count as a tree's only while it is the
//! process's one tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{Cleanup, await_none, await_process, session_of, shell, unique_sleep};
use tlao_process::{Mechanism, Preference, ProcessTree, TreeOptions};

#[tokio::test]
async fn without_a_cgroup_an_orphan_that_left_the_session_and_its_environment_still_dies() {
    let (daemon, root) = (unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![daemon.clone(), root.clone()]);
    let mut tree = ProcessTree::create(
        "tlao-test-subreaper",
        TreeOptions {
            preference: Preference::NoCgroup,
            adopt_orphans: true,
        },
    )
    .unwrap();
    assert_eq!(tree.mechanism(), Mechanism::Subreaper);
    // The daemon is double-forked into a new session with an empty environment: no
    // group, session, ancestry or marker leads to it; only adoption does.
    let _child = tree
        .spawn(&mut shell(&format!(
            r#"(exec env -i "$(command -v setsid)" "$(command -v sleep)" {daemon} &) ; exec sleep {root}"#
        )))
        .unwrap();
    let daemon_pid = await_process(&daemon);
    await_process(&root);
    let parent = std::fs::read_to_string(format!("/proc/{daemon_pid}/stat"))
        .unwrap()
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    assert_eq!(
        parent,
        std::process::id().to_string(),
        "the orphan was adopted by this process"
    );
    assert_ne!(session_of(daemon_pid), session_of(std::process::id()));

    tree.kill();

    await_none(&daemon, Duration::from_secs(3));
    await_none(&root, Duration::from_secs(3));
    let zombie = std::fs::metadata(format!("/proc/{daemon_pid}")).is_ok();
    assert!(!zombie, "the adopted orphan was reaped");
}

#[tokio::test]
async fn a_subreapers_tree_is_found_to_its_deepest_descendant_and_dies_whole() {
    let (deep, middle, root) = (unique_sleep(), unique_sleep(), unique_sleep());
    let _cleanup = Cleanup(vec![deep.clone(), middle.clone(), root.clone()]);
    let mut tree = ProcessTree::create(
        "tlao-test-subreaper-deep",
        TreeOptions {
            preference: Preference::NoCgroup,
            adopt_orphans: true,
        },
    )
    .unwrap();
    // root → a shell → a shell that leads its own process group → sleep: the deepest
    // is three generations below the root and in neither its group nor (with `env -i`)
    // carrying the tree's marker; only its ancestry leads to it.
    let _child = tree
        .spawn(&mut shell(&format!(
            r#"sh -c 'set -m; sh -c "exec env -i $(command -v sleep) {deep}" & exec sleep {middle}' & exec sleep {root}"#
        )))
        .unwrap();
    let deep_pid = await_process(&deep);
    let middle_pid = await_process(&middle);
    let root_pid = await_process(&root);
    let members = tree.members();
    for pid in [deep_pid, middle_pid, root_pid] {
        assert!(members.contains(&pid), "{pid} is not in {members:?}");
    }

    tree.kill();

    await_none(&deep, Duration::from_secs(3));
    await_none(&middle, Duration::from_secs(3));
    await_none(&root, Duration::from_secs(3));
    assert!(tree.members().is_empty());
}

#[tokio::test]
async fn a_root_dying_while_its_tree_is_killed_does_not_hide_what_it_started() {
    // An executor kills its agent's root, then the tree: the root's children move to
    // this process while the tree is being read. Many rounds, for the race to happen.
    for round in 0..100 {
        let mut tree = ProcessTree::create(
            "tlao-test-subreaper-race",
            TreeOptions {
                preference: Preference::NoCgroup,
                adopt_orphans: true,
            },
        )
        .unwrap();
        let child = unique_sleep();
        let _cleanup = Cleanup(vec![child.clone()]);
        let mut root = tree
            .spawn(&mut shell(&format!("sleep {child} & wait")))
            .unwrap();
        let child_pid = await_process(&child);

        root.start_kill().unwrap();
        tree.kill();

        assert!(
            !support::is_alive(child_pid),
            "round {round}: the root's child {child_pid} outlived the kill"
        );
    }
}
