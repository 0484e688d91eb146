//! End to end on the AWS adapters: `tlao admin init-aws`, `tlao admin bootstrap`,
//! `tlao serve` on DynamoDB + S3 (moto on loopback, from `TLAO_TEST_AWS_ENDPOINT`), and a
//! `tlao worker --once` running the stand-in `kiro-cli`; everything observed through the
//! HTTP API, the artifact downloaded through a real S3 presigned URL that moto serves.
//!
//! Without the emulator the test fails with instructions: `./scripts/test` starts it, or
//! `eval "$(scripts/moto start)"` by hand.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Api, path_with_standin, tlao_bin};
use serde_json::{Value, json};

/// A process killed (and reaped) when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

fn tlao(env: &[(&str, String)], data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(tlao_bin());
    command
        .env("TLAO_DATA_DIR", data_dir)
        .env_remove("TLAO_API_URL")
        .env_remove("TLAO_TOKEN")
        .env_remove("TLAO_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn succeed(command: &mut Command, what: &str) -> Output {
    let output = command.output().expect("tlao runs");
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts `tlao serve` and waits for its ready line; returns the process and its URL.
fn serve(env: &[(&str, String)], data_dir: &std::path::Path) -> (Running, String) {
    let mut child = tlao(env, data_dir)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tlao serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("Ready: ") {
                    return (server, url.trim().to_owned());
                }
            }
            Err(e) => panic!("tlao serve did not become ready: {e}"),
        }
    }
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

    let (status, executor) = admin
        .post(
            "/executors",
            json!({
                "name": "kiro",
                "kind": "kiro",
                "taskTypes": ["spec.generate", "code.change", "doc.write"],
                "config": {"binary": "kiro-cli"}
            }),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "registering kiro: {status} {executor}"
    );
    let workspace = admin.create_workspace("aws-e2e").await;
    let run_id = admin
        .run_prompt(&workspace, "spec.generate", "make a plan", None)
        .await;

    let worker = tlao(&env, dir.path())
        .args([
            "worker",
            "--once",
            "--wait",
            "30",
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

/// A few random hex digits, so reruns against one emulator do not collide.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}")
}
