//! An `acp` executor end to end under `tlao dev`, sandboxed: the stand-in's
//! `kiro-cli acp --trust-all-tools` registered as a record, a `code.change` run that
//! completes, its `tool_call`, `plan`, `message` and `usage` events in
//! `GET /runs/{id}/events`, its usage on the run, and a `changes.patch` adding the file
//! the agent wrote.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{DevServer, PATIENCE, archives};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acp_agent_runs_a_change_with_tool_call_and_usage_events_and_a_patch() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let admin = server.admin().await;
    let ws = admin.create_workspace("acp").await;
    let (code, executor) = admin
        .post(
            "/executors",
            json!({
                "name": "kiro-acp",
                "kind": "acp",
                "taskTypes": ["code.change"],
                // The stand-in and its Python half are in tests/fixtures, first on the
                // server's PATH, which the sandbox lets agents read: no grant needed.
                "config": {"command": ["kiro-cli", "acp", "--trust-all-tools"]}
            }),
        )
        .await;
    assert_eq!(code, 201, "{executor}");
    assert_eq!(executor["kind"], "acp");
    assert_eq!(executor["config"]["permission"], "allow-edits");
    let (code, refused) = admin
        .post(
            "/executors",
            json!({"name": "bad-acp", "kind": "acp", "taskTypes": ["code.change"],
                   "config": {"command": [], "permission": "ask"}}),
        )
        .await;
    assert_eq!(code, 400, "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("config.command") && text.contains("config.permission"),
        "{text}"
    );

    let archive = archives::tar_gz(&[("README.md", b"# Sample\n".as_slice())]);
    let archive_id = admin.upload_archive(&ws, archive).await;
    let run_id = admin
        .start_run(
            json!({"workspaceId": ws, "taskType": "code.change",
                   "input": {"prompt": "change the docs", "archiveId": archive_id}}),
            Some("kiro-acp"),
        )
        .await;
    let run = admin.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["usage"]["kind"], "reported", "{run:#}");
    assert_eq!(run["usage"]["credits"], "0.5", "{run:#}");

    let events = admin.events(&run_id).await;
    let of_type = |kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|(name, _)| name == kind)
            .map(|(_, e)| e.clone())
            .collect()
    };
    let calls = of_type("tool_call");
    let done = calls
        .iter()
        .find(|e| e.to_string().contains("completed"))
        .unwrap_or_else(|| panic!("no completed tool_call in {events:?}"));
    let done = done.to_string();
    assert!(
        done.contains("tooluse_write_1") && done.contains("NEW_FILE.md") && done.contains("+3 -0"),
        "{done}"
    );
    assert!(!of_type("usage").is_empty(), "{events:?}");
    assert!(!of_type("plan").is_empty(), "{events:?}");
    assert!(
        of_type("message")
            .iter()
            .any(|e| e.to_string().contains("Created NEW_FILE.md.")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, e)| e.to_string().contains("the agent runs sandboxed")),
        "{events:?}"
    );

    let (patch, bytes) = admin.artifact_bytes(&run_id, "changes.patch").await;
    assert_eq!(patch["artifactType"], "patch");
    let patch = String::from_utf8(bytes).unwrap();
    assert!(
        patch.contains("+++ b/NEW_FILE.md") && patch.contains("+Created by the kiro-cli stand-in."),
        "{patch}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_acp_run_sends_session_cancel_and_ends_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    let server = DevServer::with_standin(&dir_path, &[]);
    let admin = server.admin().await;
    let ws = admin.create_workspace("acp-cancel").await;
    // Where the stand-in reports what it was sent and its pids: granted to it.
    let files = dir_path.join("agent-files");
    std::fs::create_dir(&files).unwrap();
    let log = files.join("acp.log");
    let pids = files.join("pids");
    let (code, executor) = admin
        .post(
            "/executors",
            json!({
                "name": "kiro-acp", "kind": "acp", "taskTypes": ["doc.write"],
                "config": {
                    "command": ["kiro-cli", "acp", "--trust-all-tools"],
                    "env": {"KIRO_STANDIN_ACP_LOG": log.to_str().unwrap(),
                            "KIRO_STANDIN_PIDS_FILE": pids.to_str().unwrap()}
                },
                "sandbox": {"writePaths": [files.to_str().unwrap()]}
            }),
        )
        .await;
    assert_eq!(code, 201, "{executor}");
    let run_id = admin
        .start_run(
            json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "hang"}}),
            Some("kiro-acp"),
        )
        .await;
    let (agent, sleep) = common::processes::await_standins(&pids, 1, PATIENCE).await[0];
    let (code, cancelled) = admin
        .post(&format!("/runs/{run_id}/cancel"), json!({}))
        .await;
    assert_eq!(code, 200, "{cancelled}");
    common::processes::await_death(agent, "the cancelled ACP agent", PATIENCE).await;
    common::processes::await_death(sleep, "the cancelled ACP agent's child", PATIENCE).await;
    let sent = std::fs::read_to_string(&log).unwrap();
    assert!(
        sent.lines().any(|l| l.contains("\"session/cancel\"")),
        "the agent was not sent session/cancel:\n{sent}"
    );
    assert_eq!(admin.run(&run_id).await["status"], "cancelled");
}
