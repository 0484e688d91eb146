//! `POST /admin/maintenance`: one pass of the background loops' work, for servers whose
//! loops are off (AWS Lambda, driven by a schedule). Only an administrator or the
//! maintenance token may call it; a pass expires runs queued too long, then starts
//! workers for queued runs through the launcher; a second pass right after does nothing
//! more. On SQLite, as `tlao serve` stores locally.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tempfile::TempDir;
use tlao_adapters_local::SqliteTable;
use tlao_domain::{Guardrails, RunId};
use tlao_ports::{Launch, LaunchError, RunLauncher, StopError, Table, WorkerExit};

use common::{Options, TestApp, WORKER_TOKEN, problem};

/// The maintenance token of these apps.
const MAINTENANCE_TOKEN: &str = "maintenance-token-of-at-least-32-bytes";

/// How long runs may wait queued in these apps.
const MAX_QUEUE_SECONDS: u64 = 60;

/// Records what it was asked to launch; its workers never exit by themselves.
#[derive(Default)]
struct RecordingLauncher {
    launched: Mutex<Vec<RunId>>,
}

#[async_trait]
impl RunLauncher for RecordingLauncher {
    fn capacity(&self) -> usize {
        4usize.saturating_sub(self.launched.lock().unwrap().len())
    }

    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError> {
        self.launched.lock().unwrap().push(launch.run_id.clone());
        Ok(Box::pin(std::future::pending()))
    }

    async fn stop(&self, _: &RunId) -> Result<bool, StopError> {
        Ok(false)
    }

    async fn stop_all(&self) -> Result<usize, StopError> {
        Ok(0)
    }
}

/// An app on a SQLite table in `dir`, with the maintenance token, a short queue timeout
/// and `launcher` (none: maintenance only reaps).
async fn app_on_sqlite(dir: &TempDir, launcher: Option<Arc<dyn RunLauncher>>) -> TestApp {
    app_on_sqlite_with(dir, launcher, false).await
}

/// [`app_on_sqlite`], dispatching on create or not (a server with its loops off does).
async fn app_on_sqlite_with(
    dir: &TempDir,
    launcher: Option<Arc<dyn RunLauncher>>,
    dispatch_on_create: bool,
) -> TestApp {
    let table: Arc<dyn Table> = Arc::new(
        SqliteTable::open(&dir.path().join("tlao.db"))
            .await
            .unwrap(),
    );
    TestApp::spawn_with(Options {
        guardrails: Guardrails {
            max_queue_seconds: MAX_QUEUE_SECONDS,
            ..Guardrails::default()
        },
        table: Some(table),
        launcher,
        maintenance_token: Some(MAINTENANCE_TOKEN.into()),
        dispatch_on_create,
        ..Options::default()
    })
    .await
}

async fn maintain(app: &TestApp, token: &str) -> Value {
    let response = app
        .client
        .post(app.url("/admin/maintenance"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn maintenance_without_a_token_is_401_with_a_bearer_challenge() {
    let dir = TempDir::new().unwrap();
    let app = app_on_sqlite(&dir, None).await;

    let response = app
        .client
        .post(app.url("/admin/maintenance"))
        .send()
        .await
        .unwrap();

    assert!(
        response
            .headers()
            .get(WWW_AUTHENTICATE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
    );
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(body["requestId"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn maintenance_with_the_worker_token_or_a_wrong_token_is_401() {
    let dir = TempDir::new().unwrap();
    let app = app_on_sqlite(&dir, None).await;

    for token in [WORKER_TOKEN, "maintenance-token-of-at-least-32-bytez"] {
        let response = app
            .client
            .post(app.url("/admin/maintenance"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn maintenance_by_a_user_who_is_not_an_administrator_is_403() {
    let dir = TempDir::new().unwrap();
    let app = app_on_sqlite(&dir, None).await;
    let alice = app.user("alice").await;

    let response = app
        .client
        .post(app.url("/admin/maintenance"))
        .header(AUTHORIZATION, format!("Bearer {}", alice.token))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::FORBIDDEN).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("only an administrator or the maintenance token"),
        "{body}"
    );
}

#[tokio::test]
async fn an_administrator_and_the_maintenance_token_may_both_run_a_pass() {
    let dir = TempDir::new().unwrap();
    let app = app_on_sqlite(&dir, None).await;

    let by_admin = maintain(&app, &app.admin.token).await;
    let by_token = maintain(&app, MAINTENANCE_TOKEN).await;

    let nothing = json!({"timedOut": 0, "workerLost": 0, "queueExpired": 0, "dispatched": 0, "launcher": false});
    assert_eq!(by_admin, nothing);
    assert_eq!(by_token, nothing);
}

#[tokio::test]
async fn a_pass_expires_a_run_queued_past_the_setting_and_a_second_pass_does_nothing_more() {
    let dir = TempDir::new().unwrap();
    let app = app_on_sqlite(&dir, None).await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let young = maintain(&app, MAINTENANCE_TOKEN).await;
    assert_eq!(
        young["queueExpired"], 0,
        "the run is within its time: {young}"
    );

    app.clock
        .advance_millis((MAX_QUEUE_SECONDS as i64 + 1) * 1000);
    let first = maintain(&app, MAINTENANCE_TOKEN).await;
    let second = maintain(&app, MAINTENANCE_TOKEN).await;

    assert_eq!(first["queueExpired"], 1, "{first}");
    assert_eq!(second["queueExpired"], 0, "{second}");
    let run = app.get_json(&format!("/runs/{run_id}"), &alice.token).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "queue_timeout");
}

#[tokio::test]
async fn a_pass_launches_a_queued_run_once_and_never_one_it_expired() {
    let dir = TempDir::new().unwrap();
    let launcher = Arc::new(RecordingLauncher::default());
    let app = app_on_sqlite(&dir, Some(launcher.clone())).await;
    let alice = app.user("alice").await;
    let old = app.run(&alice).await;
    app.clock
        .advance_millis((MAX_QUEUE_SECONDS as i64 + 1) * 1000);
    let fresh = app.run(&alice).await;

    let first = maintain(&app, MAINTENANCE_TOKEN).await;
    let second = maintain(&app, MAINTENANCE_TOKEN).await;

    assert_eq!(
        first,
        json!({"timedOut": 0, "workerLost": 0, "queueExpired": 1, "dispatched": 1, "launcher": true})
    );
    assert_eq!(
        second,
        json!({"timedOut": 0, "workerLost": 0, "queueExpired": 0, "dispatched": 0, "launcher": true})
    );
    let launched: Vec<String> = launcher
        .launched
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(launched, vec![fresh.clone()]);
    let fresh_run = app.get_json(&format!("/runs/{fresh}"), &alice.token).await;
    assert_eq!(fresh_run["status"], "running");
    let old_run = app.get_json(&format!("/runs/{old}"), &alice.token).await;
    assert_eq!(old_run["error"]["code"], "queue_timeout");
}

#[tokio::test]
async fn a_pass_fails_a_running_run_whose_worker_went_silent() {
    let dir = TempDir::new().unwrap();
    let launcher = Arc::new(RecordingLauncher::default());
    let app = app_on_sqlite(&dir, Some(launcher)).await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    assert_eq!(maintain(&app, MAINTENANCE_TOKEN).await["dispatched"], 1);

    // Past the heartbeat timeout (30 s), not the run's deadline (480 s).
    app.clock.advance_millis(31_000);
    let first = maintain(&app, MAINTENANCE_TOKEN).await;
    let second = maintain(&app, MAINTENANCE_TOKEN).await;

    assert_eq!(first["workerLost"], 1, "{first}");
    assert_eq!(second["workerLost"], 0, "{second}");
    let run = app.get_json(&format!("/runs/{run_id}"), &alice.token).await;
    assert_eq!(run["error"]["code"], "worker_lost");
}

#[tokio::test]
async fn with_the_loops_off_a_new_run_gets_its_worker_before_the_answer() {
    let dir = TempDir::new().unwrap();
    let launcher = Arc::new(RecordingLauncher::default());
    let app = app_on_sqlite_with(&dir, Some(launcher.clone()), true).await;
    let alice = app.user("alice").await;

    let run_id = app.run(&alice).await;

    let launched: Vec<String> = launcher
        .launched
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(launched, vec![run_id.clone()]);
    let run = app.get_json(&format!("/runs/{run_id}"), &alice.token).await;
    assert_eq!(run["status"], "running");
    let pass = maintain(&app, MAINTENANCE_TOKEN).await;
    assert_eq!(pass["dispatched"], 0, "{pass}");
}

#[tokio::test]
async fn with_the_loops_on_a_new_run_waits_for_the_dispatcher() {
    let dir = TempDir::new().unwrap();
    let launcher = Arc::new(RecordingLauncher::default());
    let app = app_on_sqlite(&dir, Some(launcher.clone())).await;
    let alice = app.user("alice").await;

    let run_id = app.run(&alice).await;

    assert!(launcher.launched.lock().unwrap().is_empty());
    let run = app.get_json(&format!("/runs/{run_id}"), &alice.token).await;
    assert_eq!(run["status"], "queued");
}
