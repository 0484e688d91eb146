//! The `tlao` client commands, run as a developer runs them: the real binary against a
//! real `tlao dev` on a temporary data dir, logged in through the login `tlao dev`
//! stores (`TLAO_CONFIG_DIR`), with the stand-in `kiro-cli` first on the server's
//! `PATH` (`tests/fixtures/kiro-cli`: its prompt words pick what it does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{DevServer, path_with_standin, tlao_bin};

/// The `tlao` binary, talking to `server` through the login it stored.
fn tlao(server: &DevServer) -> Command {
    tlao_with_config(&server.config_dir)
}

/// The `tlao` binary with `config_dir` as its credentials directory and nothing
/// inherited that would change its target.
fn tlao_with_config(config_dir: &Path) -> Command {
    let mut command = Command::new(tlao_bin());
    command
        .env("TLAO_CONFIG_DIR", config_dir)
        .env("NO_COLOR", "1")
        .env_remove("TLAO_API_URL")
        .env_remove("TLAO_TOKEN")
        .env_remove("TLAO_PROFILE")
        .env_remove("TLAO_LOG")
        .timeout(Duration::from_secs(120));
    command
}

/// Runs `command` and parses its stdout as JSON, asserting success.
fn json(command: &mut Command) -> Value {
    let output = command.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&output).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output)
        )
    })
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A small project directory.
fn project(dir: &Path) -> PathBuf {
    let root = dir.join("project");
    write(&root, "README.md", b"# Project\n");
    write(&root, "src/main.rs", b"fn main() {}\n");
    root
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Registers a `command` executor serving `doc.write` that runs `script` with `sh -c`
/// in the run's working directory.
fn add_shell_executor(server: &DevServer, name: &str, script: &str) {
    let record = serde_json::json!({
        "name": name,
        "kind": "command",
        "taskTypes": ["doc.write"],
        "config": {"command": ["sh", "-c", script, name, "{workdir}", "{outdir}"]},
    });
    tlao(server)
        .args(["executors", "add", &record.to_string()])
        .assert()
        .success();
}

#[test]
fn run_plan_streams_the_run_and_its_plan_downloads_with_a_verified_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let root = project(dir.path());

    let run = tlao(&server)
        .args(["run", "plan", "make a plan", "--path"])
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("Reading the workspace").and(contains("plan.json")))
        .stderr(contains("completed").and(contains("tlao artifact get art_")));
    let said = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    drop(run);

    let runs = json(tlao(&server).args(["runs", "--json", "--limit", "1"]));
    let run_id = runs[0]["runId"].as_str().unwrap().to_owned();
    // The run's page in the console is one click away.
    assert!(
        said.contains(&format!("console: {}/console/runs/{run_id}", server.url)),
        "{said}"
    );
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["taskType"], "spec.generate");
    let artifacts = json(tlao(&server).args(["artifacts", &run_id, "--json"]));
    let plan = artifacts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "plan.json")
        .unwrap_or_else(|| panic!("no plan.json among {artifacts:#}"))
        .clone();
    let plan_id = plan["artifactId"].as_str().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    tlao(&server)
        .args(["artifact", "get", plan_id, "-o"])
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("sha256 verified"));

    let bytes = std::fs::read(out.join("plan.json")).unwrap();
    assert_eq!(sha256_hex(&bytes), plan["sha256"].as_str().unwrap());
    assert_eq!(bytes.len() as u64, plan["size"].as_u64().unwrap());
    let parsed: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(parsed["title"], "Stand-in plan");

    // A second download does not replace the file unless told to.
    tlao(&server)
        .args(["artifact", "get", plan_id, "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(contains("--force"));
    tlao(&server)
        .args(["artifact", "get", plan_id, "--force", "-o"])
        .arg(&out)
        .assert()
        .success();

    // Without -o it lands in the current directory, under its own name (R8.3).
    let here = dir.path().join("here");
    std::fs::create_dir(&here).unwrap();
    tlao(&server)
        .current_dir(&here)
        .args(["artifact", "get", plan_id])
        .assert()
        .success()
        .stderr(contains("sha256 verified"));
    assert_eq!(std::fs::read(here.join("plan.json")).unwrap(), bytes);
}

#[test]
fn the_uploaded_workspace_follows_gitignore_keeps_modes_and_links_and_leaves_out_build_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    add_shell_executor(
        &server,
        "lister",
        "cd \"$1\" && find . -mindepth 1 | LC_ALL=C sort && stat -c 'mode %a %n' run.sh && \
         printf 'link %s\\n' \"$(readlink docs/alias.md)\"",
    );
    let root = dir.path().join("repo");
    write(&root, ".gitignore", b"*.log\n!keep.log\n/secrets/\n");
    write(&root, "app.log", b"ignored");
    write(&root, "keep.log", b"kept by a negation");
    write(&root, "secrets/key.pem", b"ignored");
    write(&root, "sub/.gitignore", b"local.txt\n");
    write(&root, "sub/local.txt", b"ignored by the nested .gitignore");
    write(&root, "sub/shared.txt", b"kept");
    write(&root, ".tlaoignore", b"fixtures/\n");
    write(&root, "fixtures/huge.json", b"ignored by .tlaoignore");
    write(&root, ".git/config", b"[core]\n");
    write(&root, ".git/info/exclude", b"excluded.txt\n");
    write(&root, "excluded.txt", b"ignored through .git/info/exclude");
    write(&root, "node_modules/left-pad/index.js", b"ignored");
    write(&root, "target/debug/app", b"ignored");
    write(&root, "web/dist/bundle.js", b"ignored");
    write(&root, "docs/guide.md", b"# Guide\n");
    write(&root, "run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(root.join("run.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    symlink("guide.md", root.join("docs/alias.md")).unwrap();
    symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    symlink("../../outside", root.join("docs/escape")).unwrap();

    let output = tlao(&server)
        .args([
            "run",
            "doc",
            "list the files",
            "--executor",
            "lister",
            "--path",
        ])
        .arg(&root)
        .assert()
        .success()
        .stderr(contains("left out passwd-link"))
        .get_output()
        .stdout
        .clone();

    let stdout = String::from_utf8(output).unwrap();
    let listed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("./"))
        .collect();
    assert_eq!(
        listed,
        [
            "./.gitignore",
            "./.tlaoignore",
            "./docs",
            "./docs/alias.md",
            "./docs/guide.md",
            "./keep.log",
            "./run.sh",
            "./sub",
            "./sub/.gitignore",
            "./sub/shared.txt",
            "./web",
        ],
        "{stdout}"
    );
    assert!(stdout.contains("mode 755 run.sh"), "{stdout}");
    assert!(stdout.contains("link guide.md"), "{stdout}");
}

#[test]
fn an_archive_over_the_servers_limit_is_refused_before_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(
        dir.path(),
        &[("TLAO_GUARDRAILS__MAX_ARCHIVE_BYTES", "4096")],
    );
    let root = project(dir.path());
    // Incompressible bytes, so the archive is as large as they are.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    write(&root, "assets/video/clip.bin", &noise);

    tlao(&server)
        .args(["run", "plan", "make a plan", "--path"])
        .arg(&root)
        .assert()
        .code(1)
        .stderr(
            contains("over the server's limit of 4.0 KiB (4096 bytes)")
                .and(contains("nothing was uploaded"))
                .and(contains("assets/video/clip.bin"))
                .and(contains(".tlaoignore")),
        );

    let runs = json(tlao(&server).args(["runs", "--json"]));
    assert_eq!(runs, serde_json::json!([]), "no run was started");
}

#[test]
fn with_nothing_listening_the_error_names_the_url_and_the_likely_causes_and_exits_3() {
    let config = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());

    tlao_with_config(config.path())
        .env("TLAO_API_URL", &url)
        .env("TLAO_TOKEN", "any")
        .args(["runs"])
        .assert()
        .code(3)
        .stdout(predicate::str::is_empty())
        .stderr(
            contains(format!("cannot reach the TLÁO API at {url}"))
                .and(contains("tlao dev"))
                .and(contains("TLAO_API_URL"))
                .and(contains("proxy")),
        );
}

#[test]
fn runs_json_is_an_array_of_runs_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let root = project(dir.path());
    let mut started = Vec::new();
    for _ in 0..2 {
        let run = json(
            tlao(&server)
                .args(["run", "doc", "write docs", "--detach", "--json", "--path"])
                .arg(&root),
        );
        assert_eq!(run["status"], "queued");
        started.push(run["runId"].as_str().unwrap().to_owned());
    }

    let runs = json(tlao(&server).args(["runs", "--json", "--all"]));

    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["runId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [started[1].as_str(), started[0].as_str()]);
    for run in runs.as_array().unwrap() {
        assert_eq!(run["taskType"], "doc.write");
        assert!(run["status"].is_string());
    }
    tlao(&server)
        .args(["runs", "--limit", "1"])
        .assert()
        .success()
        .stdout(contains("RUN").and(contains(started[1].as_str())));

    let plan = json(
        tlao(&server)
            .args(["run", "plan", "make a plan", "--detach", "--json", "--path"])
            .arg(&root),
    );
    let ids_of = |runs: Value| -> Vec<String> {
        runs.as_array()
            .unwrap()
            .iter()
            .map(|run| run["runId"].as_str().unwrap().to_owned())
            .collect()
    };
    let docs = ids_of(json(tlao(&server).args([
        "runs",
        "--json",
        "--task-type",
        "doc.write",
    ])));
    let plans = ids_of(json(tlao(&server).args([
        "runs",
        "--json",
        "--executor",
        "kiro",
        "--task-type",
        "spec.generate",
    ])));
    let elsewhere = ids_of(json(tlao(&server).args([
        "runs",
        "--json",
        "--executor",
        "nope",
    ])));
    assert_eq!(docs, [started[1].as_str(), started[0].as_str()]);
    assert_eq!(plans, [plan["runId"].as_str().unwrap()]);
    assert!(elsewhere.is_empty());
    tlao(&server)
        .args(["runs", "--task-type", "poem.write"])
        .assert()
        .code(2)
        .stderr(contains("poem.write"));
}

#[test]
fn a_failed_run_exits_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let root = project(dir.path());

    tlao(&server)
        .args(["run", "plan", "fail", "--path"])
        .arg(&root)
        .assert()
        .code(1)
        .stderr(contains("failed").and(contains("executor_failed")));
}

#[test]
fn an_empty_prompt_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = project(dir.path());

    tlao_with_config(dir.path())
        .args(["run", "plan", "--path"])
        .arg(&root)
        .write_stdin("   \n")
        .assert()
        .code(2)
        .stderr(contains("the prompt is empty"));
}

#[test]
fn logging_in_with_a_bad_key_exits_4_and_a_good_key_on_stdin_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let fresh = tempfile::tempdir().unwrap();

    tlao_with_config(fresh.path())
        .args([
            "login",
            "--api-url",
            &server.url,
            "--api-key",
            "tlao_not_a_key",
        ])
        .assert()
        .code(4)
        .stdout(predicate::str::is_empty())
        .stderr(contains("not authenticated").and(contains("tlao_not_a_key").not()));
    assert!(!fresh.path().join("credentials.json").exists());

    let key = server.admin_key();
    tlao_with_config(fresh.path())
        .args(["login", "--api-url", &server.url, "--with-token"])
        .write_stdin(format!("{key}\n"))
        .assert()
        .success()
        .stdout(contains(&key).not())
        .stderr(contains("Logged in").and(contains(&key).not()));
    let credentials = fresh.path().join("credentials.json");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let me = json(tlao_with_config(fresh.path()).args(["whoami", "--json"]));
    assert_eq!(me["apiUrl"], server.url.as_str());
    assert_eq!(me["admin"], true);
    assert!(me["userId"].as_str().unwrap().starts_with("usr_"));

    tlao_with_config(fresh.path())
        .args(["logout"])
        .assert()
        .success();
    tlao_with_config(fresh.path())
        .args(["whoami"])
        .assert()
        .code(4)
        .stderr(contains("tlao login"));
}

#[test]
fn logs_follow_resumes_after_the_server_restarts_mid_stream_with_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let path = path_with_standin();
    let env = [("PATH", path.as_str())];
    let mut server = DevServer::start_on(&addr, &data, &config, &env);
    add_shell_executor(
        &server,
        "slow",
        "i=1; while [ $i -le 40 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.1; done",
    );
    let root = project(dir.path());
    let run = json(
        tlao(&server)
            .args(["run", "doc", "count slowly", "--executor", "slow"])
            .args(["--detach", "--json", "--path"])
            .arg(&root),
    );
    let run_id = run["runId"].as_str().unwrap().to_owned();

    let mut follower = StdCommand::new(tlao_bin())
        .args(["logs", &run_id, "--follow"])
        .env("TLAO_CONFIG_DIR", &config)
        .env("NO_COLOR", "1")
        .env_remove("TLAO_API_URL")
        .env_remove("TLAO_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !printed.iter().any(|l: &String| l == "line 5") {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the follower prints the first lines");
        printed.push(line);
    }

    assert_eq!(server.interrupt(), Some(0), "tlao dev stops cleanly");
    let restarted = DevServer::start_on(&addr, &data, &config, &env);
    let status = wait_for_exit(&mut follower, Duration::from_secs(90));
    printed.extend(rx.try_iter());

    assert_eq!(status, Some(0), "the run completed: {printed:#?}");
    let stored = tlao(&restarted)
        .args(["logs", &run_id])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stored: Vec<String> = String::from_utf8(stored)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(printed, stored, "every stored line printed once, in order");
    let numbered: Vec<&String> = printed.iter().filter(|l| l.starts_with("line ")).collect();
    let unique: BTreeSet<&String> = numbered.iter().copied().collect();
    assert_eq!(unique.len(), numbered.len(), "no line twice: {printed:#?}");
    assert!(
        printed.iter().any(|l| l == "line 40"),
        "the lines after the restart arrived: {printed:#?}"
    );
}

/// Waits for `child` to exit; its exit code.
fn wait_for_exit(child: &mut std::process::Child, patience: Duration) -> Option<i32> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the follower did not finish within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_refuses_an_ecs_launcher_without_its_cluster_or_task_definition_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[(&str, &str)]| {
        let mut command = tlao_with_config(dir.path());
        command
            .env("TLAO_DATA_DIR", dir.path())
            .env("TLAO_SERVER__ADDR", "127.0.0.1:0")
            .env("TLAO_LAUNCHER__KIND", "ecs")
            .arg("serve");
        for (name, value) in extra {
            command.env(name, value);
        }
        command.assert()
    };

    serve(&[])
        .failure()
        .stderr(contains("launcher.ecs.cluster").and(contains("TLAO_LAUNCHER__ECS__CLUSTER")));
    serve(&[("TLAO_LAUNCHER__ECS__CLUSTER", "tlao")])
        .failure()
        .stderr(contains("TLAO_LAUNCHER__ECS__TASK_DEFINITION"));
    serve(&[("TLAO_LAUNCHER__KIND", "lambda")])
        .failure()
        .stderr(contains("lambda"));

    // Complete settings, but workers could not authenticate, or not reach the API.
    let ecs = [
        ("TLAO_LAUNCHER__ECS__CLUSTER", "tlao"),
        ("TLAO_LAUNCHER__ECS__TASK_DEFINITION", "tlao-worker"),
        (
            "TLAO_AUTH__SECRET",
            "a-serve-signing-secret-of-at-least-32-bytes",
        ),
    ];
    serve(&ecs).failure().stderr(contains("TLAO_WORKER_TOKEN"));
    let with_token: Vec<(&str, &str)> = ecs
        .iter()
        .copied()
        .chain([("TLAO_WORKER_TOKEN", "a-worker-token-0123456789abcdef")])
        .collect();
    serve(&with_token).failure().stderr(
        contains("cannot reach the API at http://127.0.0.1")
            .and(contains("TLAO_LAUNCHER__ECS__API_URL")),
    );
}

#[test]
fn tlao_keys_creates_lists_and_revokes_a_key_that_then_cannot_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);

    let created = json(tlao(&server).args(["keys", "create", "--json"]));
    let key_id = created["keyId"].as_str().unwrap().to_owned();
    let api_key = created["apiKey"].as_str().unwrap().to_owned();
    assert!(
        key_id.starts_with("key_") && api_key.starts_with("tlao_"),
        "{created}"
    );

    let listed = json(tlao(&server).args(["keys", "list", "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&key_id.as_str()));
    assert!(!listed.to_string().contains("tlao_"), "{listed}");
    tlao(&server)
        .args(["keys", "list"])
        .assert()
        .success()
        .stdout(contains("LAST USED").and(contains(&key_id)));

    // The new key logs in; once revoked, it does not.
    let with_new_key = tempfile::tempdir().unwrap();
    tlao_with_config(with_new_key.path())
        .args(["login", "--api-url", &server.url, "--with-token"])
        .write_stdin(format!("{api_key}\n"))
        .assert()
        .success();
    let revoked = json(tlao(&server).args(["keys", "revoke", &key_id, "--json"]));
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["keyId"], key_id.as_str());
    let fresh = tempfile::tempdir().unwrap();
    tlao_with_config(fresh.path())
        .args(["login", "--api-url", &server.url, "--with-token"])
        .write_stdin(format!("{api_key}\n"))
        .assert()
        .code(4);
    let listed = json(tlao(&server).args(["keys", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    tlao(&server)
        .args(["keys", "revoke", &key_id])
        .assert()
        .code(1)
        .stderr(contains("does not exist"));
    tlao(&server)
        .args(["keys", "revoke", "not-a-key-id"])
        .assert()
        .code(2);
}

#[test]
fn executors_add_preset_registers_the_documented_record_and_list_shows_availability() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);

    let presets = json(tlao(&server).args(["executors", "presets", "--json"]));
    let names: Vec<&str> = presets
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["preset"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kiro",
            "kiro-acp",
            "claude-code",
            "claude-code-acp",
            "codex",
            "codex-acp",
            "gemini",
            "gemini-acp",
            "opencode",
            "goose"
        ]
    );

    tlao(&server)
        .args(["executors", "add", "--preset", "claude-code"])
        .assert()
        .success()
        .stderr(contains("registered executor claude-code"));
    tlao(&server)
        .args([
            "executors",
            "add",
            "--preset",
            "codex",
            "--name",
            "my-codex",
        ])
        .assert()
        .success();
    tlao(&server)
        .args(["executors", "add", "--preset", "no-such"])
        .assert()
        .code(2)
        .stderr(contains("no preset named \"no-such\"").and(contains("claude-code")));

    let listed = json(tlao(&server).args(["executors", "list", "--json"]));
    let find = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {listed}"))
            .clone()
    };
    let claude = find("claude-code");
    assert_eq!(claude["kind"], "stream");
    assert_eq!(claude["config"]["format"], "claude");
    assert_eq!(
        claude["sandbox"]["writePaths"],
        serde_json::json!(["~/.claude"])
    );
    assert_eq!(
        claude["sandbox"]["env"],
        serde_json::json!(["ANTHROPIC_*", "CLAUDE_*"])
    );
    assert_eq!(find("my-codex")["config"]["format"], "codex");

    // `tlao dev` probes its own PATH for the workers it starts: the stand-in kiro-cli is
    // there, claude is not.
    let deadline = Instant::now() + Duration::from_secs(20);
    let kiro = loop {
        let listed = json(tlao(&server).args(["executors", "list", "--json"]));
        let kiro = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "kiro")
            .unwrap()
            .clone();
        if kiro.get("availability").is_some() || Instant::now() > deadline {
            break kiro;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(kiro["availability"]["workers"], 1, "{kiro}");
    assert_eq!(
        kiro["availability"]["version"], "kiro-cli 0.0.0 (stand-in)",
        "{kiro}"
    );
    let listed = json(tlao(&server).args(["executors", "list", "--json"]));
    let claude = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "claude-code")
        .unwrap();
    assert!(claude.get("availability").is_none(), "{claude}");
    tlao(&server)
        .args(["executors", "list"])
        .assert()
        .success()
        .stdout(contains("LAST SEEN AVAILABLE").and(contains("kiro-cli 0.0.0 (stand-in)")));
}
