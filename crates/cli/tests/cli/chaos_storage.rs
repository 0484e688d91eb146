//! Chaos: storage that fails under a running `tlao dev` (decorators behind the ports,
//! switched from outside through `faults.dir`). A full or read-only store answers
//! `503` problem+json naming the fault, `/readyz` fails while it lasts, nothing is half
//! written, and the server recovers by itself once the fault is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, DevServer};
use serde_json::{Value, json};

async fn readyz(url: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `/readyz` answers `status` (the fault watcher polls every 100 ms).
async fn await_readyz(url: &str, status: u16) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (now, body) = readyz(url).await;
        if now == status {
            return body;
        }
        assert!(Instant::now() < end, "/readyz stayed {now}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn new_task(api: &Api) -> String {
    let (_, workspaces) = api.get("/workspaces").await;
    let ws = workspaces["items"][0]["workspaceId"].clone();
    let (status, task) = api
        .post(
            "/tasks",
            json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "docs"}}),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    task["taskId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_blob_store_is_a_503_naming_it_until_it_has_room_again() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults");
    std::fs::create_dir(&faults).unwrap();
    let faults_env = faults.display().to_string();
    let server = DevServer::with_standin(dir.path(), &[("TLAO_FAULTS__DIR", &faults_env)]);
    let api = server.admin().await;
    let task = new_task(&api).await;
    let (_, workspaces) = api.get("/workspaces").await;
    let ws = workspaces["items"][0]["workspaceId"].clone();

    std::fs::write(faults.join("blobs"), "full").unwrap();
    let not_ready = await_readyz(&server.url, 503).await;
    // A task's TaskSpec is stored in the blob store with it (a run of it stores none).
    let (status, problem) = api
        .post(
            "/tasks",
            json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "more docs"}}),
        )
        .await;

    assert_eq!(
        not_ready["detail"],
        "not ready: the blob store is out of space"
    );
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["detail"],
        "storage is unavailable: the blob store is out of space"
    );
    assert!(
        problem["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    // A run of an existing task stores no blob when queued: it is taken, and it ends.
    // (The injected fault covers the server's own writes, not the uploads its presigned
    // URLs take, so here the run's artifacts still land.)
    let (status, queued) = api.post("/runs", json!({"taskId": task})).await;
    assert_eq!(status, 201, "{queued}");
    api.await_final(queued["runId"].as_str().unwrap()).await;

    std::fs::remove_file(faults.join("blobs")).unwrap();
    await_readyz(&server.url, 200).await;
    let again = new_task(&api).await;
    for task in [task, again] {
        let (status, run) = api.post("/runs", json!({"taskId": task})).await;
        assert_eq!(status, 201, "{run}");
        let run = api.await_final(run["runId"].as_str().unwrap()).await;
        assert_eq!(run["status"], "completed", "{run:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_table_is_a_503_naming_it_and_reads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults");
    std::fs::create_dir(&faults).unwrap();
    let faults_env = faults.display().to_string();
    let server = DevServer::with_standin(dir.path(), &[("TLAO_FAULTS__DIR", &faults_env)]);
    let api = server.admin().await;
    let task = new_task(&api).await;

    std::fs::write(faults.join("table"), "read-only").unwrap();
    let not_ready = await_readyz(&server.url, 503).await;
    let (status, problem) = api.post("/runs", json!({"taskId": task})).await;
    let (read, _) = api.get(&format!("/tasks/{task}")).await;

    assert_eq!(not_ready["detail"], "not ready: the table is read-only");
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["detail"],
        "storage is unavailable: the table is read-only"
    );
    assert_eq!(read, 200, "reads go on");
    std::fs::remove_file(faults.join("table")).unwrap();
    await_readyz(&server.url, 200).await;
    let (status, _) = api.post("/runs", json!({"taskId": task})).await;
    assert_eq!(status, 201);
}
