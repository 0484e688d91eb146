//! Process trees: whatever a process starts ends with it, when it is told to.
//!
//! The launcher starts each worker in a [`ProcessTree`], the worker starts each agent in
//! one, and either kills its tree when the run is over — completed, cancelled, timed
//! out, lost — or when the process holding it is gone: grandchildren that left the
//! process group, double-forked daemons and new sessions included.
//!
//! What a tree gets depends on the platform (see [`Mechanism`]):
//!
//! - Linux with a writable cgroup v2 hierarchy: a cgroup per tree, ended with
//!   `cgroup.kill`; nothing started inside can leave it.
//! - Linux without: the tree is found through `/proc` (the roots' sessions and process
//!   groups, their descendants, an environment marker every process inherits), and a
//!   worker makes itself a child subreaper so orphans stay within reach.
//! - Elsewhere (macOS): the roots' sessions and process groups only.
//!
//! [`ProcessIdentity`] tells a recorded process from a later one with the same pid.

mod identity;
mod spawn;
mod tree;

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(target_os = "linux")]
mod procfs;

pub use identity::ProcessIdentity;
pub use tree::{
    CgroupJoin, MARKER_ENV, Mechanism, PREFERENCE_ENV, Preference, ProcessTree, TreeOptions,
};
