//! `tlao serve` as a process of the test: started with an environment of the test's
//! choosing on a data dir, ready once it prints its URL, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use super::{Api, tlao_bin};

/// A process killed (and reaped) when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `tlao` command with `env` on `data_dir`, without the caller's login or config.
pub fn tlao(env: &[(&str, String)], data_dir: &Path) -> Command {
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

/// Runs `command`; panics with its output unless it succeeds.
pub fn succeed(command: &mut Command, what: &str) -> Output {
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
pub fn serve(env: &[(&str, String)], data_dir: &Path) -> (Running, String) {
    let (server, url, _stdout) = serve_reading_stdout(env, data_dir);
    (server, url)
}

/// [`serve`], and the lines the server prints on standard output after its ready line.
pub fn serve_reading_stdout(
    env: &[(&str, String)],
    data_dir: &Path,
) -> (Running, String, mpsc::Receiver<String>) {
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
                    return (server, url.trim().to_owned(), rx);
                }
            }
            Err(e) => panic!("tlao serve did not become ready: {e}"),
        }
    }
}

/// `tlao admin bootstrap` then `tlao serve` with `env` on `data_dir`, logged in as the
/// administrator, with the `kiro` executor the bootstrap registers and a workspace named
/// `workspace`: the server (killed when dropped), the client and the workspace id.
pub async fn serve_ready_for_plans(
    env: &[(&str, String)],
    data_dir: &Path,
    workspace: &str,
) -> (Running, Api, String) {
    let boot = succeed(
        tlao(env, data_dir).args(["admin", "bootstrap"]),
        "bootstrap",
    );
    let admin_key = String::from_utf8(boot.stdout).unwrap().trim().to_owned();
    let (server, url) = serve(env, data_dir);
    let admin = Api::login(&url, &admin_key).await;
    let (status, executors) = admin.get("/executors").await;
    assert!(
        status == 200 && executors.to_string().contains(r#""name":"kiro""#),
        "the bootstrap registered no kiro executor: {status} {executors}"
    );
    let workspace = admin.create_workspace(workspace).await;
    (server, admin, workspace)
}

/// The queue timeout end to end on `tlao serve` with `env` (its storage) and no worker:
/// with a daily quota of one run and a queue timeout of 2 s, a run nobody leases fails
/// as `queue_timeout` with a message saying why, in its record and its log, and its
/// quota unit is given back (the next run is admitted, where it was refused with 429
/// while the first one waited).
pub async fn a_run_nobody_leases_expires_and_gives_back_its_quota(
    env: &[(&str, String)],
    data_dir: &Path,
) {
    let mut env = env.to_vec();
    env.push(("TLAO_GUARDRAILS__MAX_QUEUE_SECONDS", "2".into()));
    env.push(("TLAO_GUARDRAILS__DAILY_RUN_QUOTA", "1".into()));
    let (_server, admin, workspace) = serve_ready_for_plans(&env, data_dir, "queue").await;
    let task =
        json!({"workspaceId": workspace, "taskType": "spec.generate", "input": {"prompt": "plan"}});
    let run_id = admin.start_run(task.clone(), None).await;
    let (_, second_task) = admin.post("/tasks", task.clone()).await;
    let (status, refused) = admin
        .post("/runs", json!({"taskId": second_task["taskId"]}))
        .await;
    assert_eq!(status, 429, "the quota of one run is used: {refused}");

    let run = admin
        .await_run(
            &run_id,
            "expire in the queue",
            Duration::from_secs(30),
            |run| run["status"] != "queued",
        )
        .await;

    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "queue_timeout", "{run:#}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("within 2 s"), "{message}");
    let events = admin.events(&run_id).await;
    assert!(
        events
            .iter()
            .any(|(kind, data)| kind == "log" && data.to_string().contains("within 2 s")),
        "the log does not say why: {events:?}"
    );
    let (status, admitted) = admin
        .post("/runs", json!({"taskId": second_task["taskId"]}))
        .await;
    assert_eq!(status, 201, "the quota unit was not given back: {admitted}");
}
