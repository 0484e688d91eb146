//! Landlock: the ruleset built in the parent, entered by the child.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope, path_beneath_rules,
};

use crate::{DEVICES, Network, PROC_READ, SYSTEM_READ, SandboxError, SandboxPolicy, Support};

/// The newest ABI this code was written and tested against; a newer kernel is asked for
/// these rights (and keeps them), an older one gets what it knows (best effort).
const TESTED_ABI: ABI = ABI::V7;
/// `LANDLOCK_CREATE_RULESET_VERSION`.
const CREATE_RULESET_VERSION: libc::c_uint = 1;

#[allow(unsafe_code)]
pub(crate) fn detect() -> Support {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the call only
    // returns the ABI version (or fails); it reads and writes no memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if version > 0 {
        return Support::Landlock {
            abi: u32::try_from(version).unwrap_or(u32::MAX),
        };
    }
    let reason = match io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            "Landlock is built into this kernel but not enabled (add `landlock` to the `lsm=` boot parameter)"
        }
        Some(libc::ENOSYS) => "this kernel has no Landlock (Linux 5.13 or later, built with it)",
        _ => "Landlock is not usable here",
    };
    Support::Unavailable {
        reason: reason.to_owned(),
    }
}

/// A ruleset with the system's rules ([`SYSTEM_READ`], [`PROC_READ`], [`DEVICES`]) that
/// a policy's own rules are added to: what every sandbox holds, built ahead by a
/// standby worker (about half of a sandbox's rules, each opening its path).
pub(crate) struct SystemRules {
    ruleset: RulesetCreated,
    /// Whether TCP is handled (a policy other than [`Network::Any`]).
    network_handled: bool,
    abi: u32,
}

impl SystemRules {
    /// Whether a policy's rules may go on these: the ruleset handles the network
    /// exactly when the policy restricts it (a ruleset that handles what a policy
    /// leaves open would refuse it; one that does not would leave it open).
    pub(crate) fn fits(&self, policy: &SandboxPolicy) -> bool {
        self.network_handled == (policy.network != Network::Any)
    }
}

pub(crate) fn system_rules(network_handled: bool) -> Result<SystemRules, SandboxError> {
    let abi = match crate::support() {
        Support::Landlock { abi } => *abi,
        Support::Unavailable { reason } => return Err(SandboxError::Unsupported(reason.clone())),
    };
    if network_handled && abi < 4 {
        return Err(SandboxError::NotEnforceable(
            "a network policy (Landlock ABI 4, Linux 6.7)",
        ));
    }
    let read = AccessFs::from_read(TESTED_ABI);
    let all = AccessFs::from_all(TESTED_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(ruleset_error)?;
    if abi >= 6 {
        ruleset = ruleset
            .scope(Scope::from_all(TESTED_ABI))
            .map_err(ruleset_error)?;
    }
    if network_handled {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TESTED_ABI))
            .map_err(ruleset_error)?;
    }
    let ruleset = ruleset
        .create()
        .map_err(ruleset_error)?
        .add_rules(path_beneath_rules(SYSTEM_READ, read))
        .map_err(ruleset_error)?
        .add_rules(path_beneath_rules(
            PROC_READ,
            AccessFs::from_read(TESTED_ABI) & !AccessFs::Execute,
        ))
        .map_err(ruleset_error)?
        .add_rules(path_beneath_rules(DEVICES, all))
        .map_err(ruleset_error)?;
    Ok(SystemRules {
        ruleset,
        network_handled,
        abi,
    })
}

/// The sandbox of `policy`: its rules added to `system` (which must fit it, see
/// [`SystemRules::fits`]).
pub(crate) fn prepare_on(
    system: SystemRules,
    policy: &SandboxPolicy,
) -> Result<crate::Sandbox, SandboxError> {
    debug_assert!(system.fits(policy));
    let read = AccessFs::from_read(TESTED_ABI);
    let all = AccessFs::from_all(TESTED_ABI);
    let mut created = system
        .ruleset
        .add_rules(path_beneath_rules(&policy.read, read))
        .map_err(ruleset_error)?
        .add_rules(path_beneath_rules(&policy.write, all))
        .map_err(ruleset_error)?;
    if let Network::TcpPorts(ports) = &policy.network {
        for port in ports {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::from_all(TESTED_ABI)))
                .map_err(ruleset_error)?;
        }
    }
    match Option::<OwnedFd>::from(created) {
        Some(ruleset) => Ok(crate::Sandbox {
            ruleset,
            abi: system.abi,
        }),
        None => Err(SandboxError::Unsupported(
            "the kernel refused to create a Landlock ruleset".to_owned(),
        )),
    }
}

fn ruleset_error(error: landlock::RulesetError) -> SandboxError {
    SandboxError::Ruleset(error.to_string())
}

#[allow(unsafe_code)]
pub(crate) fn apply(ruleset: OwnedFd, command: &mut std::process::Command) {
    // SAFETY: the closure runs in the child between `fork` and `exec`, where only
    // async-signal-safe calls are allowed: `enter` makes two raw system calls and reads
    // errno, allocating nothing and taking no lock. The descriptor belongs to the
    // closure (so to the command) and stays open until the command is dropped; the
    // child's copy is closed by `exec` (Landlock rulesets are `O_CLOEXEC`).
    unsafe {
        command.pre_exec(move || enter(ruleset.as_raw_fd()));
    }
}

/// The child's side: no new privileges (required to restrict oneself unprivileged),
/// then the domain.
#[allow(unsafe_code)]
fn enter(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: plain system calls with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; `ruleset` is an open Landlock ruleset inherited from the parent.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[allow(unsafe_code)]
pub(crate) fn make_non_dumpable() -> io::Result<()> {
    // SAFETY: a plain system call with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
