//! Who a process is beyond its pid: a pid is reused once its process is gone, so a
//! record of "worker 4242" is checked against the process's start time and the boot it
//! started in before anyone acts on it.

/// One process, recognisable after its pid has been reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// Its pid.
    pub pid: u32,
    /// When it started, in clock ticks after boot (`/proc/<pid>/stat` field 22); 0 where
    /// the platform does not say.
    pub start_ticks: u64,
    /// The boot it started in (`/proc/sys/kernel/random/boot_id`); empty where the
    /// platform does not say.
    pub boot_id: String,
}

impl ProcessIdentity {
    /// The identity of the live process `pid`; `None` when there is none.
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        #[cfg(target_os = "linux")]
        {
            let proc = crate::procfs::stat(i32::try_from(pid).ok()?)?;
            if proc.dead {
                return None;
            }
            Some(ProcessIdentity {
                pid,
                start_ticks: proc.start_ticks,
                boot_id: crate::procfs::boot_id().unwrap_or_default(),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let identity = ProcessIdentity {
                pid,
                start_ticks: 0,
                boot_id: String::new(),
            };
            identity.is_running().then_some(identity)
        }
    }

    /// Whether this very process still runs: same boot, its pid taken by a process that
    /// started at the same tick, not exited. Where the platform gives no start time, a
    /// live process with the pid is taken for it.
    pub fn is_running(&self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        #[cfg(target_os = "linux")]
        {
            if crate::procfs::boot_id().is_some_and(|boot| boot != self.boot_id) {
                return false;
            }
            crate::procfs::stat(pid).is_some_and(|p| !p.dead && p.start_ticks == self.start_ticks)
        }
        #[cfg(not(target_os = "linux"))]
        {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        }
    }
}
