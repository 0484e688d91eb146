//! The sandbox an agent runs in: an unprivileged Landlock domain (Linux).
//!
//! A [`SandboxPolicy`] says what one agent may touch: paths it may read and execute,
//! paths it may write, and its TCP network ([`Network`]). Every sandbox also gets the
//! system paths a program needs ([`SYSTEM_READ`], [`DEVICES`]) and nothing else: not
//! `/tmp`, not the home directory, not the server's data directory.
//!
//! The ruleset is built in the parent ([`SandboxPolicy::prepare`]: the paths are
//! opened, the rules added), and the child only enters it between `fork` and `exec`
//! ([`Sandbox::apply`]): `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`, two
//! raw system calls, nothing allocated — the worker that forks is multithreaded. Besides
//! files, the domain scopes signals and abstract unix sockets (Landlock ABI 6): the
//! agent cannot signal or connect to a process outside its domain (the worker, the
//! server, other agents), and Landlock's ptrace rule keeps it out of their `/proc`
//! `mem`; their `environ` is closed by not granting per-process `/proc` entries at all
//! ([`PROC_READ`]) and, for processes outside any sandbox, by [`make_non_dumpable`].
//!
//! [`support`] says once per process whether the kernel can do it, and which ABI it
//! speaks. [`make_non_dumpable`] closes a process's own `/proc` entries to processes of
//! the same user that are not sandboxed.

use std::collections::BTreeSet;
use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod linux;

/// Directories every sandboxed program may read and execute beneath: the system's
/// programs, libraries and configuration, and the kernel's device view (read only).
/// `/sys` is there because runtimes read their CPU and memory limits from it
/// (`/sys/fs/cgroup`, `/sys/devices/system/cpu`).
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt", "/etc", "/sys",
];

/// What of `/proc` a sandboxed program may read: the machine-wide files, not the
/// per-process directories. Landlock's ptrace rule keeps `mem` of processes outside
/// the sandbox closed, but not `environ` (measured on Linux 6.18: a sandboxed process
/// read its unsandboxed parent's `environ`, as root or as the same user of a dumpable
/// process), so `/proc` as a whole is not granted. `/proc/self` is then not readable
/// either (`readlink /proc/self/exe` and `/dev/stdin` still work: Landlock checks
/// neither); see docs/security.md.
pub const PROC_READ: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
    "/proc/filesystems",
    "/proc/sys",
];

/// Device files (and device directories) every sandboxed program may read and write.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/pts",
    "/dev/ptmx",
    "/dev/shm",
];

/// What one sandboxed process (and everything it starts) may do, besides the system
/// paths every sandbox gets. Paths that do not exist are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxPolicy {
    /// Read and execute beneath each of these.
    pub read: Vec<PathBuf>,
    /// Every file access beneath each of these (create, write, remove, rename…).
    pub write: Vec<PathBuf>,
    /// TCP.
    pub network: Network,
}

/// The TCP a sandboxed process may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// Any (the network is not restricted).
    #[default]
    Any,
    /// No TCP `bind` or `connect` at all.
    None,
    /// `bind` and `connect` on these TCP ports only.
    TcpPorts(BTreeSet<u16>),
}

/// Whether this machine can sandbox, as [`support`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock, with this ABI version.
    Landlock {
        /// The kernel's Landlock ABI (1 to 7 at the time of writing).
        abi: u32,
    },
    /// No sandbox is possible; why.
    Unavailable {
        /// The reason, for an operator.
        reason: String,
    },
}

impl Support {
    /// Whether a sandbox can be made.
    pub fn is_available(&self) -> bool {
        matches!(self, Support::Landlock { .. })
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Landlock { abi } => write!(f, "Landlock ABI {abi}"),
            Support::Unavailable { reason } => f.write_str(reason),
        }
    }
}

/// Whether this machine can sandbox, found once per process.
pub fn support() -> &'static Support {
    static SUPPORT: std::sync::OnceLock<Support> = std::sync::OnceLock::new();
    SUPPORT.get_or_init(detect)
}

#[cfg(target_os = "linux")]
fn detect() -> Support {
    linux::detect()
}

#[cfg(not(target_os = "linux"))]
fn detect() -> Support {
    Support::Unavailable {
        reason: "this platform has no unprivileged sandbox (Landlock is Linux-only)".to_owned(),
    }
}

/// Why a sandbox could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel cannot sandbox.
    #[error("no sandbox is possible here: {0}")]
    Unsupported(String),
    /// The kernel can, but the policy asks for something it cannot enforce.
    #[error("the sandbox cannot enforce {0} on this kernel")]
    NotEnforceable(&'static str),
    /// The ruleset could not be built.
    #[error("the sandbox's rules could not be built: {0}")]
    Ruleset(String),
}

/// A prepared ruleset, ready to be entered by a child ([`Sandbox::apply`]).
#[derive(Debug)]
pub struct Sandbox {
    #[cfg(target_os = "linux")]
    ruleset: std::os::fd::OwnedFd,
    abi: u32,
}

impl Sandbox {
    /// The Landlock ABI the ruleset was built for.
    pub fn abi(&self) -> u32 {
        self.abi
    }

    /// Makes `command`'s child enter the sandbox just before it executes its program
    /// (after any `pre_exec` registered before this call). The ruleset's descriptor is
    /// kept by the command until it is dropped and closed in the child by `exec`.
    pub fn apply(self, command: &mut std::process::Command) {
        #[cfg(target_os = "linux")]
        linux::apply(self.ruleset, command);
        #[cfg(not(target_os = "linux"))]
        let _ = command;
    }
}

/// The rules every sandbox holds (the system's: [`SYSTEM_READ`], [`PROC_READ`],
/// [`DEVICES`]), built ahead of the policy they are for, e.g. by a worker waiting for
/// its run: [`SandboxPolicy::prepare_on`] adds the policy's own.
pub struct SystemRules {
    #[cfg(target_os = "linux")]
    rules: linux::SystemRules,
}

impl SystemRules {
    /// Builds the system's rules for a policy that restricts the network
    /// (`network_handled`) or not ([`Network::Any`]): only a policy of the same kind can
    /// use them. Errors as [`SandboxPolicy::prepare`].
    pub fn prepare(network_handled: bool) -> Result<SystemRules, SandboxError> {
        #[cfg(target_os = "linux")]
        {
            linux::system_rules(network_handled).map(|rules| SystemRules { rules })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = network_handled;
            Err(SandboxError::Unsupported(support().to_string()))
        }
    }
}

impl std::fmt::Debug for SystemRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemRules").finish_non_exhaustive()
    }
}

impl SandboxPolicy {
    /// Builds the ruleset: the policy's paths and the system's ([`SYSTEM_READ`],
    /// [`DEVICES`]), every file access right the kernel knows handled, signals and
    /// abstract unix sockets scoped (ABI 6), TCP `bind`/`connect` handled unless the
    /// network is [`Network::Any`] (ABI 4; an error on an older kernel).
    pub fn prepare(&self) -> Result<Sandbox, SandboxError> {
        self.prepare_on(None)
    }

    /// As [`SandboxPolicy::prepare`], adding the policy's rules to `system` when those
    /// were built for a policy of its kind (the same network handling); otherwise (or
    /// with `None`) building every rule now. The sandbox is the same either way.
    pub fn prepare_on(&self, system: Option<SystemRules>) -> Result<Sandbox, SandboxError> {
        #[cfg(target_os = "linux")]
        {
            let system = match system {
                Some(system) if system.rules.fits(self) => system.rules,
                _ => linux::system_rules(self.network != Network::Any)?,
            };
            linux::prepare_on(system, self)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = system;
            Err(SandboxError::Unsupported(support().to_string()))
        }
    }
}

/// Closes this process's `/proc` entries (`environ`, `mem`, `fd`…) to other processes
/// of the same user and forbids core dumps (Linux `PR_SET_DUMPABLE 0`); elsewhere,
/// nothing. It lasts until the process executes another program.
pub fn make_non_dumpable() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::make_non_dumpable()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}
