//! [`ProcessTree`]: the processes started for one purpose (a worker, an agent) and
//! everything they start in turn, ended together however far they wandered.
//!
//! A tree's processes are found by every means the platform offers, and all of them are
//! used when it is killed:
//!
//! - **cgroup v2** (Linux, where a child cgroup can be made): the tree's own cgroup,
//!   joined by each child before it executes; `cgroup.kill` reaches every process in
//!   it, double-forked daemons in new sessions included.
//! - **/proc** (Linux, always): the root processes the tree started, their process
//!   groups and sessions (each root leads a new session), their descendants, and any
//!   process carrying the tree's marker in the environment it inherited
//!   ([`MARKER_ENV`]). A tree whose process adopts orphans ([`TreeOptions::adopt_orphans`])
//!   makes that process a child subreaper, so orphans stay its children instead of
//!   moving to init, and counts them in while it is the process's only tree.
//! - **process group** (elsewhere): the roots' sessions and process groups only.
//!
//! Killing is `SIGKILL`, repeated until nothing of the tree is left (bounded), so no
//! process can fork its way out; the cgroup is then removed.
//!
//! A tree whose every root joined its cgroup before executing (each started by
//! [`ProcessTree::spawn`]) and that adopts no orphans is *sealed*: nothing of it ever
//! ran outside the cgroup, and a process leaves a cgroup only by writing another's
//! `cgroup.procs` (which the sandbox forbids an agent), so the cgroup alone lists and
//! kills it, without reading the whole process table ([`ProcessTree::is_sealed`]).

// Most of the machinery is Linux's; elsewhere only the process group is left.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The environment variable a tree's processes inherit its marker in: the ids of the
/// trees a process belongs to, `:`-separated (trees nest: a worker's agent is in the
/// worker's tree and its own).
pub const MARKER_ENV: &str = "TLAO_PROCESS_TREES";
/// The environment variable [`Preference::from_env`] reads: `cgroup` (require one),
/// `fallback` (never use one), anything else or unset: `auto`.
pub const PREFERENCE_ENV: &str = "TLAO_PROCESS_TREE";

/// How long [`ProcessTree::kill`] keeps killing before it gives up on a process
/// (one stuck in uninterruptible sleep, which no signal reaches).
const KILL_PATIENCE: Duration = Duration::from_secs(2);
/// How long it waits between two rounds.
const KILL_POLL: Duration = Duration::from_millis(5);

static NEXT_TREE: AtomicU64 = AtomicU64::new(1);
/// Trees of this process not yet killed: orphans are counted in only while there is one.
static LIVE_TREES: AtomicUsize = AtomicUsize::new(0);
/// The roots of those trees, which are this process's children but no orphans.
static LIVE_ROOTS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Whether a tree should have a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// A cgroup where one can be made, else the /proc fallback.
    #[default]
    Auto,
    /// A cgroup, or an error.
    Cgroup,
    /// Never a cgroup: the /proc fallback (to test it, or where cgroups are managed by
    /// something that must not be disturbed).
    NoCgroup,
}

impl Preference {
    /// The preference [`PREFERENCE_ENV`] names.
    pub fn from_env() -> Preference {
        Preference::parse(std::env::var(PREFERENCE_ENV).ok().as_deref())
    }

    /// `cgroup` → [`Preference::Cgroup`], `fallback` → [`Preference::NoCgroup`],
    /// anything else → [`Preference::Auto`].
    pub fn parse(value: Option<&str>) -> Preference {
        match value.map(str::trim) {
            Some("cgroup") => Preference::Cgroup,
            Some("fallback") => Preference::NoCgroup,
            _ => Preference::Auto,
        }
    }
}

/// What holds a tree together, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Its own cgroup v2: nothing started inside can leave it.
    Cgroup,
    /// No cgroup; this process is a child subreaper and the tree is found in /proc.
    Subreaper,
    /// No cgroup; the tree is found in /proc (sessions, groups, descendants, marker).
    Scan,
    /// Not Linux: the roots' sessions and process groups.
    ProcessGroup,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Cgroup => "cgroup",
            Mechanism::Subreaper => "subreaper",
            Mechanism::Scan => "scan",
            Mechanism::ProcessGroup => "process group",
        })
    }
}

/// How to make a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeOptions {
    /// Whether to use a cgroup.
    pub preference: Preference,
    /// Make this process a child subreaper and count orphans it inherits as the tree's
    /// (while it is the process's one tree). Without a cgroup that is how a daemon that
    /// left its session and environment is found; with one, it finds what a root
    /// double-forked before it joined the cgroup ([`ProcessTree::spawn_joining_later`]).
    /// Only for a process that runs one tree at a time and lives no longer than needed
    /// (the worker): a subreaper must reap what it adopts.
    pub adopt_orphans: bool,
}

/// A root process the tree started.
#[derive(Debug, Clone, Copy)]
struct Root {
    pid: i32,
    /// When it started, to tell it from a later process with its pid.
    start_ticks: Option<u64>,
}

/// Processes that end together. Killed by [`ProcessTree::kill`] or when dropped.
#[derive(Debug)]
pub struct ProcessTree {
    id: String,
    mechanism: Mechanism,
    cgroup: Option<PathBuf>,
    /// The cgroup the tree's cgroup was made under: emptied ancestors up to it go too.
    cgroup_base: Option<PathBuf>,
    roots: Vec<Root>,
    /// Whether this process is a child subreaper counting orphans in (asked for, and
    /// granted).
    adopt_orphans: bool,
    /// Whether the cgroup has held every process of the tree from its first
    /// instruction: see [`ProcessTree::is_sealed`].
    sealed: bool,
    ended: bool,
}

/// A root process of a tree still to be moved into the tree's cgroup: see
/// [`ProcessTree::spawn_joining_later`].
#[derive(Debug)]
#[must_use = "the process joins its tree's cgroup only when the join is run"]
pub struct CgroupJoin {
    dir: PathBuf,
    pid: i32,
}

impl CgroupJoin {
    /// Moves the process into the cgroup, unless it is there already (it joined before
    /// executing) or gone. Blocks for the kernel's grace period: run it on a thread that
    /// may wait. A failure is logged; the tree's other means still find the process.
    pub fn run(self) {
        self.joined_before();
    }

    /// [`run`](Self::run), saying whether the process was in the cgroup already.
    fn joined_before(self) -> bool {
        #[cfg(target_os = "linux")]
        {
            if crate::cgroup::holds(&self.dir, self.pid) {
                return true;
            }
            if let Err(error) = crate::cgroup::enter(&self.dir, self.pid) {
                // ESRCH: it is gone already; ENOENT: the tree was killed and its cgroup removed.
                let gone = error.kind() == io::ErrorKind::NotFound
                    || error.raw_os_error() == Some(nix::libc::ESRCH);
                if gone {
                    tracing::debug!(%error, pid = self.pid, "a process ended before it joined its tree's cgroup");
                } else {
                    tracing::warn!(%error, pid = self.pid, cgroup = %self.dir.display(), "cannot move a process into its tree's cgroup; relying on /proc");
                }
            }
        }
        false
    }
}

impl ProcessTree {
    /// Makes a tree. `name` names its cgroup below this process's own (it may have
    /// several components, `tlao-42/run_x`); it must not exist yet.
    ///
    /// Errors: only with [`Preference::Cgroup`], when no cgroup can be made (no cgroup
    /// v2 hierarchy, no write access, the name taken); `Auto` falls back instead.
    pub fn create(name: &str, options: TreeOptions) -> io::Result<ProcessTree> {
        let id = new_id();
        #[cfg(target_os = "linux")]
        let (cgroup, cgroup_base) = {
            let made = match options.preference {
                Preference::NoCgroup => None,
                Preference::Cgroup => Some(crate::cgroup::create(name)?),
                Preference::Auto => match crate::cgroup::create(name) {
                    Ok(dir) => Some(dir),
                    Err(error) => {
                        tracing::debug!(%error, name, "no cgroup for a process tree; using /proc");
                        None
                    }
                },
            };
            let base = made.as_ref().and_then(|_| crate::cgroup::own_dir());
            (made, base)
        };
        #[cfg(not(target_os = "linux"))]
        let (cgroup, cgroup_base): (Option<PathBuf>, Option<PathBuf>) = {
            if options.preference == Preference::Cgroup {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("cgroups are Linux only; no cgroup for {name}"),
                ));
            }
            (None, None)
        };
        let adopt_orphans = options.adopt_orphans && become_subreaper();
        let mechanism = mechanism_for(cgroup.is_some(), adopt_orphans);
        LIVE_TREES.fetch_add(1, Ordering::SeqCst);
        Ok(ProcessTree {
            id,
            mechanism,
            sealed: cgroup.is_some() && !adopt_orphans,
            cgroup,
            cgroup_base,
            roots: Vec::new(),
            adopt_orphans,
            ended: false,
        })
    }

    /// Ends what is left of a tree an earlier process made and recorded: every process
    /// carrying its marker `id`, everything in its `cgroup`, and the cgroup itself (and
    /// its parent, when that is left empty).
    ///
    /// Errors: `InvalidInput` when `cgroup` is not a cgroup v2 directory, or holds this
    /// process (a record must not make a process kill itself).
    pub fn reclaim(id: &str, cgroup: Option<&Path>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(dir) = cgroup {
            if !crate::cgroup::is_cgroup_dir(dir) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a cgroup v2 directory", dir.display()),
                ));
            }
            if crate::cgroup::own_dir().is_some_and(|own| own.starts_with(dir)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} holds this process", dir.display()),
                ));
            }
        }
        let cgroup = cgroup.filter(|dir| dir.exists()).map(Path::to_path_buf);
        LIVE_TREES.fetch_add(1, Ordering::SeqCst);
        let mut leftover = ProcessTree {
            id: id.to_owned(),
            mechanism: mechanism_for(cgroup.is_some(), false),
            cgroup_base: cgroup
                .as_deref()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .map(Path::to_path_buf),
            cgroup,
            roots: Vec::new(),
            adopt_orphans: false,
            // Its processes carry the marker; some may have been started outside it.
            sealed: false,
            ended: false,
        };
        leftover.kill();
        Ok(())
    }

    /// Removes the empty cgroups that trees named `<prefix><pid>…` of processes now gone
    /// left below this process's cgroup (their owner was killed before it could remove
    /// them); populated ones are left to [`ProcessTree::reclaim`]. Returns how many were
    /// removed; 0 without cgroups.
    pub fn sweep_leftovers(prefix: &str) -> usize {
        #[cfg(target_os = "linux")]
        {
            crate::cgroup::sweep(prefix)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = prefix;
            0
        }
    }

    /// The tree's marker, unique to it across processes and time.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What holds it together.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Its cgroup's directory, when it has one.
    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroup.as_deref()
    }

    /// Whether the tree is sealed: it has a cgroup, every root it started joined that
    /// cgroup before executing ([`spawn`](Self::spawn), never
    /// [`spawn_joining_later`](Self::spawn_joining_later)), and it adopts no orphans.
    /// Everything such a tree's processes start is born in the cgroup, so
    /// [`members`](Self::members) and [`kill`](Self::kill) go by the cgroup alone and
    /// never read the process table. A process could still leave by writing another
    /// cgroup's `cgroup.procs`: a worker does not, and an agent's sandbox forbids it.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Whether it has been killed.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Spawns `command` as a root of the tree: in the tree's cgroup from its first
    /// instruction, leading a new session, killed when this process dies (Linux), with
    /// the tree's marker in its environment.
    ///
    /// Errors: those of spawning; `Other` once the tree has been killed.
    pub fn spawn(
        &mut self,
        command: &mut tokio::process::Command,
    ) -> io::Result<tokio::process::Child> {
        let (child, join) = self.spawn_with(command, true)?;
        if let Some(join) = join
            && !join.joined_before()
        {
            // It ran outside the cgroup for a while: what it started then is not inside.
            self.sealed = false;
        }
        Ok(child)
    }

    /// Spawns `command` as a root of the tree as [`spawn`](Self::spawn) does, except
    /// that it joins the tree's cgroup once started, by the returned [`CgroupJoin`]
    /// (`None` without a cgroup), to be run off the caller's critical path. Moving a
    /// process between cgroups waits for an RCU grace period of the kernel (~10 ms on
    /// a 2-CPU machine); the child's start need not. Until it has joined, the child is
    /// found by the tree's other means (its session, its descendants, the marker), and
    /// what it double-forks meanwhile by adoption when the tree adopts orphans
    /// ([`TreeOptions::adopt_orphans`]).
    ///
    /// Errors: those of spawning; `Other` once the tree has been killed.
    pub fn spawn_joining_later(
        &mut self,
        command: &mut tokio::process::Command,
    ) -> io::Result<(tokio::process::Child, Option<CgroupJoin>)> {
        self.sealed = false;
        self.spawn_with(command, false)
    }

    fn spawn_with(
        &mut self,
        command: &mut tokio::process::Command,
        join_first: bool,
    ) -> io::Result<(tokio::process::Child, Option<CgroupJoin>)> {
        if self.ended {
            return Err(io::Error::other("the process tree has been killed"));
        }
        command.env(MARKER_ENV, self.marker_value());
        #[cfg(target_os = "linux")]
        let procs = match &self.cgroup {
            Some(dir) if join_first => match crate::cgroup::open_procs(dir) {
                Ok(file) => Some(file),
                Err(error) => {
                    tracing::warn!(%error, cgroup = %dir.display(), "cannot join a process tree's cgroup; relying on /proc");
                    None
                }
            },
            _ => None,
        };
        #[cfg(target_os = "linux")]
        let fd = procs.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        #[cfg(not(target_os = "linux"))]
        let fd = None;
        crate::spawn::prepare(command.as_std_mut(), fd);
        let child = command.spawn()?;
        #[cfg(target_os = "linux")]
        drop(procs);
        let mut join = None;
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            #[cfg(target_os = "linux")]
            {
                join = self.cgroup.clone().map(|dir| CgroupJoin { dir, pid });
            }
            self.roots.push(Root {
                pid,
                start_ticks: start_ticks(pid),
            });
            lock_roots().push(pid);
        }
        Ok((child, join))
    }

    /// The live processes of the tree now (Linux; elsewhere the roots still running).
    pub fn members(&self) -> Vec<u32> {
        #[cfg(target_os = "linux")]
        {
            if let Some(dir) = self.sealed_cgroup() {
                return crate::cgroup::members(dir)
                    .into_iter()
                    .filter(|pid| crate::procfs::stat(*pid).is_some_and(|p| !p.dead))
                    .filter_map(|pid| u32::try_from(pid).ok())
                    .collect();
            }
            self.find()
                .into_iter()
                .filter(|p| !p.dead)
                .filter_map(|p| u32::try_from(p.pid).ok())
                .collect()
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.roots
                .iter()
                .filter(|r| nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.pid), None).is_ok())
                .filter_map(|r| u32::try_from(r.pid).ok())
                .collect()
        }
    }

    /// Kills every process of the tree with `SIGKILL`, round after round until none is
    /// left (for at most two seconds: a process in uninterruptible sleep only dies when
    /// it wakes), reaps the orphans it adopted, and removes its cgroup. Later calls, and
    /// the drop, do nothing. Blocks for those rounds: a few milliseconds as a rule.
    pub fn kill(&mut self) {
        if self.ended {
            return;
        }
        #[cfg(target_os = "linux")]
        self.kill_linux();
        #[cfg(not(target_os = "linux"))]
        for root in &self.roots {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(root.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.ended = true;
        lock_roots().retain(|pid| !self.roots.iter().any(|root| root.pid == *pid));
        LIVE_TREES.fetch_sub(1, Ordering::SeqCst);
    }

    /// The marker value for a child: the trees this process is in, then this one.
    fn marker_value(&self) -> String {
        match std::env::var(MARKER_ENV) {
            Ok(inherited) if !inherited.is_empty() => format!("{inherited}:{}", self.id),
            _ => self.id.clone(),
        }
    }

    /// The cgroup of a sealed tree.
    fn sealed_cgroup(&self) -> Option<&Path> {
        self.cgroup.as_deref().filter(|_| self.sealed)
    }

    #[cfg(target_os = "linux")]
    fn kill_linux(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;

        if let Some(dir) = self.sealed_cgroup() {
            let dir = dir.to_path_buf();
            kill_cgroup(&self.id, &dir);
            self.remove_cgroup(&dir);
            return;
        }
        let deadline = Instant::now() + KILL_PATIENCE;
        let me = std::process::id() as i32;
        let mut unreaped: Vec<i32> = Vec::new();
        loop {
            if let Some(dir) = &self.cgroup {
                crate::cgroup::kill_all(dir);
            }
            let found = self.find();
            let alive: Vec<i32> = found.iter().filter(|p| !p.dead).map(|p| p.pid).collect();
            for pid in &alive {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            if self.adopt_orphans {
                for p in found
                    .iter()
                    .filter(|p| p.ppid == me && !self.is_root(p.pid))
                {
                    if !unreaped.contains(&p.pid) {
                        unreaped.push(p.pid);
                    }
                }
            }
            unreaped.retain(|pid| !reap(*pid));
            let populated = self.cgroup.as_deref().is_some_and(crate::cgroup::populated);
            if alive.is_empty() && !populated {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    tree = %self.id, survivors = ?alive, cgroup_populated = populated,
                    "processes of a killed tree are still alive"
                );
                break;
            }
            std::thread::sleep(KILL_POLL);
        }
        // Orphans killed last may take a moment to become reapable.
        let reap_until = Instant::now() + Duration::from_millis(200);
        while !unreaped.is_empty() && Instant::now() < reap_until {
            unreaped.retain(|pid| !reap(*pid));
            std::thread::sleep(KILL_POLL);
        }
        if let Some(dir) = &self.cgroup {
            self.remove_cgroup(dir);
        }
    }

    /// Removes the cgroup, then its ancestors below the base that are left empty.
    #[cfg(target_os = "linux")]
    fn remove_cgroup(&self, dir: &Path) {
        if let Err(error) = crate::cgroup::remove(dir) {
            tracing::warn!(%error, cgroup = %dir.display(), "cannot remove a process tree's cgroup");
            return;
        }
        let Some(base) = &self.cgroup_base else {
            return;
        };
        let mut parent = dir.parent();
        while let Some(ancestor) = parent {
            if ancestor == base || !ancestor.starts_with(base) {
                break;
            }
            // Not empty (another tree's cgroup is in it): it stays.
            if std::fs::remove_dir(ancestor).is_err() {
                break;
            }
            parent = ancestor.parent();
        }
    }

    fn is_root(&self, pid: i32) -> bool {
        self.roots.iter().any(|root| root.pid == pid)
    }

    /// The tree's processes in the process table, zombies included.
    #[cfg(target_os = "linux")]
    fn find(&self) -> Vec<crate::procfs::Proc> {
        let table = crate::procfs::all();
        let me = std::process::id() as i32;
        let my_session = nix::unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(0);
        // This process and its ancestors are never the tree's, whatever they carry.
        let mut protected = HashSet::from([me, 0, 1]);
        let mut cursor = me;
        while let Some(p) = table.iter().find(|p| p.pid == cursor) {
            if !protected.insert(p.ppid) {
                break;
            }
            cursor = p.ppid;
        }
        // A root's pid names its group and session; once taken by another process (the
        // root reaped, the pid reused), it names nothing of the tree.
        let roots: Vec<i32> = self
            .roots
            .iter()
            .filter(|root| {
                table
                    .iter()
                    .find(|p| p.pid == root.pid)
                    .is_none_or(|p| root.start_ticks.is_none_or(|t| t == p.start_ticks))
            })
            .map(|root| root.pid)
            .collect();
        let in_cgroup: HashSet<i32> = self
            .cgroup
            .as_deref()
            .map(crate::cgroup::members)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let orphans_are_ours = self.adopt_orphans && LIVE_TREES.load(Ordering::SeqCst) == 1;
        let other_roots: Vec<i32> = lock_roots()
            .iter()
            .copied()
            .filter(|pid| !self.is_root(*pid))
            .collect();
        let mut members: HashSet<i32> = table
            .iter()
            .filter(|p| !protected.contains(&p.pid))
            .filter(|p| {
                roots.contains(&p.pid)
                    || roots.contains(&p.pgid)
                    || roots.contains(&p.sid)
                    || in_cgroup.contains(&p.pid)
                    || (orphans_are_ours
                        && p.ppid == me
                        && p.sid != my_session
                        && !other_roots.contains(&p.pid))
                    || (!p.dead && crate::procfs::carries_marker(p.pid, MARKER_ENV, &self.id))
            })
            .map(|p| p.pid)
            .collect();
        loop {
            let before = members.len();
            for p in &table {
                if members.contains(&p.ppid) && !protected.contains(&p.pid) {
                    members.insert(p.pid);
                }
            }
            if members.len() == before {
                break;
            }
        }
        table
            .into_iter()
            .filter(|p| members.contains(&p.pid))
            .collect()
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills everything in the cgroup `dir`, round after round until it is empty (for at
/// most [`KILL_PATIENCE`]): a sealed tree's kill.
#[cfg(target_os = "linux")]
fn kill_cgroup(tree: &str, dir: &Path) {
    let deadline = Instant::now() + KILL_PATIENCE;
    let mut first = true;
    loop {
        if !crate::cgroup::populated(dir) {
            return;
        }
        crate::cgroup::kill_all(dir);
        if !std::mem::take(&mut first) {
            // Still there after a round: see `kill_members` for what `cgroup.kill`
            // does not reach.
            crate::cgroup::kill_members(dir);
        }
        if !crate::cgroup::populated(dir) {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                tree, survivors = ?crate::cgroup::members(dir),
                "processes of a killed tree are still alive"
            );
            return;
        }
        std::thread::sleep(KILL_POLL);
    }
}

/// The mechanism a tree gets.
fn mechanism_for(cgroup: bool, subreaper: bool) -> Mechanism {
    if cgroup {
        Mechanism::Cgroup
    } else if cfg!(target_os = "linux") {
        if subreaper {
            Mechanism::Subreaper
        } else {
            Mechanism::Scan
        }
    } else {
        Mechanism::ProcessGroup
    }
}

/// Makes this process a child subreaper (Linux); whether it now is one.
fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        match nix::sys::prctl::set_child_subreaper(true) {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "cannot become a child subreaper");
                false
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// A marker no other tree, in any process, before or after, has: this process's pid
/// and start time, and a count.
fn new_id() -> String {
    let pid = std::process::id();
    let started = i32::try_from(pid).ok().and_then(start_ticks).unwrap_or(0);
    format!(
        "{pid}.{started}.{}",
        NEXT_TREE.fetch_add(1, Ordering::SeqCst)
    )
}

fn start_ticks(pid: i32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        crate::procfs::stat(pid).map(|p| p.start_ticks)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Reaps `pid` if it is this process's exited child; whether it is gone for good.
#[cfg(target_os = "linux")]
fn reap(pid: i32) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    !matches!(
        waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    )
}

fn lock_roots() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE_ROOTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preference_is_read_from_its_variable_value() {
        assert_eq!(Preference::parse(Some("cgroup")), Preference::Cgroup);
        assert_eq!(Preference::parse(Some("fallback")), Preference::NoCgroup);
        assert_eq!(Preference::parse(Some("auto")), Preference::Auto);
        assert_eq!(Preference::parse(None), Preference::Auto);
    }
}
