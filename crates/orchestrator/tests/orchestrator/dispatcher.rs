//! The dispatcher watching the workers it launched, over an in-memory launcher whose
//! workers run until they are stopped or told to exit: a worker whose run the reaper
//! failed as `worker_lost` is stopped at once and its slot goes to the next run; one
//! that outlives its cancelled run is stopped after the grace period, not before; one
//! that exits mid-run fails its run; and at start the runs of workers the launcher
//! knows to be gone fail at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{Guardrails, RunErrorCode, RunId, RunStatus};
use tlao_orchestrator::{Dispatcher, Reaper};
use tlao_ports::{Launch, LaunchError, RunLauncher, StopError, WorkerExit};
use tokio::sync::oneshot;

use common::World;

/// How long the tests wait for the dispatcher's background watch.
const PATIENCE: Duration = Duration::from_secs(5);

/// Workers that run until stopped or told to exit.
#[derive(Default)]
struct FakeLauncher {
    max: usize,
    running: Mutex<HashMap<RunId, oneshot::Sender<String>>>,
    launched: Mutex<Vec<Launch>>,
    stopped: Mutex<Vec<(RunId, Instant)>>,
    gone: Mutex<Vec<Launch>>,
}

impl FakeLauncher {
    fn new(max: usize) -> Arc<FakeLauncher> {
        Arc::new(FakeLauncher {
            max,
            ..FakeLauncher::default()
        })
    }

    /// The worker of `run` exits by itself, as `how`.
    fn exit(&self, run: &RunId, how: &str) {
        let sender = self.running.lock().unwrap().remove(run).unwrap();
        sender.send(how.to_owned()).unwrap();
    }

    fn launched(&self) -> Vec<RunId> {
        self.launched
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.run_id.clone())
            .collect()
    }

    fn stopped(&self) -> Vec<(RunId, Instant)> {
        self.stopped.lock().unwrap().clone()
    }
}

#[async_trait]
impl RunLauncher for FakeLauncher {
    fn capacity(&self) -> usize {
        self.max.saturating_sub(self.running.lock().unwrap().len())
    }

    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError> {
        let (tx, rx) = oneshot::channel();
        self.running
            .lock()
            .unwrap()
            .insert(launch.run_id.clone(), tx);
        self.launched.lock().unwrap().push(launch.clone());
        Ok(Box::pin(async move {
            rx.await.unwrap_or_else(|_| "vanished".into())
        }))
    }

    async fn stop(&self, run_id: &RunId) -> Result<bool, StopError> {
        let Some(sender) = self.running.lock().unwrap().remove(run_id) else {
            return Ok(false);
        };
        self.stopped
            .lock()
            .unwrap()
            .push((run_id.clone(), Instant::now()));
        let _ = sender.send("killed by signal 9".into());
        Ok(true)
    }

    async fn stop_all(&self) -> Result<usize, StopError> {
        let runs: Vec<RunId> = self.running.lock().unwrap().keys().cloned().collect();
        for run in &runs {
            self.stop(run).await?;
        }
        Ok(runs.len())
    }

    async fn recover(&self) -> Result<Vec<Launch>, StopError> {
        Ok(std::mem::take(&mut *self.gone.lock().unwrap()))
    }
}

async fn world() -> World {
    common::world_with(
        Guardrails::default(),
        Arc::new(LocalEventBus::new()),
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate"]}),
    )
    .await
}

impl World {
    fn dispatcher(&self, launcher: &Arc<FakeLauncher>) -> Dispatcher {
        Dispatcher::new(
            self.services.core.clone(),
            self.services.workers.clone(),
            launcher.clone(),
            Duration::from_millis(50),
        )
    }

    async fn run(&self, run: &RunId) -> tlao_domain::Run {
        self.services.runs.get(&self.admin, run).await.unwrap().run
    }
}

/// Polls `condition` until it holds; panics naming `what` after [`PATIENCE`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < end,
            "{what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_worker_whose_run_was_failed_as_worker_lost_is_stopped_and_its_slot_goes_to_the_next_run()
{
    let w = world().await;
    let runs = w.queue(2).await;
    let launcher = FakeLauncher::new(1);
    let dispatcher = w.dispatcher(&launcher);
    assert_eq!(dispatcher.dispatch().await.unwrap(), 1);
    assert_eq!(dispatcher.dispatch().await.unwrap(), 0, "the slot is taken");
    let reaper = Reaper::new(
        w.services.core.clone(),
        Duration::from_secs(30),
        Duration::from_secs(5),
    );

    // The worker hangs: no heartbeat for longer than the timeout.
    w.clock.advance_millis(31_000);
    assert_eq!(reaper.sweep().await.unwrap().lost, vec![runs[0].clone()]);

    eventually("the hung worker being stopped", || {
        launcher.stopped().iter().any(|(run, _)| *run == runs[0])
    })
    .await;
    eventually("the slot being free", || launcher.capacity() == 1).await;
    assert_eq!(dispatcher.dispatch().await.unwrap(), 1);
    assert_eq!(launcher.launched(), runs);
    let lost = w.run(&runs[0]).await;
    assert_eq!(lost.status, RunStatus::Failed);
    assert_eq!(lost.error.unwrap().code, RunErrorCode::WorkerLost);
}

#[tokio::test]
async fn a_worker_outliving_its_cancelled_run_is_stopped_after_the_grace_period_and_not_before() {
    let w = world().await;
    let runs = w.queue(1).await;
    let launcher = FakeLauncher::new(1);
    let grace = Duration::from_millis(400);
    let dispatcher = w.dispatcher(&launcher).with_stop_grace(grace);
    dispatcher.dispatch().await.unwrap();

    let cancelled_at = Instant::now();
    w.services.runs.cancel(&w.admin, &runs[0]).await.unwrap();

    eventually("the worker being stopped", || {
        !launcher.stopped().is_empty()
    })
    .await;
    let (run, at) = launcher.stopped()[0].clone();
    assert_eq!(run, runs[0]);
    assert!(
        at.duration_since(cancelled_at) >= grace,
        "stopped {:?} after the cancel, within the grace period",
        at.duration_since(cancelled_at)
    );
    assert_eq!(w.run(&runs[0]).await.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_worker_that_leaves_within_the_grace_period_is_not_stopped() {
    let w = world().await;
    let runs = w.queue(1).await;
    let launcher = FakeLauncher::new(1);
    let dispatcher = w
        .dispatcher(&launcher)
        .with_stop_grace(Duration::from_millis(300));
    dispatcher.dispatch().await.unwrap();

    w.services.runs.cancel(&w.admin, &runs[0]).await.unwrap();
    launcher.exit(&runs[0], "exit status 0");

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(launcher.stopped().is_empty(), "{:?}", launcher.stopped());
    assert_eq!(w.run(&runs[0]).await.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_worker_that_exits_mid_run_fails_its_run_as_worker_lost_at_once() {
    let w = world().await;
    let runs = w.queue(1).await;
    let launcher = FakeLauncher::new(1);
    w.dispatcher(&launcher).dispatch().await.unwrap();

    launcher.exit(&runs[0], "killed by signal 9");

    let end = Instant::now() + PATIENCE;
    while w.run(&runs[0]).await.status == RunStatus::Running {
        assert!(Instant::now() < end, "the run is still running");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let run = w.run(&runs[0]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.code, RunErrorCode::WorkerLost);
    assert!(
        error.message.contains("killed by signal 9"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn at_start_the_runs_of_workers_known_to_be_gone_fail_at_once_and_no_other() {
    let w = world().await;
    let runs = w.queue(2).await;
    let earlier = FakeLauncher::new(2);
    w.dispatcher(&earlier).dispatch().await.unwrap();
    let launches = earlier.launched.lock().unwrap().clone();
    // The second run completed before the crash; both records are left.
    w.services
        .workers
        .complete(
            &launches[1].run_id,
            &launches[1].lease_id,
            tlao_orchestrator::Completion::Completed,
            tlao_domain::Usage::Unmeasured,
        )
        .await
        .unwrap();
    let restarted = FakeLauncher::new(2);
    *restarted.gone.lock().unwrap() = launches.clone();

    let failed = w.dispatcher(&restarted).recover().await.unwrap();

    assert_eq!(failed, vec![runs[0].clone()]);
    let lost = w.run(&runs[0]).await;
    assert_eq!(lost.status, RunStatus::Failed);
    assert_eq!(lost.error.unwrap().code, RunErrorCode::WorkerLost);
    assert_eq!(w.run(&runs[1]).await.status, RunStatus::Completed);
}
