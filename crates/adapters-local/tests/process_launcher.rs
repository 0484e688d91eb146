//! [`ProcessLauncher`] with real processes: a worker is a shell script given `--run ID
//! --lease ID`. Stopping a worker — even one stopped with `SIGSTOP` — kills it and the
//! daemon it double-forked, and frees its slot; a worker that exits takes its tree with
//! it; and a launcher on the same records finds the workers a crashed one left, fails
//! nothing that still runs, and ends what is left of the rest. Standby workers are
//! started ahead, handed their run on standard input and replaced; a dead one is passed
//! over; stopping all ends the idle ones and starts no more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tlao_adapters_local::{Handover, ProcessLauncher, REFILL_AFTER};
use tlao_domain::{LeaseId, RunId, Ulid};
use tlao_ports::{Launch, RunLauncher};

/// How long a process may take to appear, stop or die.
const PATIENCE: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(1);

fn launch() -> Launch {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let n = u128::from(NEXT.fetch_add(1, Ordering::SeqCst));
    let salt = u128::from(std::process::id()) << 32;
    Launch {
        run_id: RunId::new(Ulid::from_parts(now, salt | n)),
        lease_id: LeaseId::new(Ulid::from_parts(now, salt | n | 1 << 64)),
    }
}

/// A `sleep` argument no other process has.
fn unique_sleep() -> String {
    format!(
        "600.{}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A launcher of `sh -c script worker --run ID --lease ID`, keeping records in `records`.
fn launcher(script: &str, max: usize, records: &Path) -> ProcessLauncher {
    ProcessLauncher::new(
        PathBuf::from("sh"),
        vec!["-c".into(), script.into(), "worker".into()],
        Vec::new(),
        max,
    )
    .with_records(records.to_path_buf())
}

/// A worker script that double-forks `sleep daemon` into a new session with an empty
/// environment, then does `then`.
fn daemonizing(daemon: &str, then: &str) -> String {
    format!(r#"(exec env -i "$(command -v setsid)" "$(command -v sleep)" {daemon} &) ; {then}"#)
}

/// The state of `pid`, its parent and its thread count (fields 3, 4 and 20 of proc(5)).
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((
        state,
        fields.get(1)?.parse().ok()?,
        fields.get(17)?.parse().ok()?,
    ))
}

/// Whether `pid` runs: not a zombie, unless only its main thread has exited.
fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, threads)| !matches!(state, 'Z' | 'X' | 'x') || threads > 1)
}

/// The live processes with `arg` among their arguments.
fn with_arg(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| bytes.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < end,
            "{what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The worker process of `launch` (its arguments name the run).
fn worker_of(launch: &Launch) -> Option<u32> {
    with_arg(launch.run_id.as_str()).first().copied()
}

/// Kills what a failing test left behind.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for arg in &self.0 {
            for pid in with_arg(arg) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[tokio::test]
async fn stopping_a_stopped_worker_kills_it_and_its_daemon_and_frees_its_slot() {
    let records = tempfile::tempdir().unwrap();
    let daemon = unique_sleep();
    let launch = launch();
    let _cleanup = Cleanup(vec![daemon.clone(), launch.run_id.to_string()]);
    let launcher = launcher(&daemonizing(&daemon, "kill -STOP $$"), 1, records.path());
    let exit = launcher.launch(&launch).await.unwrap();
    assert_eq!(launcher.capacity(), 0);
    eventually("the daemon starting", || !with_arg(&daemon).is_empty()).await;
    let worker = worker_of(&launch).unwrap();
    eventually("the worker stopping", || {
        stat(worker).is_some_and(|(state, _, _)| state == 'T')
    })
    .await;
    let record = records.path().join(format!("{}.json", launch.run_id));
    assert!(record.exists(), "the running worker is recorded");

    assert!(launcher.stop(&launch.run_id).await.unwrap());
    let how = tokio::time::timeout(PATIENCE, exit).await.unwrap();

    assert_eq!(how, "killed by signal 9");
    assert!(!is_alive(worker));
    assert!(with_arg(&daemon).is_empty(), "the daemon survived");
    assert_eq!(launcher.capacity(), 1, "the slot is free");
    assert!(!record.exists(), "the record of a gone worker is removed");
    assert!(
        !launcher.stop(&launch.run_id).await.unwrap(),
        "nothing left to stop"
    );
}

#[tokio::test]
async fn a_worker_that_exits_takes_what_it_started_with_it() {
    let records = tempfile::tempdir().unwrap();
    let daemon = unique_sleep();
    let _cleanup = Cleanup(vec![daemon.clone()]);
    // The worker exits once its daemon runs.
    let script = daemonizing(
        &daemon,
        &format!(r#"while ! grep -qs {daemon} /proc/[0-9]*/cmdline; do sleep 0.01; done; exit 3"#),
    );
    let launcher = launcher(&script, 2, records.path());

    let how = tokio::time::timeout(PATIENCE, launcher.launch(&launch()).await.unwrap())
        .await
        .unwrap();

    assert_eq!(how, "exit status 3");
    assert!(
        with_arg(&daemon).is_empty(),
        "the daemon outlived its worker"
    );
    assert_eq!(launcher.capacity(), 2);
    assert_eq!(std::fs::read_dir(records.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn stopping_all_workers_stops_each_of_them() {
    let records = tempfile::tempdir().unwrap();
    let daemon = unique_sleep();
    let _cleanup = Cleanup(vec![daemon.clone()]);
    let launcher = launcher(&daemonizing(&daemon, "exec sleep 600"), 3, records.path());
    let (first, second) = (launch(), launch());
    let exits = [
        launcher.launch(&first).await.unwrap(),
        launcher.launch(&second).await.unwrap(),
    ];
    eventually("both daemons starting", || with_arg(&daemon).len() == 2).await;

    assert_eq!(launcher.stop_all().await.unwrap(), 2);

    for exit in exits {
        assert_eq!(
            tokio::time::timeout(PATIENCE, exit).await.unwrap(),
            "killed by signal 9"
        );
    }
    assert!(with_arg(&daemon).is_empty());
    assert_eq!(launcher.capacity(), 3);
}

#[tokio::test]
async fn a_new_launcher_ends_what_a_crashed_one_left_and_names_the_runs_whose_worker_is_gone() {
    let records = tempfile::tempdir().unwrap();
    let (daemon, survivor) = (unique_sleep(), unique_sleep());
    let (lost, alive) = (launch(), launch());
    let _cleanup = Cleanup(vec![
        daemon.clone(),
        survivor.clone(),
        alive.run_id.to_string(),
    ]);
    let crashed = launcher(&daemonizing(&daemon, "sleep 600"), 2, records.path());
    let lost_exit = crashed.launch(&lost).await.unwrap();
    eventually("the daemon starting", || !with_arg(&daemon).is_empty()).await;
    let survivor_launcher = launcher(&format!("exec sleep {survivor}"), 1, records.path());
    let alive_exit = survivor_launcher.launch(&alive).await.unwrap();
    eventually("the live worker starting", || {
        !with_arg(&survivor).is_empty()
    })
    .await;
    // The first launcher's server dies: its worker is killed, no destructor runs, the
    // daemon its worker started lives on and the record stays.
    let worker = worker_of(&lost).unwrap();
    std::mem::forget(lost_exit);
    std::mem::forget(crashed);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the worker dying", || !is_alive(worker)).await;
    assert!(
        !with_arg(&daemon).is_empty(),
        "the daemon outlived the crash"
    );

    let restarted = launcher("true", 2, records.path());
    let gone = restarted.recover().await.unwrap();

    assert_eq!(gone, vec![lost.clone()], "only the gone worker's run");
    assert!(
        with_arg(&daemon).is_empty(),
        "the leftover daemon was ended"
    );
    assert!(
        !with_arg(&survivor).is_empty(),
        "a live worker is left alone"
    );
    assert!(
        !records
            .path()
            .join(format!("{}.json", lost.run_id))
            .exists(),
        "the gone worker's record is removed"
    );
    assert!(
        records
            .path()
            .join(format!("{}.json", alive.run_id))
            .exists()
    );
    assert_eq!(restarted.recover().await.unwrap(), Vec::new(), "once");
    survivor_launcher.stop(&alive.run_id).await.unwrap();
    tokio::time::timeout(PATIENCE, alive_exit).await.unwrap();
}

/// A worker script for standby tests: as a standby (`--standby`) it reads its
/// assignment, appends `<pid> <assignment>` to `out` and says its agent started; started
/// for a run it appends `<pid> fresh <run> <lease>`. Then it sleeps `sleep`.
fn assignment_recorder(out: &Path, sleep: &str) -> String {
    format!(
        r#"if [ "$1" = "--standby" ]; then read -r line || exit 0; echo "$$ $line" >> {out}; echo started; else echo "$$ fresh $2 $4" >> {out}; fi; exec sleep {sleep}"#,
        out = out.display()
    )
}

/// Hands each run as a one-line document naming it.
struct Documents;

#[async_trait::async_trait]
impl Handover for Documents {
    async fn document(&self, launch: &Launch) -> Option<String> {
        Some(format!(
            r#"{{"run":"{}","lease":"{}"}}"#,
            launch.run_id, launch.lease_id
        ))
    }
}

#[tokio::test]
async fn a_handed_run_comes_as_the_handover_document_and_its_replacement_waits_for_its_agent() {
    let records = tempfile::tempdir().unwrap();
    let out = records.path().join("assignments");
    let go = records.path().join("go");
    let sleep = unique_sleep();
    // The standby's agent "starts" (it says `started`) only once `go` exists.
    let script = format!(
        r#"if [ "$1" = "--standby" ]; then read -r line || exit 0; echo "$$ $line" >> {out}; while [ ! -e {go} ]; do sleep 0.02; done; echo started; fi; exec sleep {sleep}"#,
        out = out.display(),
        go = go.display()
    );
    let _cleanup = Cleanup(vec![sleep.clone(), script.clone()]);
    let launcher = launcher(&script, 3, &records.path().join("workers"))
        .with_handover(std::sync::Arc::new(Documents))
        .with_standby(1);
    eventually("a standby starting", || launcher.standing_by() == 1).await;
    let idle = with_arg(&script);

    let run = launch();
    let exit = launcher.launch(&run).await.unwrap();
    eventually("the standby reading its run", || lines(&out).len() == 1).await;
    assert_eq!(
        lines(&out)[0],
        format!(
            r#"{} {{"run":"{}","lease":"{}"}}"#,
            idle[0], run.run_id, run.lease_id
        ),
        "the standby reads the handover document as its one line"
    );
    // Its agent has not started: no replacement competes with it for the CPU.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(launcher.standing_by(), 0);
    assert_eq!(with_arg(&script), idle, "no replacement yet");

    std::fs::write(&go, "").unwrap();
    let said = Instant::now();
    eventually("a replacement once the agent started", || {
        launcher.standing_by() == 1
    })
    .await;
    assert!(
        said.elapsed() < REFILL_AFTER,
        "the replacement followed the worker's word, not the fallback delay: {:?}",
        said.elapsed()
    );

    assert_eq!(launcher.stop_all().await.unwrap(), 1);
    assert_eq!(
        tokio::time::timeout(PATIENCE, exit).await.unwrap(),
        "killed by signal 9"
    );
    eventually("every worker and standby gone", || {
        with_arg(&script).is_empty()
    })
    .await;
}

/// The lines `out` holds.
fn lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A launcher keeping one standby of the [`assignment_recorder`] script, that standby up.
/// A test keeps it whole and borrows its fields: dropping it ends the launcher, kills
/// what is left and removes the directory.
struct Recording {
    _cleanup: Cleanup,
    launcher: ProcessLauncher,
    /// The standby's pid, alone.
    idle: Vec<u32>,
    script: String,
    /// Where the workers write what they were handed.
    out: PathBuf,
    records: tempfile::TempDir,
}

async fn recording_standby(max: usize) -> Recording {
    let records = tempfile::tempdir().unwrap();
    let out = records.path().join("assignments");
    let sleep = unique_sleep();
    let script = assignment_recorder(&out, &sleep);
    let cleanup = Cleanup(vec![sleep, script.clone()]);
    let launcher = launcher(&script, max, &records.path().join("workers")).with_standby(1);
    eventually("a standby starting", || launcher.standing_by() == 1).await;
    let idle = with_arg(&script);
    assert_eq!(idle.len(), 1, "one standby process: {idle:?}");
    Recording {
        _cleanup: cleanup,
        launcher,
        idle,
        script,
        out,
        records,
    }
}

#[tokio::test]
async fn a_standby_worker_is_handed_its_run_on_stdin_and_replaced_off_the_critical_path() {
    let standing = recording_standby(3).await;
    let (launcher, idle, script, out, records) = (
        &standing.launcher,
        &standing.idle,
        &standing.script,
        &standing.out,
        &standing.records,
    );
    assert!(lines(out).is_empty(), "a standby waits: {:?}", lines(out));

    let first = launch();
    let exit = launcher.launch(&first).await.unwrap();
    eventually("the standby reading its run", || lines(out).len() == 1).await;
    assert_eq!(
        lines(out)[0],
        format!("{} {} {}", idle[0], first.run_id, first.lease_id),
        "the standby process executes the run"
    );
    eventually("a replacement standby", || launcher.standing_by() == 1).await;
    assert_eq!(launcher.capacity(), 2, "a standby is not a running worker");
    // The run's worker is recorded under the run, for recovery after a crash.
    let record = records
        .path()
        .join("workers")
        .join(format!("{}.json", first.run_id));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["pid"], idle[0]);

    let second = launch();
    let second_exit = launcher.launch(&second).await.unwrap();
    eventually("the replacement reading its run", || lines(out).len() == 2).await;
    let line = &lines(out)[1];
    assert!(
        line.ends_with(&format!("{} {}", second.run_id, second.lease_id))
            && !line.starts_with(&idle[0].to_string()),
        "a second, different standby executes the second run: {line}"
    );

    assert_eq!(launcher.stop_all().await.unwrap(), 2);
    for exit in [exit, second_exit] {
        assert_eq!(
            tokio::time::timeout(PATIENCE, exit).await.unwrap(),
            "killed by signal 9"
        );
    }
    assert_eq!(launcher.standing_by(), 0);
    eventually("every worker and standby gone", || {
        with_arg(script).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(with_arg(script).is_empty(), "no standby after stop_all");
}

/// The kernel kills a worker when the thread that started it ends (`PR_SET_PDEATHSIG`
/// follows the thread). A standby is started off the runtime's threads; on a blocking
/// pool thread, which ends once idle for its keep-alive, it would die with that thread,
/// idle or halfway through a run.
#[test]
fn a_standby_outlives_the_thread_that_started_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let standing = recording_standby(2).await;
        let (launcher, idle, script, out) = (
            &standing.launcher,
            &standing.idle,
            &standing.script,
            &standing.out,
        );
        // Idle blocking threads have ended many times over.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            is_alive(idle[0]),
            "the standby died with the thread that started it"
        );
        assert_eq!(&with_arg(script), idle);

        let exit = launcher.launch(&launch()).await.unwrap();
        eventually("the standby reading its run", || lines(out).len() == 1).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(is_alive(idle[0]), "the worker died halfway through its run");
        assert_eq!(launcher.stop_all().await.unwrap(), 1);
        assert_eq!(
            tokio::time::timeout(PATIENCE, exit).await.unwrap(),
            "killed by signal 9"
        );
    });
}

#[tokio::test]
async fn a_dead_standby_is_passed_over_and_the_run_gets_a_fresh_worker() {
    let standing = recording_standby(2).await;
    let (launcher, idle, out) = (&standing.launcher, &standing.idle, &standing.out);
    let standby = idle[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(standby as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the standby dying", || !is_alive(standby)).await;

    let run = launch();
    let exit = launcher.launch(&run).await.unwrap();
    eventually("a worker reading its run", || lines(out).len() == 1).await;
    assert!(
        lines(out)[0].ends_with(&format!("fresh {} {}", run.run_id, run.lease_id)),
        "{:?}",
        lines(out)
    );
    assert_eq!(launcher.stop_all().await.unwrap(), 1);
    assert_eq!(
        tokio::time::timeout(PATIENCE, exit).await.unwrap(),
        "killed by signal 9"
    );
}

#[tokio::test]
async fn recovery_on_a_fresh_data_dir_still_removes_the_empty_cgroups_of_killed_servers() {
    let mut gone = tokio::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id().unwrap();
    gone.wait().await.unwrap();
    // What a killed server leaves: its cgroup, its last standby's below it, and the agent
    // tree that standby had made ahead below that.
    let options = tlao_process::TreeOptions {
        preference: tlao_process::Preference::Cgroup,
        adopt_orphans: false,
    };
    let Ok(leftover) = tlao_process::ProcessTree::create(
        &format!("tlao-{gone_pid}/standby-1/tlao-agent-{gone_pid}-1"),
        options,
    ) else {
        eprintln!("no cgroup can be made here; nothing to sweep");
        return;
    };
    let agent_dir = leftover.cgroup().unwrap().to_path_buf();
    let server_dir = agent_dir.ancestors().nth(2).unwrap().to_path_buf();
    std::mem::forget(leftover);
    assert!(server_dir.ends_with(format!("tlao-{gone_pid}")));
    let data = tempfile::tempdir().unwrap();
    let records = data.path().join("workers");
    assert!(!records.exists(), "a fresh data dir has no records yet");

    let recovered = launcher("true", 1, &records).recover().await.unwrap();

    assert_eq!(recovered, Vec::new());
    assert!(
        !server_dir.exists(),
        "the killed server's cgroups were left: {}",
        agent_dir.display()
    );
}
