//! End to end on the AWS adapters: `tlao admin init-aws`, `tlao admin bootstrap`,
//! `tlao serve` on DynamoDB + S3 (moto on loopback, from `TLAO_TEST_AWS_ENDPOINT`), and a
//! `tlao worker --once` running the stand-in `kiro-cli`; everything observed through the
//! HTTP API, the artifact downloaded through a real S3 presigned URL that moto serves.
//!
//! Without the emulator the test fails with instructions: `./scripts/test` starts it, or
//! `eval "$(scripts/moto start)"` by hand.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::serve::{Running, serve, serve_ready_for_plans, succeed, tlao};
use common::{Api, path_with_standin};
use serde_json::{Value, json};

/// The emulator's endpoint; fails with instructions when it is not set.
fn moto() -> String {
    std::env::var("TLAO_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect(
            "TLAO_TEST_AWS_ENDPOINT is not set: this test runs tlao on moto's server; run \
             ./scripts/test, or `eval \"$(scripts/moto start)\"` in the repository root and \
             run the tests in that shell",
        )
}

/// The environment of every `tlao` process of the test: DynamoDB and S3 on moto, a
/// table and a bucket of its own.
fn aws_env(endpoint: &str, name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TLAO_STORAGE__KIND", "dynamodb".into()),
        ("TLAO_STORAGE__TABLE", name.into()),
        ("TLAO_STORAGE__ENDPOINT", endpoint.into()),
        ("TLAO_STORAGE__REGION", "us-east-1".into()),
        ("TLAO_BLOBS__KIND", "s3".into()),
        ("TLAO_BLOBS__BUCKET", name.into()),
        ("TLAO_BLOBS__ENDPOINT", endpoint.into()),
        ("TLAO_BLOBS__REGION", "us-east-1".into()),
        ("TLAO_LOG", "warn".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_runs_on_dynamodb_and_s3_and_its_artifact_downloads_from_a_presigned_s3_url() {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlao-e2e-{}-{}", std::process::id(), rand_suffix());
    let worker_token = "e2e-worker-token-0123456789abcdef".to_owned();
    let mut env = aws_env(&endpoint, &name);
    env.push(("TLAO_SERVER__ADDR", "127.0.0.1:0".into()));
    env.push((
        "TLAO_AUTH__SECRET",
        "an-e2e-signing-secret-of-at-least-32-bytes".into(),
    ));
    env.push(("TLAO_WORKER_TOKEN", worker_token.clone()));

    // The explicit admin steps, each twice: they are idempotent.
    let first = succeed(
        tlao(&env, dir.path()).args(["admin", "init-aws"]),
        "init-aws",
    );
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains(&format!("table {name}: created")), "{said}");
    assert!(said.contains(&format!("bucket {name}: created")), "{said}");
    let again = succeed(
        tlao(&env, dir.path()).args(["admin", "init-aws"]),
        "init-aws",
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("already there"));

    let boot = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap"]),
        "bootstrap",
    );
    let admin_key = String::from_utf8(boot.stdout).unwrap().trim().to_owned();
    assert!(!admin_key.is_empty(), "bootstrap printed no key");
    let again = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap"]),
        "bootstrap",
    );
    assert!(again.stdout.is_empty(), "a second bootstrap printed a key");

    let (_server, url) = serve(&env, dir.path());
    let admin = Api::login(&url, &admin_key).await;

    // The bootstrap made the default workspace and executors, once.
    let (status, workspaces) = admin.get("/workspaces").await;
    assert_eq!(status, 200, "{workspaces}");
    let names: Vec<&str> = workspaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ws| ws["name"].as_str())
        .collect();
    assert_eq!(names, ["default"], "{workspaces}");
    let (status, executors) = admin.get("/executors").await;
    assert_eq!(status, 200, "{executors}");
    let mut names: Vec<&str> = executors["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["kiro", "shell"], "{executors}");
    let workspace = admin.create_workspace("aws-e2e").await;

    // A `--once` worker asked to wait 60 s waits through more than one 30 s long-poll
    // (issue 19, item 2): it is started with nothing to lease, and the run is created
    // only after its first long-poll has come back empty.
    let worker = tlao(&env, dir.path())
        .args([
            "worker",
            "--once",
            "--wait",
            "60",
            "--api-url",
            &url,
            "--work-root",
        ])
        .arg(dir.path().join("work"))
        .env("PATH", path_with_standin())
        .env("TLAO_WORKER_TOKEN", &worker_token)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tlao worker starts");
    let mut worker = Running(worker);
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "the --once --wait 60 worker gave up after one empty long-poll"
    );
    let run_id = admin
        .run_prompt(&workspace, "spec.generate", "make a plan", None)
        .await;

    let run = admin.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = worker.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the --once worker did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "the worker exited with {exit}");

    // The logs: the stored events replay, ending with the terminal event.
    let events = reqwest::Client::new()
        .get(format!("{url}/runs/{run_id}/events"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        events.contains("Wrote "),
        "no agent output in the logs: {events}"
    );
    assert!(events.contains("completed"), "no terminal event: {events}");

    // The artifact, through a presigned URL that S3 (moto) serves, not the API.
    let artifacts = admin.artifacts(&run_id).await;
    let plan = artifacts
        .iter()
        .find(|a| a["name"] == "plan.json")
        .unwrap_or_else(|| panic!("no plan.json: {artifacts:#?}"));
    let (status, artifact) = admin
        .get(&format!(
            "/artifacts/{}",
            plan["artifactId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{artifact}");
    let download = artifact["downloadUrl"].as_str().expect("a download URL");
    assert!(
        download.starts_with(&format!("{endpoint}/{name}/"))
            && download.contains("X-Amz-Signature="),
        "not an S3 presigned URL: {download}"
    );
    let (status, bytes) = admin.download(download).await;
    assert_eq!(status, 200, "downloading {download}");
    let plan: Value = serde_json::from_slice(&bytes).expect("the plan is JSON");
    assert_eq!(plan["title"], "Stand-in plan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_a_run_nobody_leases_fails_as_queue_timeout_and_gives_back_its_quota() {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlao-queue-{}-{}", std::process::id(), rand_suffix());
    let mut env = aws_env(&endpoint, &name);
    env.push(("TLAO_SERVER__ADDR", "127.0.0.1:0".into()));
    env.push((
        "TLAO_AUTH__SECRET",
        "an-e2e-signing-secret-of-at-least-32-bytes".into(),
    ));
    env.push((
        "TLAO_WORKER_TOKEN",
        "e2e-worker-token-0123456789abcdef".into(),
    ));
    succeed(
        tlao(&env, dir.path()).args(["admin", "init-aws"]),
        "init-aws",
    );

    common::serve::a_run_nobody_leases_expires_and_gives_back_its_quota(&env, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_with_a_key_secret_stores_the_key_there_and_prints_none() {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlao-secret-{}-{}", std::process::id(), rand_suffix());
    let mut env = aws_env(&endpoint, &name);
    env.push(("TLAO_SERVER__ADDR", "127.0.0.1:0".into()));
    env.push((
        "TLAO_AUTH__SECRET",
        "an-e2e-signing-secret-of-at-least-32-bytes".into(),
    ));
    succeed(
        tlao(&env, dir.path()).args(["admin", "init-aws"]),
        "init-aws",
    );
    let created = secretsmanager(
        &endpoint,
        "CreateSecret",
        json!({"Name": name, "SecretString": "placeholder"}),
    )
    .await;
    let arn = created["ARN"].as_str().expect("an ARN").to_owned();

    let boot = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap", "--key-secret", &arn]),
        "bootstrap",
    );
    let again = succeed(
        tlao(&env, dir.path()).args(["admin", "bootstrap", "--key-secret", &arn]),
        "bootstrap",
    );

    assert!(boot.stdout.is_empty(), "the key was printed");
    assert!(again.stdout.is_empty(), "a second bootstrap printed a key");
    let stored = secretsmanager(&endpoint, "GetSecretValue", json!({"SecretId": arn})).await;
    let key = stored["SecretString"].as_str().expect("a value").to_owned();
    assert!(key.starts_with("tlao_"), "not an API key: {key:?}");
    let (_server, url) = serve(&env, dir.path());
    let admin = Api::login(&url, &key).await;
    let (status, workspaces) = admin.get("/workspaces").await;
    assert_eq!(status, 200, "{workspaces}");
    assert_eq!(workspaces["items"][0]["name"], "default", "{workspaces}");
    let refused = tlao(&env, dir.path())
        .args(["admin", "bootstrap", "--key-secret", "not a secret"])
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a bad secret id is a usage error"
    );
}

/// One call of moto's Secrets Manager JSON API, made by hand like [`ecs`]; panics on an
/// error answer.
async fn secretsmanager(endpoint: &str, action: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=host, Signature=unchecked",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("secretsmanager.{action}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(
        status.is_success(),
        "Secrets Manager {action}: {status} {answer}"
    );
    answer
}

/// A few random hex digits, so reruns against one emulator do not collide.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}")
}

/// One call of moto's ECS JSON API, made by hand (moto checks no signature), so the test
/// needs no ECS SDK; panics on an error answer.
async fn ecs(endpoint: &str, action: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ecs/aws4_request, \
             SignedHeaders=host, Signature=unchecked",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerServiceV20141113.{action}"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "ECS {action}: {status} {answer}");
    answer
}

/// The first `<tag>` value of moto's EC2 answer to `action` (the default VPC's subnet
/// or security group, which moto checks a task's network configuration against).
async fn ec2_first(endpoint: &str, action: &str, tag: &str) -> String {
    let body = reqwest::Client::new()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=unchecked",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action={action}&Version=2016-11-15"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
        + open.len();
    let end = start + body[start..].find('<').unwrap();
    body[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_ecs_launcher_starts_one_fargate_task_per_run_told_its_run_and_lease() {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlao-ecs-{}-{}", std::process::id(), rand_suffix());
    ecs(&endpoint, "CreateCluster", json!({"clusterName": name})).await;
    ecs(
        &endpoint,
        "RegisterTaskDefinition",
        json!({
            "family": name,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [
                {"name": "worker", "image": "tlao-worker:test", "memory": 512, "essential": true}
            ]
        }),
    )
    .await;
    let subnet = ec2_first(&endpoint, "DescribeSubnets", "subnetId").await;
    let group = ec2_first(&endpoint, "DescribeSecurityGroups", "groupId").await;
    // Local storage: only the launcher is on (moto's) AWS.
    let env: Vec<(&str, String)> = vec![
        ("TLAO_LOG", "warn".into()),
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        (
            "TLAO_AUTH__SECRET",
            "an-e2e-signing-secret-of-at-least-32-bytes".into(),
        ),
        (
            "TLAO_WORKER_TOKEN",
            "e2e-worker-token-0123456789abcdef".into(),
        ),
        ("TLAO_LAUNCHER__KIND", "ecs".into()),
        ("TLAO_LAUNCHER__ECS__CLUSTER", name.clone()),
        ("TLAO_LAUNCHER__ECS__TASK_DEFINITION", name.clone()),
        ("TLAO_LAUNCHER__ECS__SUBNETS", subnet),
        ("TLAO_LAUNCHER__ECS__SECURITY_GROUPS", group),
        (
            "TLAO_LAUNCHER__ECS__API_URL",
            "http://api.internal:7411".into(),
        ),
        ("TLAO_LAUNCHER__ECS__ENDPOINT", endpoint.clone()),
        ("TLAO_LAUNCHER__ECS__REGION", "us-east-1".into()),
    ];
    let (_server, admin, workspace) = serve_ready_for_plans(&env, dir.path(), "ecs-e2e").await;

    let run_id = admin
        .run_prompt(&workspace, "spec.generate", "make a plan", None)
        .await;

    // The dispatcher leases the run and starts its task.
    let deadline = Instant::now() + Duration::from_secs(30);
    let task_arns = loop {
        let listed = ecs(&endpoint, "ListTasks", json!({"cluster": name})).await;
        let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
        if !arns.is_empty() {
            break arns;
        }
        assert!(
            Instant::now() < deadline,
            "no task was started for {run_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(task_arns.len(), 1, "{task_arns:?}");
    let described = ecs(
        &endpoint,
        "DescribeTasks",
        json!({"cluster": name, "tasks": task_arns}),
    )
    .await;
    let task = &described["tasks"][0];
    assert_eq!(task["launchType"], "FARGATE", "{task:#}");
    let container = &task["overrides"]["containerOverrides"][0];
    assert_eq!(container["name"], "worker");
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part.as_str().unwrap())
        .collect();
    assert_eq!(
        command[..3],
        ["worker", "--run", run_id.as_str()],
        "{command:?}"
    );
    assert_eq!(command[3], "--lease");
    assert!(command[4].starts_with("lease_"), "{command:?}");
    // The tasks learn where the API is; the worker token never travels in overrides.
    assert_eq!(
        container["environment"],
        json!([{"name": "TLAO_API_URL", "value": "http://api.internal:7411"}])
    );
    let (status, run) = admin.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        run["status"], "running",
        "the dispatcher leased it: {run:#}"
    );
}

/// `POST /admin/maintenance` with the maintenance token, as the serverless profile's
/// schedule calls it; the report.
async fn maintain(url: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{url}/admin/maintenance"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "maintenance refused");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_serve_on_dynamodb_dispatches_on_create_and_expires_only_when_maintenance_is_called()
 {
    let endpoint = moto();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tlao-sls-{}-{}", std::process::id(), rand_suffix());
    ecs(&endpoint, "CreateCluster", json!({"clusterName": name})).await;
    ecs(
        &endpoint,
        "RegisterTaskDefinition",
        json!({
            "family": name,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{
                "name": "worker", "image": "tlao-worker:test", "memory": 512, "essential": true,
                "environment": [{"name": "TLAO_API_URL", "value": "https://fn.lambda-url.example"}]
            }]
        }),
    )
    .await;
    let subnet = ec2_first(&endpoint, "DescribeSubnets", "subnetId").await;
    let group = ec2_first(&endpoint, "DescribeSecurityGroups", "groupId").await;
    let token = "e2e-maintenance-token-0123456789abcdef";
    // As deploy/aws/serverless.yaml configures the function.
    let mut env = aws_env(&endpoint, &name);
    env.extend([
        ("TLAO_SERVER__ADDR", "127.0.0.1:0".into()),
        ("TLAO_SERVER__BACKGROUND", "false".into()),
        ("TLAO_MAINTENANCE_TOKEN", token.into()),
        (
            "TLAO_AUTH__SECRET",
            "an-e2e-signing-secret-of-at-least-32-bytes".into(),
        ),
        (
            "TLAO_WORKER_TOKEN",
            "e2e-worker-token-0123456789abcdef".into(),
        ),
        ("TLAO_GUARDRAILS__MAX_QUEUE_SECONDS", "4".into()),
        ("TLAO_LAUNCHER__KIND", "ecs".into()),
        ("TLAO_LAUNCHER__ECS__CLUSTER", name.clone()),
        ("TLAO_LAUNCHER__ECS__TASK_DEFINITION", name.clone()),
        ("TLAO_LAUNCHER__ECS__SUBNETS", subnet),
        ("TLAO_LAUNCHER__ECS__SECURITY_GROUPS", group),
        ("TLAO_LAUNCHER__ECS__MAX_TASKS", "1".into()),
        (
            "TLAO_LAUNCHER__ECS__API_URL_FROM_TASK_DEFINITION",
            "true".into(),
        ),
        ("TLAO_LAUNCHER__ECS__ENDPOINT", endpoint.clone()),
        ("TLAO_LAUNCHER__ECS__REGION", "us-east-1".into()),
    ]);
    succeed(
        tlao(&env, dir.path()).args(["admin", "init-aws"]),
        "init-aws",
    );
    let (_server, admin, workspace) = serve_ready_for_plans(&env, dir.path(), "serverless").await;

    // With the loops off, the run's task is started before the answer (nothing else
    // would start it before the next pass); the second finds the only slot taken.
    let first = admin
        .run_prompt(&workspace, "spec.generate", "a first plan", None)
        .await;
    let listed = ecs(&endpoint, "ListTasks", json!({"cluster": name})).await;
    let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
    assert_eq!(arns.len(), 1, "no task started on create: {listed}");
    let (_, running) = admin.get(&format!("/runs/{first}")).await;
    assert_eq!(running["status"], "running", "{running:#}");
    let second = admin
        .run_prompt(&workspace, "spec.generate", "a second plan", None)
        .await;

    // Past its queue timeout, nothing expires it by itself: no loop runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, waiting) = admin.get(&format!("/runs/{second}")).await;
    assert_eq!(waiting["status"], "queued", "a loop reaped: {waiting:#}");

    let pass = maintain(&admin.url, token).await;
    let again = maintain(&admin.url, token).await;

    assert_eq!(pass["queueExpired"], 1, "{pass}");
    assert_eq!(pass["dispatched"], 0, "{pass}");
    assert_eq!(pass["launcher"], true, "{pass}");
    assert_eq!(again["queueExpired"], 0, "{again}");
    assert_eq!(again["dispatched"], 0, "{again}");
    let (_, expired) = admin.get(&format!("/runs/{second}")).await;
    assert_eq!(expired["error"]["code"], "queue_timeout", "{expired:#}");
    let (_, still) = admin.get(&format!("/runs/{first}")).await;
    assert_eq!(still["status"], "running", "{still:#}");
    let described = ecs(
        &endpoint,
        "DescribeTasks",
        json!({"cluster": name, "tasks": arns}),
    )
    .await;
    let container = &described["tasks"][0]["overrides"]["containerOverrides"][0];
    assert_eq!(container["command"][2], first.as_str(), "{container:#}");
    // The task definition says where the API is: the launcher adds nothing.
    assert!(
        container["environment"]
            .as_array()
            .is_none_or(|vars| vars.is_empty()),
        "{container:#}"
    );
    let listed = ecs(&endpoint, "ListTasks", json!({"cluster": name})).await;
    assert_eq!(
        listed["taskArns"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
