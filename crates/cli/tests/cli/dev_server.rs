//! `tlao dev` as a user runs it: first start on an empty data dir, restart on the same
//! data dir, and Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::DevServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_creates_an_admin_a_workspace_the_executors_and_a_cli_login() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("data"), &dir.path().join("config"), &[]);

    let admin = server.admin().await;
    let (status, workspaces) = admin.get("/workspaces").await;
    assert_eq!(status, 200);
    assert_eq!(
        workspaces["items"].as_array().map(Vec::len),
        Some(1),
        "{workspaces}"
    );
    let (_, executors) = admin.get("/executors").await;
    let names: Vec<&str> = executors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["kiro", "shell"]);

    let credentials: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(server.config_dir.join("credentials.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        credentials["profiles"]["default"]["apiUrl"],
        server.url.as_str()
    );
    assert_eq!(
        credentials["profiles"]["default"]["apiKey"],
        server.admin_key().as_str()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&server.data_dir.join("admin.key")), 0o600);
        assert_eq!(mode(&server.config_dir.join("credentials.json")), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_dir_keeps_every_workspace_task_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut first = DevServer::start(&data, &config, &[]);
    let admin = first.admin().await;
    let (status, ws) = admin.post("/workspaces", json!({"name": "kept"})).await;
    assert_eq!(status, 201, "{ws}");
    let ws_id = ws["workspaceId"].as_str().unwrap().to_owned();
    let (status, task) = admin
        .post(
            "/tasks",
            json!({"workspaceId": ws_id, "taskType": "doc.write", "input": {"prompt": "write the docs"}}),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    let task_id = task["taskId"].as_str().unwrap().to_owned();
    let (status, run) = admin.post("/runs", json!({"taskId": task_id})).await;
    assert_eq!(status, 201, "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let key_before = first.admin_key();

    assert_eq!(first.interrupt(), Some(0), "Ctrl-C stops cleanly");
    assert!(first.printed().iter().any(|line| line == "Stopped."));

    let second = DevServer::start(&data, &config, &[]);
    assert_eq!(
        second.admin_key(),
        key_before,
        "the same administrator key works after a restart"
    );
    let admin = second.admin().await;
    let (status, _) = admin.get(&format!("/workspaces/{ws_id}")).await;
    assert_eq!(status, 200);
    let (status, stored_task) = admin.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(stored_task["spec"]["input"]["prompt"], "write the docs");
    let (status, stored_run) = admin.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(stored_run["taskId"], task_id.as_str());
    let (_, workspaces) = admin.get("/workspaces").await;
    assert_eq!(
        workspaces["items"].as_array().map(Vec::len),
        Some(2),
        "default + kept, no duplicate default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_admin_key_file_is_replaced_by_a_new_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut first = DevServer::start(&data, &config, &[]);
    let old_key = first.admin_key();
    first.interrupt();
    std::fs::remove_file(data.join("admin.key")).unwrap();

    let second = DevServer::start(&data, &config, &[]);
    let new_key = second.admin_key();
    assert_ne!(new_key, old_key);
    let admin = second.admin().await;
    let (status, _) = admin.get("/workspaces").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_admin_key_file_is_replaced_by_a_new_working_key_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut first = DevServer::start(&data, &config, &[]);
    let old_key = first.admin_key();
    let admin = first.admin().await;
    let (_, me) = admin
        .post("/auth/token", serde_json::json!({"apiKey": old_key}))
        .await;
    let user = me["userId"].as_str().unwrap().to_owned();
    let (_, keys) = admin.get(&format!("/users/{user}/keys")).await;
    let key_id = keys["items"][0]["keyId"].as_str().unwrap().to_owned();
    let (status, _) = admin.delete(&format!("/users/{user}/keys/{key_id}")).await;
    assert_eq!(status, 204);
    first.interrupt();

    let second = DevServer::start(&data, &config, &[]);
    let new_key = second.admin_key();
    assert_ne!(new_key, old_key);
    let admin = second.admin().await;
    let (status, _) = admin.get("/workspaces").await;
    assert_eq!(status, 200);
}
