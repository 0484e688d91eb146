//! An `acp` executor end to end under `tlao dev`, sandboxed: the stand-in's
//! `kiro-cli acp --trust-all-tools` registered as a record, a `code.change` run that
//! completes, its `tool_call`, `plan`, `message` and `usage` events in
//! `GET /runs/{id}/events`, its usage on the run, and a `changes.patch` adding the file
//! the agent wrote.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{DevServer, archives};
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
