//! Workspaces (create, list, read, membership) and the executor registry (list for
//! everyone; register and remove for administrators).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, error_fields, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_workspace_returns_201_and_lists_it_for_its_owner_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let response = app
        .post("/workspaces", &alice.token, &json!({"name": "  second  "}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], "second");
    assert!(created["createdAt"].is_string());
    let alices: Value = app.get_json("/workspaces", &alice.token).await;
    let ids: Vec<&str> = alices["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workspaceId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            alice.workspace_id.as_str(),
            created["workspaceId"].as_str().unwrap()
        ]
    );
    let bobs: Value = app.get_json("/workspaces", &bob.token).await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_workspace_with_a_blank_name_is_400_on_name() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post("/workspaces", &alice.token, &json!({"name": "   "}))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["name"]);
}

#[tokio::test]
async fn reading_a_workspace_works_for_members_is_403_for_others_and_404_when_unknown() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let path = format!("/workspaces/{}", alice.workspace_id);

    let own = app.get(&path, &alice.token).send().await.unwrap();
    let other = app.get(&path, &bob.token).send().await.unwrap();
    let unknown = app
        .get("/workspaces/ws_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .send()
        .await
        .unwrap();

    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["workspaceId"], alice.workspace_id.as_str());
    problem(other, StatusCode::FORBIDDEN).await;
    problem(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn every_user_can_list_the_executors() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app.get("/executors", &alice.token).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["items"],
        json!([{
            "name": "kiro",
            "kind": "kiro",
            "taskTypes": ["spec.generate", "code.change", "doc.write", "deploy.run"],
            "config": {"binary": "kiro-cli", "harness": "v2", "preflight": false},
            "sandbox": {"readPaths": [], "writePaths": [], "env": [], "network": "any"}
        }])
    );
}

#[tokio::test]
async fn a_record_grants_its_agent_paths_variables_and_ports_as_data() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let grants = json!({
        "readPaths": ["~/.claude", "/opt/models"],
        "writePaths": ["~/.cache/claude"],
        "env": ["ANTHROPIC_API_KEY", "CLAUDE_*"],
        "network": {"tcpPorts": [443]}
    });
    let record = json!({
        "name": "claude",
        "kind": "command",
        "taskTypes": ["code.change"],
        "config": {"command": ["claude", "-p", "{prompt}"]},
        "sandbox": grants
    });
    let registered = app
        .post("/executors", &app.admin.token, &record)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["sandbox"], grants);

    // Every user sees what each agent is granted.
    let listed: Value = app.get_json("/executors", &alice.token).await;
    let claude = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "claude")
        .unwrap();
    assert_eq!(claude["sandbox"], grants);
    let none: Value = json!({"name": "net", "kind": "kiro", "taskTypes": ["doc.write"], "sandbox": {"network": "none"}});
    let registered = app
        .post("/executors", &app.admin.token, &none)
        .send()
        .await
        .unwrap();
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(
        registered["sandbox"],
        json!({"readPaths": [], "writePaths": [], "env": [], "network": "none"})
    );
}

#[tokio::test]
async fn grants_that_are_too_broad_or_reach_the_systems_own_variables_are_400_each_named() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/executors",
            &app.admin.token,
            &json!({
                "name": "greedy",
                "kind": "kiro",
                "taskTypes": ["doc.write"],
                "sandbox": {
                    "readPaths": ["/", "relative/path"],
                    "writePaths": ["~", "/data/../etc"],
                    "env": ["TLAO_AUTH__SECRET", "TL*"],
                    "network": {"tcpPorts": [0]},
                    "devices": ["/dev/kvm"]
                }
            }),
        )
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields = error_fields(&body);
    for field in [
        "sandbox.readPaths[0]",
        "sandbox.readPaths[1]",
        "sandbox.writePaths[0]",
        "sandbox.writePaths[1]",
        "sandbox.env[0]",
        "sandbox.env[1]",
        "sandbox.network.tcpPorts[0]",
        "sandbox.devices",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field}: {body}");
    }
    let listed: Value = app.get_json("/executors", &app.admin.token).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "nothing registered"
    );
}

#[tokio::test]
async fn an_administrator_registers_and_removes_an_executor() {
    let app = TestApp::spawn().await;
    let record = json!({
        "name": "claude",
        "kind": "command",
        "taskTypes": ["code.change"],
        "config": {"command": ["claude", "-p", "{prompt}"], "promptVia": "arg"}
    });

    let registered = app
        .post("/executors", &app.admin.token, &record)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["name"], "claude");
    assert_eq!(registered["kind"], "command");
    assert_eq!(registered["config"]["command"][2], "{prompt}");
    let again = app
        .post("/executors", &app.admin.token, &record)
        .send()
        .await
        .unwrap();
    problem(again, StatusCode::CONFLICT).await;

    let removed = app
        .client
        .delete(app.url("/executors/claude"))
        .bearer_auth(&app.admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let gone = app
        .client
        .delete(app.url("/executors/claude"))
        .bearer_auth(&app.admin.token)
        .send()
        .await
        .unwrap();
    problem(gone, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn registering_an_invalid_executor_lists_every_invalid_field() {
    let app = TestApp::spawn().await;

    let response = app
        .post(
            "/executors",
            &app.admin.token,
            &json!({"name": "Bad Name", "kind": "robot", "taskTypes": []}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields = error_fields(&body);
    for field in ["name", "kind", "taskTypes"] {
        assert!(fields.contains(&field.to_owned()), "{field}: {body}");
    }
}

#[tokio::test]
async fn registering_or_removing_an_executor_is_for_administrators_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let register = app
        .post(
            "/executors",
            &alice.token,
            &json!({"name": "mine", "kind": "kiro", "taskTypes": ["doc.write"], "config": {}}),
        )
        .send()
        .await
        .unwrap();
    let remove = app
        .client
        .delete(app.url("/executors/kiro"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();

    problem(register, StatusCode::FORBIDDEN).await;
    problem(remove, StatusCode::FORBIDDEN).await;
}
