//! The local run launcher: one `tlao worker --run ID --lease ID` process per run, so each
//! run is an isolated process exactly as it is an isolated container in the cloud.
//!
//! Each worker is the root of its own [`ProcessTree`] — a cgroup `tlao-<server pid>/<run
//! id>` below the server's own where one can be made, else found through `/proc` — and
//! the tree is killed, the worker's agent and whatever the agent started with it, when
//! the worker exits, when the launcher is told to stop it (its run was lost, the server
//! is stopping), and when the launcher is dropped. A worker also dies with the server
//! (`PR_SET_PDEATHSIG`, Linux).
//!
//! Standby workers ([`ProcessLauncher::with_standby`]): the launcher keeps a number of
//! worker processes started ahead of time (`tlao worker --standby`), each the root of
//! its own tree (`tlao-<server pid>/standby-<n>`), initialised and blocked reading one
//! line from a pipe the launcher holds. A launch hands the first live one its run
//! instead of starting a process: a [`Handover`] document when the launcher has a
//! source of them (the assignment and TaskSpec themselves, so the worker needs no
//! request before starting its agent), else `<run id> <lease id>`; one line, then the
//! pipe is closed. A replacement is started once the handed worker says its agent has
//! started (the line `started` on its standard output), or it exits, or after
//! [`REFILL_AFTER`]: not while the run's own start needs the CPU. A worker still
//! executes exactly one run and exits; a standby whose pipe closes (the server is gone)
//! exits without doing anything.
//!
//! With a records directory, the launcher keeps one file per running worker
//! (`<run id>.json`: its pid, start time, boot, tree), removed when the worker is gone.
//! A server starting on the same data dir after a crash reads what is left
//! ([`RunLauncher::recover`]): a worker no longer running (its pid gone or reused) is
//! known to be gone, so its run can fail at once, and what is left of its tree — the
//! agent's children in its cgroup — is ended. Empty cgroups that servers killed
//! without a chance to clean up left behind are removed then too.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tlao_domain::{LeaseId, RunId};
use tlao_ports::{Launch, LaunchError, RunLauncher, StopError, WorkerExit};
use tlao_process::{Preference, ProcessIdentity, ProcessTree, TreeOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The longest a replacement standby waits for the worker handed a run to say its agent
/// started.
pub const REFILL_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// What a standby worker prints on its standard output once its run's agent started.
pub const STARTED_LINE: &str = "started";

/// Where the launcher gets the document it hands a standby worker with its run.
#[async_trait]
pub trait Handover: Send + Sync {
    /// One line of JSON (no newline) the worker reads in place of asking the API for
    /// its assignment; `None` to hand only the run and lease ids (the worker asks).
    async fn document(&self, launch: &Launch) -> Option<String>;
}

/// The trees of the workers running now, by run.
type Trees = Arc<Mutex<HashMap<RunId, Arc<Mutex<ProcessTree>>>>>;

/// Starts worker processes, at most `max_workers` at once.
pub struct ProcessLauncher {
    recipe: Arc<Recipe>,
    max_workers: usize,
    running: Arc<AtomicUsize>,
    trees: Trees,
    records: Option<PathBuf>,
    standby: Arc<StandbyPool>,
    handover: Option<Arc<dyn Handover>>,
}

/// How a worker process is started.
struct Recipe {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    preference: Preference,
}

impl Recipe {
    /// Starts `program args... extra...` as the root of a new tree named `name`.
    fn spawn(
        &self,
        name: &str,
        extra: &[&str],
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<(ProcessTree, Child), LaunchError> {
        let mut tree = ProcessTree::create(
            name,
            TreeOptions {
                preference: self.preference,
                adopt_orphans: false,
            },
        )
        .map_err(|e| LaunchError::Failed(format!("cannot make the worker's process tree: {e}")))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .kill_on_drop(false);
        let child = tree
            .spawn(&mut command)
            .map_err(|e| LaunchError::Failed(format!("{}: {e}", self.program.display())))?;
        Ok((tree, child))
    }
}

/// A worker started ahead of its run, blocked reading its assignment from `stdin`; it
/// says on `stdout` when its run's agent has started.
struct Standby {
    tree: ProcessTree,
    child: Child,
    stdin: ChildStdin,
    stdout: Option<ChildStdout>,
}

/// The standby workers: how many to keep, the idle ones, and how many are starting.
#[derive(Default)]
struct StandbyPool {
    want: usize,
    idle: Mutex<VecDeque<Standby>>,
    starting: AtomicUsize,
    /// Set by [`RunLauncher::stop_all`]: the server is stopping, start no more.
    closed: AtomicBool,
    sequence: AtomicU64,
}

/// A job for [`on_spawner_thread`].
type SpawnJob = Box<dyn FnOnce() + Send>;

/// Runs `job` on a thread of its own that lives as long as this process, started on
/// first use, one job after another.
///
/// For starting workers: a worker dies when the thread that started it ends (the
/// kernel's `PR_SET_PDEATHSIG` follows the thread, not the process), and a thread of
/// Tokio's blocking pool ends once idle for its keep-alive (10 s), which killed idle
/// standbys and, handed a run, the worker in the middle of it. Should the thread not
/// start, the job runs on the calling thread.
fn on_spawner_thread(job: impl FnOnce() + Send + 'static) {
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<SpawnJob>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<SpawnJob>();
        let started = std::thread::Builder::new()
            .name("tlao-spawner".into())
            .spawn(move || {
                for job in queue {
                    // A panicking job must not end this thread: every worker it started
                    // would die with it.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!(operation = "launcher.spawn", "starting a worker panicked");
                    }
                }
            });
        match started {
            Ok(_) => Some(jobs),
            Err(error) => {
                tracing::warn!(%error, operation = "launcher.spawn", "cannot start the thread that starts workers; each is started on the thread that asks, and dies with it");
                None
            }
        }
    });
    let job: SpawnJob = Box::new(job);
    let unsent = match spawner {
        Some(jobs) => jobs.send(job).err().map(|unsent| unsent.0),
        None => Some(job),
    };
    if let Some(job) = unsent {
        job();
    }
}

/// Starts a worker (`extra` after the recipe's arguments, no standard input, the
/// server's output) on the thread of [`on_spawner_thread`], where it does not die with a
/// thread that ends before it, and waits for it to have started.
async fn start_on_spawner_thread(
    recipe: Arc<Recipe>,
    name: String,
    extra: Vec<String>,
) -> Result<(ProcessTree, Child), LaunchError> {
    let runtime = tokio::runtime::Handle::current();
    let (done, started) = tokio::sync::oneshot::channel();
    on_spawner_thread(move || {
        let _runtime = runtime.enter();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        // Nobody waiting (the launch was abandoned): dropping the tree ends the worker.
        let _ = done.send(recipe.spawn(&name, &extra, Stdio::null(), Stdio::inherit()));
    });
    started.await.map_err(|_| {
        LaunchError::Failed("the thread that starts workers did not start this one".to_owned())
    })?
}

/// One standby counted as starting until this is dropped: when it is kept, or its job
/// ends any other way (failed, closed, panicked, or dropped unrun).
struct Starting(Arc<StandbyPool>);

impl Starting {
    fn new(pool: &Arc<StandbyPool>) -> Self {
        pool.starting.fetch_add(1, Ordering::SeqCst);
        Starting(pool.clone())
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StandbyPool {
    /// Starts standbys in the background until `want` are idle or starting. Needs a
    /// Tokio runtime; without one (or when closed, or not wanted) it does nothing.
    fn refill(pool: &Arc<StandbyPool>, recipe: &Arc<Recipe>) {
        if pool.want == 0 || pool.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let have = lock(&pool.idle).len() + pool.starting.load(Ordering::SeqCst);
        for _ in have..pool.want {
            let starting = Starting::new(pool);
            let (pool, recipe) = (pool.clone(), recipe.clone());
            // Starting a process blocks (fork, exec, the cgroup): off the runtime's
            // threads, which serve the API, on the one that lives as long as this
            // process (see `on_spawner_thread`).
            let runtime = runtime.clone();
            on_spawner_thread(move || {
                if pool.closed.load(Ordering::SeqCst) {
                    return;
                }
                let _runtime = runtime.enter();
                let name = format!(
                    "tlao-{}/standby-{}",
                    std::process::id(),
                    pool.sequence.fetch_add(1, Ordering::SeqCst)
                );
                match recipe.spawn(&name, &["--standby"], Stdio::piped(), Stdio::piped()) {
                    Ok((tree, mut child)) => {
                        let Some(stdin) = child.stdin.take() else {
                            return;
                        };
                        let stdout = child.stdout.take();
                        // Under the lock `close` drains: a standby is either seen by
                        // `close` or never kept. Dropping the tree ends it.
                        let mut idle = lock(&pool.idle);
                        if pool.closed.load(Ordering::SeqCst) {
                            return;
                        }
                        tracing::debug!(pid = child.id(), tree = %tree.mechanism(), "standby worker started");
                        idle.push_back(Standby {
                            tree,
                            child,
                            stdin,
                            stdout,
                        });
                        // Counted as idle before it stops counting as starting.
                        drop(starting);
                    }
                    Err(error) => {
                        tracing::warn!(%error, operation = "launcher.standby", "cannot start a standby worker; runs start theirs on demand");
                    }
                }
            });
        }
    }

    /// The first live standby, told to execute `launch` with `line`; `None` when none is
    /// (each dead or unreachable one is dropped, which ends its tree).
    async fn hand(&self, line: &str) -> Option<(ProcessTree, Child, Option<ChildStdout>)> {
        loop {
            let mut standby = lock(&self.idle).pop_front()?;
            if !matches!(standby.child.try_wait(), Ok(None)) {
                tracing::warn!(
                    operation = "launcher.standby",
                    "a standby worker had exited; starting another"
                );
                continue;
            }
            let written = async {
                standby.stdin.write_all(line.as_bytes()).await?;
                standby.stdin.flush().await
            };
            match written.await {
                Ok(()) => {
                    // Closing the pipe: the worker reads one line, and no more.
                    drop(standby.stdin);
                    return Some((standby.tree, standby.child, standby.stdout));
                }
                Err(error) => {
                    tracing::warn!(%error, operation = "launcher.standby", "cannot hand a standby worker its run; trying another");
                }
            }
        }
    }

    /// Ends every idle standby and starts no more.
    fn close(&self) -> usize {
        self.closed.store(true, Ordering::SeqCst);
        let idle: Vec<Standby> = lock(&self.idle).drain(..).collect();
        let count = idle.len();
        for mut standby in idle {
            standby.tree.kill();
        }
        count
    }
}

/// What is remembered of a running worker, in `<records>/<run id>.json`: enough to tell,
/// after a crash, whether it is still running and to end what it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkerRecord {
    run_id: RunId,
    lease_id: LeaseId,
    pid: u32,
    start_ticks: u64,
    boot_id: String,
    /// The worker's tree: its marker, and its cgroup when it has one.
    tree: String,
    cgroup: Option<PathBuf>,
}

impl ProcessLauncher {
    /// Launches `program args... --run ID --lease ID` with `env` added to this
    /// process's environment (the API URL and worker token go there).
    pub fn new(
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        max_workers: usize,
    ) -> Self {
        ProcessLauncher {
            recipe: Arc::new(Recipe {
                program,
                args,
                env,
                preference: Preference::from_env(),
            }),
            max_workers: max_workers.max(1),
            running: Arc::new(AtomicUsize::new(0)),
            trees: Arc::default(),
            records: None,
            standby: Arc::default(),
            handover: None,
        }
    }

    /// Hands standby workers their run with a document from `source` (see
    /// [`Handover`]) rather than only its ids.
    pub fn with_handover(mut self, source: Arc<dyn Handover>) -> Self {
        self.handover = Some(source);
        self
    }

    /// Keeps `count` standby workers started and waiting (see the module's docs), the
    /// first ones started now when called inside a Tokio runtime, else at the first
    /// launch. 0 (the default) starts each worker when its run is launched.
    pub fn with_standby(mut self, count: usize) -> Self {
        self.standby = Arc::new(StandbyPool {
            want: count,
            ..StandbyPool::default()
        });
        StandbyPool::refill(&self.standby, &self.recipe);
        self
    }

    /// Standby workers idle now.
    pub fn standing_by(&self) -> usize {
        lock(&self.standby.idle).len()
    }

    /// Keeps a record of each running worker in `dir` (created when needed), for
    /// [`RunLauncher::recover`] after a crash.
    pub fn with_records(mut self, dir: PathBuf) -> Self {
        self.records = Some(dir);
        self
    }

    /// Whether workers' trees get cgroups (by default as `TLAO_PROCESS_TREE` says).
    pub fn with_preference(mut self, preference: Preference) -> Self {
        if let Some(recipe) = Arc::get_mut(&mut self.recipe) {
            recipe.preference = preference;
        }
        self
    }

    /// Workers currently running.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Records `child`'s worker; where recording fails the launch goes on (the heartbeat
    /// timeout still ends its run after a crash).
    fn record(&self, launch: &Launch, pid: Option<u32>, tree: &ProcessTree) -> Option<PathBuf> {
        let dir = self.records.as_ref()?;
        let identity = pid.and_then(ProcessIdentity::of)?;
        let record = WorkerRecord {
            run_id: launch.run_id.clone(),
            lease_id: launch.lease_id.clone(),
            pid: identity.pid,
            start_ticks: identity.start_ticks,
            boot_id: identity.boot_id,
            tree: tree.id().to_owned(),
            cgroup: tree.cgroup().map(Path::to_path_buf),
        };
        let path = record_path(dir, &launch.run_id);
        match write_record(dir, &path, &record) {
            Ok(()) => Some(path),
            Err(error) => {
                tracing::warn!(
                    run_id = %launch.run_id, path = %path.display(), %error,
                    operation = "launcher.record", "cannot record a worker; a crash will leave its run to the heartbeat timeout"
                );
                None
            }
        }
    }
}

/// Decrements the running count when the worker's watcher ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a worker leaves to clean up when it is gone: its tree (killed, so nothing it
/// started survives it), its entry among the running trees, and its record. Done when
/// dropped, so also when the exit future is dropped unfinished (the server is going
/// away); the record is then kept, for the next start to fail the run at once.
struct Departure {
    run_id: RunId,
    tree: Arc<Mutex<ProcessTree>>,
    trees: Trees,
    record: Option<PathBuf>,
    /// Whether the worker's exit was seen.
    exited: bool,
}

impl Drop for Departure {
    fn drop(&mut self) {
        lock(&self.tree).kill();
        let mut trees = lock(&self.trees);
        if trees
            .get(&self.run_id)
            .is_some_and(|tree| Arc::ptr_eq(tree, &self.tree))
        {
            trees.remove(&self.run_id);
        }
        drop(trees);
        if let Some(path) = self.record.as_ref().filter(|_| self.exited) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[async_trait]
impl RunLauncher for ProcessLauncher {
    fn capacity(&self) -> usize {
        self.max_workers.saturating_sub(self.running())
    }

    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError> {
        // Reserve a slot first so concurrent launches cannot overshoot the bound.
        let previous = self.running.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.running.clone());
        if previous >= self.max_workers {
            return Err(LaunchError::Busy(format!(
                "{} workers are running",
                self.max_workers
            )));
        }
        let handed = if lock(&self.standby.idle).is_empty() {
            None
        } else {
            let document = match &self.handover {
                Some(source) => source.document(launch).await,
                None => None,
            };
            let line = match document {
                Some(document) => format!("{document}\n"),
                None => format!("{} {}\n", launch.run_id, launch.lease_id),
            };
            self.standby.hand(&line).await
        };
        let standby = handed.is_some();
        let (tree, mut child) = match handed {
            Some((tree, child, stdout)) => {
                // The replacement starts when this run's agent has, not now.
                tokio::spawn(refill_when_started(
                    self.standby.clone(),
                    self.recipe.clone(),
                    stdout,
                ));
                (tree, child)
            }
            None => {
                let started = start_on_spawner_thread(
                    self.recipe.clone(),
                    format!("tlao-{}/{}", std::process::id(), launch.run_id),
                    vec![
                        "--run".to_owned(),
                        launch.run_id.to_string(),
                        "--lease".to_owned(),
                        launch.lease_id.to_string(),
                    ],
                )
                .await?;
                StandbyPool::refill(&self.standby, &self.recipe);
                started
            }
        };
        tracing::debug!(
            run_id = %launch.run_id, pid = child.id(), tree = %tree.mechanism(), standby,
            "worker process started"
        );
        let record = self.record(launch, child.id(), &tree);
        let tree = Arc::new(Mutex::new(tree));
        lock(&self.trees).insert(launch.run_id.clone(), tree.clone());
        let mut departure = Departure {
            run_id: launch.run_id.clone(),
            tree,
            trees: self.trees.clone(),
            record,
            exited: false,
        };
        Ok(Box::pin(async move {
            let how = match child.wait().await {
                Ok(status) => describe(status),
                Err(e) => format!("could not be waited for: {e}"),
            };
            departure.exited = true;
            // Killing the tree takes a few milliseconds of /proc reading; off the runtime.
            let _ = tokio::task::spawn_blocking(move || drop(departure)).await;
            drop(slot);
            how
        }))
    }

    async fn stop(&self, run_id: &RunId) -> Result<bool, StopError> {
        let Some(tree) = lock(&self.trees).get(run_id).cloned() else {
            return Ok(false);
        };
        tokio::task::spawn_blocking(move || {
            let mut tree = lock(&tree);
            let running = !tree.has_ended();
            tree.kill();
            running
        })
        .await
        .map_err(|e| StopError::Failed(format!("the stop did not finish: {e}")))
    }

    async fn stop_all(&self) -> Result<usize, StopError> {
        let standby = self.standby.clone();
        let _ = tokio::task::spawn_blocking(move || standby.close()).await;
        let trees: Vec<_> = lock(&self.trees).values().cloned().collect();
        tokio::task::spawn_blocking(move || {
            trees
                .iter()
                .filter(|tree| {
                    let mut tree = lock(tree);
                    let running = !tree.has_ended();
                    tree.kill();
                    running
                })
                .count()
        })
        .await
        .map_err(|e| StopError::Failed(format!("the stop did not finish: {e}")))
    }

    async fn recover(&self) -> Result<Vec<Launch>, StopError> {
        let Some(dir) = self.records.clone() else {
            return Ok(Vec::new());
        };
        let live: Vec<RunId> = lock(&self.trees).keys().cloned().collect();
        tokio::task::spawn_blocking(move || recover_from(&dir, &live))
            .await
            .map_err(|e| StopError::Failed(format!("the recovery did not finish: {e}")))?
    }
}

/// Reads the records in `dir` (except those of `live` runs, this launcher's own): ends
/// what is left of each worker no longer running, removes its record, and returns its
/// launch. Then removes the empty cgroups of servers killed before they could remove
/// them (this data dir's or another's), records or none: a fresh data directory has no
/// records directory yet, and a server killed while using another one left its cgroups
/// all the same.
fn recover_from(dir: &Path, live: &[RunId]) -> Result<Vec<Launch>, StopError> {
    let gone = recover_records(dir, live);
    ProcessTree::sweep_leftovers("tlao-");
    gone
}

/// The records part of [`recover_from`].
fn recover_records(dir: &Path, live: &[RunId]) -> Result<Vec<Launch>, StopError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StopError::Failed(format!(
                "cannot read the worker records in {}: {e}",
                dir.display()
            )));
        }
    };
    let mut gone = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let record: WorkerRecord = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, operation = "launcher.recover", "ignoring an unreadable worker record");
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        if live.contains(&record.run_id) {
            continue;
        }
        let identity = ProcessIdentity {
            pid: record.pid,
            start_ticks: record.start_ticks,
            boot_id: record.boot_id.clone(),
        };
        if identity.is_running() {
            // Not this launcher's to judge: the heartbeat timeout decides.
            continue;
        }
        // A record names only a cgroup this launcher makes (`tlao-<pid>/<run id>`); any
        // other is not acted on, whatever the file says.
        let cgroup = record.cgroup.as_deref().filter(|dir| {
            let ours = is_worker_cgroup(dir, &record.run_id);
            if !ours {
                tracing::warn!(
                    run_id = %record.run_id, cgroup = %dir.display(), operation = "launcher.recover",
                    "ignoring a recorded cgroup this launcher would not have made"
                );
            }
            ours
        });
        if let Err(error) = ProcessTree::reclaim(&record.tree, cgroup) {
            tracing::warn!(
                run_id = %record.run_id, %error, operation = "launcher.recover",
                "cannot end what is left of a gone worker's process tree"
            );
        }
        let _ = std::fs::remove_file(&path);
        tracing::info!(
            run_id = %record.run_id, pid = record.pid, operation = "launcher.recover",
            "the worker of an earlier server is gone"
        );
        gone.push(Launch {
            run_id: record.run_id,
            lease_id: record.lease_id,
        });
    }
    Ok(gone)
}

/// Whether `dir` is named as this launcher names a worker's cgroup: `…/tlao-<pid>/<run
/// id>`, or `…/tlao-<pid>/standby-<n>` for a worker that was a standby.
fn is_worker_cgroup(dir: &Path, run_id: &RunId) -> bool {
    let parent_is_a_server = dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("tlao-"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let was_a_standby = name
        .strip_prefix("standby-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    parent_is_a_server && (name == run_id.as_str() || was_a_standby)
}

/// Starts the standby replacing one just handed a run once that worker says its agent
/// started ([`STARTED_LINE`]), closes its output (it exited) or [`REFILL_AFTER`] has
/// passed; then reads what else it prints, to its end, so it never blocks on a full
/// pipe.
async fn refill_when_started(
    pool: Arc<StandbyPool>,
    recipe: Arc<Recipe>,
    stdout: Option<ChildStdout>,
) {
    let Some(stdout) = stdout else {
        StandbyPool::refill(&pool, &recipe);
        return;
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let said = tokio::time::timeout(REFILL_AFTER, async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim() == STARTED_LINE => return true,
                Ok(Some(line)) => tracing::debug!(%line, "a worker printed"),
                Ok(None) | Err(_) => return false,
            }
        }
    })
    .await;
    StandbyPool::refill(&pool, &recipe);
    if matches!(said, Ok(true) | Err(_)) {
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(%line, "a worker printed");
        }
    }
}

fn record_path(dir: &Path, run_id: &RunId) -> PathBuf {
    dir.join(format!("{run_id}.json"))
}

/// Writes `record` at `path` atomically (a temporary file renamed), creating `dir`.
fn write_record(dir: &Path, path: &Path, record: &WorkerRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec(record)?)?;
    std::fs::rename(&temporary, path)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "an unknown exit status".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlao_domain::Ulid;

    /// A job that panics does not end the spawner thread (every worker it started would
    /// die with it): the next job runs on the same thread.
    #[test]
    fn the_spawner_thread_outlives_a_panicking_job() {
        let (said, heard) = std::sync::mpsc::channel();
        let first = said.clone();
        on_spawner_thread(move || {
            let _ = first.send(std::thread::current().id());
            panic!("a job that panics");
        });
        on_spawner_thread(move || {
            let _ = said.send(std::thread::current().id());
        });
        let timeout = std::time::Duration::from_secs(10);
        let (a, b) = (heard.recv_timeout(timeout), heard.recv_timeout(timeout));
        assert!(a.is_ok() && a == b, "one thread runs both: {a:?} {b:?}");
        assert_ne!(a, Ok(std::thread::current().id()));
    }

    #[test]
    fn only_a_cgroup_named_as_the_launcher_names_them_is_taken_from_a_record() {
        let run = RunId::new(Ulid::from_parts(1_800_000_000_000, 1));
        let ours = PathBuf::from(format!("/sys/fs/cgroup/tlao-4242/{run}"));
        assert!(is_worker_cgroup(&ours, &run));
        let was_a_standby = PathBuf::from("/sys/fs/cgroup/tlao-4242/standby-7");
        assert!(is_worker_cgroup(&was_a_standby, &run));
        for other in [
            PathBuf::from("/sys/fs/cgroup/tlao-4242/standby-"),
            PathBuf::from("/sys/fs/cgroup/tlao-4242/standby-7x"),
            PathBuf::from("/sys/fs/cgroup/system.slice/standby-7"),
            PathBuf::from("/sys/fs/cgroup/system.slice"),
            PathBuf::from(format!("/sys/fs/cgroup/system.slice/{run}")),
            PathBuf::from(format!("/sys/fs/cgroup/tlao-/{run}")),
            PathBuf::from(format!("/sys/fs/cgroup/tlao-agent-1/{run}")),
            PathBuf::from("/sys/fs/cgroup/tlao-4242/run_other"),
        ] {
            assert!(!is_worker_cgroup(&other, &run), "{}", other.display());
        }
    }
}
