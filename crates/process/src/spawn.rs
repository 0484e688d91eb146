//! The code a tree's child runs between `fork` and `exec`: it joins the tree's cgroup
//! (so everything it will ever start is inside before it runs a single instruction of
//! its program), leads a new session and process group, and asks the kernel to kill it
//! when the process that started it dies (Linux).

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;

use nix::unistd::Pid;

/// Makes `command` run [`in_child`] before it executes its program. `cgroup_procs` is an
/// open `cgroup.procs` of the tree's cgroup, kept open by the caller until the child
/// has been spawned.
#[allow(unsafe_code)]
pub(crate) fn prepare(command: &mut std::process::Command, cgroup_procs: Option<RawFd>) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the child between `fork` and `exec`, where only
    // async-signal-safe calls are allowed. `in_child` makes only system calls (`write`,
    // `setsid`, `prctl`, `getppid`) through nix's thin wrappers, which build their errors
    // from errno values without allocating; it takes no lock and touches no shared
    // state. The descriptor it writes to is owned by the parent and stays open until
    // `spawn` returns, and the child's copy is closed by `exec` (`O_CLOEXEC`).
    unsafe {
        command.pre_exec(move || in_child(parent, cgroup_procs));
    }
}

/// The child's side. The `getppid` check closes the race where the parent died before
/// `prctl` ran: the child then fails to start instead of running orphaned.
fn in_child(parent: Pid, cgroup_procs: Option<RawFd>) -> io::Result<()> {
    if let Some(fd) = cgroup_procs {
        // Failing to join is not fatal: the parent checks and moves the child itself,
        // and the tree's /proc scan finds it either way.
        let _ = join(fd);
    }
    nix::unistd::setsid().map_err(io::Error::from)?;
    #[cfg(target_os = "linux")]
    {
        // The signal comes when the *thread* that forked ends, not the process: spawn
        // from a thread that lives as long as the child should (the launcher's spawner
        // thread, a worker's one runtime thread), never from a blocking pool's.
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(io::Error::from)?;
        if nix::unistd::getppid() != parent {
            return Err(io::Error::from(nix::errno::Errno::ESRCH));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    Ok(())
}

/// Writes `0` (this process) to the open `cgroup.procs` `fd`.
#[allow(unsafe_code)]
fn join(fd: RawFd) -> nix::Result<usize> {
    // SAFETY: `fd` is the parent's open `cgroup.procs`, inherited across `fork` and
    // open for as long as this child runs `prepare`'s closure (see `prepare`).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::unistd::write(fd, b"0")
}
