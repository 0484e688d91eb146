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

/// `tlao admin bootstrap` then `tlao serve` with `env` on `data_dir`, logged in as the
/// administrator, with a `kiro` executor for `spec.generate` and a workspace named
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
    let (status, executor) = admin
        .post(
            "/executors",
            json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate"]}),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {executor}");
    let workspace = admin.create_workspace(workspace).await;
    (server, admin, workspace)
}
