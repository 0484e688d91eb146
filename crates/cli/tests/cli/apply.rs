//! The change comes home: `tlao run change` in a git repository, then `tlao apply`
//! (clean, 3-way, refused on conflicts, `--branch`), `tlao run change --apply`,
//! `tlao bundle`, `tlao rerun` and `tlao diff`, each against a real `tlao dev` whose
//! `kiro` executor is the stand-in `kiro-cli` (its prompt word `change` appends a line
//! to README.md, creates NEW_FILE.md and deletes obsolete.txt).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{DevServer, tlao_bin};

/// The README the repository starts with: the stand-in appends a line after its last.
const README: &str = "# Project\n\none\ntwo\nthree\nfour\nfive\n";
/// The line the stand-in appends to README.md.
const APPENDED: &str = "Changed by the kiro-cli stand-in.\n";

/// A git configuration of the test's own, so no developer's settings leak in.
fn gitconfig(dir: &Path) -> PathBuf {
    let path = dir.join("gitconfig");
    std::fs::write(
        &path,
        "[user]\n\tname = Dev Eloper\n\temail = dev@example.com\n[init]\n\tdefaultBranch = main\n",
    )
    .unwrap();
    path
}

fn git(repo: &Path, config: &Path, args: &[&str]) -> String {
    let output = StdCommand::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A repository with one commit: README.md, obsolete.txt and src/lib.rs.
fn repository(dir: &Path, config: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("README.md"), README).unwrap();
    std::fs::write(repo.join("obsolete.txt"), "to be removed\n").unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    git(&repo, config, &["init", "-q"]);
    git(&repo, config, &["add", "-A"]);
    git(&repo, config, &["commit", "-q", "-m", "base"]);
    repo
}

/// The `tlao` binary, logged in to `server`, with the test's git configuration.
fn tlao(server: &DevServer, config: &Path) -> Command {
    let mut command = Command::new(tlao_bin());
    command
        .env("TLAO_CONFIG_DIR", &server.config_dir)
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_GLOBAL", config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("TLAO_API_URL")
        .env_remove("TLAO_TOKEN")
        .env_remove("TLAO_PROFILE")
        .env_remove("TLAO_LOG")
        .timeout(Duration::from_secs(120));
    command
}

fn stdout_json(command: &mut Command) -> Value {
    let output = command.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&output)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output)))
}

/// Runs `tlao run change PROMPT --path repo --detach` and waits for the run's end;
/// returns its id.
async fn change_run(server: &DevServer, config: &Path, repo: &Path, prompt: &str) -> String {
    let created = stdout_json(
        tlao(server, config)
            .args(["run", "change", prompt, "--detach", "--json", "--path"])
            .arg(repo),
    );
    let run_id = created["runId"].as_str().unwrap().to_owned();
    let run = server.admin().await.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    run_id
}

/// Every file under `dir`, `.git` included, with its bytes' SHA-256: the repository
/// byte for byte.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.insert(path, hex::encode(Sha256::digest(&bytes)));
            }
        }
    }
    files
}

fn read(repo: &Path, path: &str) -> String {
    std::fs::read_to_string(repo.join(path)).unwrap()
}

/// The files an apply reports, with how each changed, sorted by path.
fn sorted_changes(applied: &Value) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = applied["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_on_the_clean_base_writes_the_runs_change_and_check_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let base = git(&repo, &config, &["rev-parse", "HEAD"]);
    let run_id = change_run(&server, &config, &repo, "change the readme").await;

    // The task records the commit the archive was packed from, and a clean tree.
    let run = server.admin().await.run(&run_id).await;
    let (_, task) = server
        .admin()
        .await
        .get(&format!("/tasks/{}", run["taskId"].as_str().unwrap()))
        .await;
    assert_eq!(task["spec"]["input"]["source"]["commit"], base.trim());
    assert_eq!(task["spec"]["input"]["source"]["dirty"], false);

    let before = snapshot(&repo);
    let checked = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--check", "--json", "--path"])
            .arg(&repo),
    );
    assert_eq!(checked["fit"], "clean", "{checked:#}");
    assert_eq!(checked["applied"], false);
    assert_eq!(snapshot(&repo), before, "--check changed the repository");

    let applied = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--json", "--path"])
            .arg(&repo),
    );

    assert_eq!(applied["fit"], "clean", "{applied:#}");
    assert_eq!(
        sorted_changes(&applied),
        [
            ("NEW_FILE.md", "added"),
            ("README.md", "modified"),
            ("obsolete.txt", "deleted")
        ]
        .map(|(p, c)| (p.to_owned(), c.to_owned()))
    );
    assert_eq!(read(&repo, "README.md"), format!("{README}{APPENDED}"));
    assert_eq!(
        read(&repo, "NEW_FILE.md"),
        "# New file\n\nCreated by the kiro-cli stand-in.\n"
    );
    assert!(!repo.join("obsolete.txt").exists());
    // Nothing staged, nothing committed: the change waits in the working tree.
    assert_eq!(git(&repo, &config, &["rev-parse", "HEAD"]), base);
    assert_eq!(
        git(&repo, &config, &["diff", "--cached", "--name-only"]),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_edit_near_the_change_is_merged_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let run_id = change_run(&server, &config, &repo, "change the readme").await;
    // Inside the patch's context (so it no longer applies as it is), two lines away
    // from the appended line (so a merge has no conflict); not staged.
    let edited = README.replace("three", "THREE (edited here)");
    std::fs::write(repo.join("README.md"), &edited).unwrap();

    let applied = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--json", "--path"])
            .arg(&repo),
    );

    assert_eq!(applied["fit"], "merged", "{applied:#}");
    assert_eq!(read(&repo, "README.md"), format!("{edited}{APPENDED}"));
    assert!(repo.join("NEW_FILE.md").exists());
    assert!(!repo.join("obsolete.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_local_edit_is_refused_leaving_the_repository_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let run_id = change_run(&server, &config, &repo, "change the readme").await;
    // The same place the agent appended to, something else.
    let edited = format!("{README}A line of my own.\n");
    std::fs::write(repo.join("README.md"), &edited).unwrap();
    let before = snapshot(&repo);

    tlao(&server, &config)
        .args(["apply", &run_id, "--path"])
        .arg(&repo)
        .assert()
        .code(1)
        .stderr(
            contains("conflicts with your changes in README.md")
                .and(contains("nothing was changed")),
        );
    assert_eq!(
        snapshot(&repo),
        before,
        "a refused apply changed the repository"
    );
    tlao(&server, &config)
        .args(["apply", &run_id, "--check", "--path"])
        .arg(&repo)
        .assert()
        .code(1)
        .stderr(contains("applies with conflicts"));
    assert_eq!(snapshot(&repo), before, "--check changed the repository");

    let applied = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--conflicts", "--json", "--path"])
            .arg(&repo),
    );
    assert_eq!(applied["fit"], "conflicts", "{applied:#}");
    assert_eq!(applied["conflicts"], serde_json::json!(["README.md"]));
    let readme = read(&repo, "README.md");
    assert!(
        readme.contains("<<<<<<<")
            && readme.contains("A line of my own.")
            && readme.contains(APPENDED),
        "{readme}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_did_not_complete_or_left_no_patch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let before = snapshot(&repo);
    let failed = stdout_json(
        tlao(&server, &config)
            .args([
                "run",
                "change",
                "fail please",
                "--detach",
                "--json",
                "--path",
            ])
            .arg(&repo),
    );
    let failed = failed["runId"].as_str().unwrap().to_owned();
    let admin = server.admin().await;
    assert_eq!(admin.await_final(&failed).await["status"], "failed");
    // A completed run that changed nothing leaves no patch.
    let record = serde_json::json!({
        "name": "noop",
        "kind": "command",
        "taskTypes": ["code.change"],
        "config": {"command": ["true"]},
    });
    tlao(&server, &config)
        .args(["executors", "add", &record.to_string()])
        .assert()
        .success();
    let unchanged = stdout_json(
        tlao(&server, &config)
            .args([
                "run",
                "change",
                "look around",
                "--executor",
                "noop",
                "--detach",
                "--json",
                "--path",
            ])
            .arg(&repo),
    );
    let unchanged = unchanged["runId"].as_str().unwrap().to_owned();
    assert_eq!(admin.await_final(&unchanged).await["status"], "completed");

    tlao(&server, &config)
        .args(["apply", &failed, "--path"])
        .arg(&repo)
        .assert()
        .code(1)
        .stderr(contains("is failed, not completed"));
    tlao(&server, &config)
        .args(["apply", &unchanged, "--path"])
        .arg(&repo)
        .assert()
        .code(1)
        .stderr(contains("produced no changes.patch"));
    tlao(&server, &config)
        .args(["apply", &unchanged, "--path"])
        .arg(dir.path().join("data"))
        .assert()
        .code(2)
        .stderr(contains("is not in a git repository"));
    tlao(&server, &config)
        .args(["apply", "run_not-an-id"])
        .assert()
        .code(2);
    assert_eq!(snapshot(&repo), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_branch_commits_exactly_the_change_with_the_prompt_run_and_co_author() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let base = git(&repo, &config, &["rev-parse", "HEAD"]);
    let prompt = "change the readme\n\nKeep it short.";
    let run_id = change_run(&server, &config, &repo, prompt).await;
    // A local change elsewhere stays out of the commit.
    std::fs::write(repo.join("src/lib.rs"), "pub fn f() { /* mine */ }\n").unwrap();

    let applied = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--branch", "--json", "--co-author"])
            .arg("Kiro Agent <kiro@example.com>")
            .arg("--path")
            .arg(&repo),
    );

    let branch = format!("tlao/{run_id}");
    assert_eq!(applied["branch"], branch.as_str(), "{applied:#}");
    assert_eq!(
        git(&repo, &config, &["branch", "--show-current"]).trim(),
        branch
    );
    let head = git(&repo, &config, &["rev-parse", "HEAD"]);
    assert_eq!(applied["commit"], head.trim());
    assert_eq!(git(&repo, &config, &["rev-parse", "HEAD~1"]), base);
    let mut changed: Vec<String> = git(
        &repo,
        &config,
        &["show", "--name-status", "--format=", "HEAD"],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["A\tNEW_FILE.md", "D\tobsolete.txt", "M\tREADME.md"]
    );
    let message = git(&repo, &config, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("change the readme\n\nchange the readme\n\nKeep it short.\n"),
        "{message}"
    );
    for line in [
        format!("Tlao-Run: {run_id}"),
        "Tlao-Executor: kiro".to_owned(),
        "Tlao-Usage: ".to_owned(),
        "Co-authored-by: Kiro Agent <kiro@example.com>".to_owned(),
    ] {
        assert!(message.contains(&line), "{line:?} missing from:\n{message}");
    }
    let author = git(&repo, &config, &["log", "-1", "--format=%an <%ae>"]);
    assert_eq!(author.trim(), "Dev Eloper <dev@example.com>");
    // The local change is still there, uncommitted.
    assert_eq!(
        git(&repo, &config, &["status", "--porcelain"]).trim(),
        "M src/lib.rs"
    );
    // The branch exists now: the same name again is refused, changing nothing.
    git(&repo, &config, &["switch", "-q", "main"]);
    tlao(&server, &config)
        .args(["apply", &run_id, "--branch", &branch, "--path"])
        .arg(&repo)
        .assert()
        .code(1)
        .stderr(contains("exists already"));
    tlao(&server, &config)
        .args(["apply", &run_id, "--branch", "bad..name", "--path"])
        .arg(&repo)
        .assert()
        .code(2)
        .stderr(contains("not a valid branch name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_change_with_apply_waits_for_the_run_then_applies_its_patch() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);

    tlao(&server, &config)
        .args(["run", "change", "change the readme", "--apply", "--path"])
        .arg(&repo)
        .assert()
        .success()
        .stdout(contains("README.md").and(contains("NEW_FILE.md")))
        .stderr(contains("completed").and(contains("applied the patch of run")));

    assert_eq!(read(&repo, "README.md"), format!("{README}{APPENDED}"));
    assert!(repo.join("NEW_FILE.md").exists());
    assert!(!repo.join("obsolete.txt").exists());

    // Outside a repository it refuses before uploading anything.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    tlao(&server, &config)
        .args(["run", "change", "change it", "--apply", "--path"])
        .arg(&elsewhere)
        .assert()
        .code(2)
        .stderr(contains("is not in a git repository"));
    tlao(&server, &config)
        .args([
            "run",
            "change",
            "change it",
            "--apply",
            "--detach",
            "--path",
        ])
        .arg(&repo)
        .assert()
        .code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_runs_the_same_task_again_and_diff_shows_how_two_patches_differ() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let first = change_run(&server, &config, &repo, "change the readme").await;
    // Another executor for code.change that makes another change.
    let record = serde_json::json!({
        "name": "other",
        "kind": "command",
        "taskTypes": ["code.change"],
        "config": {"command": ["sh", "-c", "printf 'other\\n' > OTHER.md; printf 'x\\n' >> README.md", "other"]},
    });
    tlao(&server, &config)
        .args(["executors", "add", &record.to_string()])
        .assert()
        .success();

    let again = stdout_json(tlao(&server, &config).args(["rerun", &first, "--json"]));
    let other = stdout_json(tlao(&server, &config).args([
        "rerun",
        &first,
        "--executor",
        "other",
        "--json",
    ]));

    let admin = server.admin().await;
    let original = admin.run(&first).await;
    for rerun in [&again, &other] {
        assert_eq!(rerun["status"], "completed", "{rerun:#}");
        assert_eq!(rerun["taskId"], original["taskId"]);
        assert_ne!(rerun["runId"], original["runId"]);
    }
    assert_eq!(again["executor"], "kiro");
    assert_eq!(other["executor"], "other");
    let again = again["runId"].as_str().unwrap();
    let other = other["runId"].as_str().unwrap();

    let same = stdout_json(tlao(&server, &config).args(["diff", &first, again, "--json"]));
    assert_eq!(same["identical"], true, "{same:#}");
    tlao(&server, &config)
        .args(["diff", &first, again])
        .assert()
        .success()
        .stderr(contains("are identical"));

    let differ = stdout_json(tlao(&server, &config).args(["diff", &first, other, "--json"]));
    assert_eq!(differ["identical"], false, "{differ:#}");
    assert_eq!(differ["differ"], serde_json::json!(["README.md"]));
    assert_eq!(
        differ["onlyA"],
        serde_json::json!(["NEW_FILE.md", "obsolete.txt"])
    );
    assert_eq!(differ["onlyB"], serde_json::json!(["OTHER.md"]));
    tlao(&server, &config)
        .args(["diff", &first, other])
        .assert()
        .success()
        .stdout(
            contains("≠ README.md")
                .and(contains("> OTHER.md"))
                .and(contains("+Changed by the kiro-cli stand-in.")),
        );
}

/// The files of a bundle (a `tar.gz` under one directory), by their path inside it.
fn unpack_bundle(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        files.insert(path, content);
    }
    files
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_holds_the_whole_run_and_its_manifest_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let run_id = change_run(&server, &config, &repo, "change the readme").await;
    let out = dir.path().join("bundle.tar.gz");
    // The version the agent's program reported (`tlao dev` probes its executors).
    let admin = server.admin().await;
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let version = loop {
        let (_, executors) = admin.get("/executors").await;
        let kiro = executors["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "kiro")
            .cloned()
            .unwrap();
        if let Some(version) = kiro["availability"]["version"].as_str() {
            break version.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kiro never reported: {kiro:#}"
        );
        tokio::time::sleep(common::POLL).await;
    };
    assert_eq!(version, "kiro-cli 0.0.0 (stand-in)");

    let written = stdout_json(
        tlao(&server, &config)
            .args(["bundle", &run_id, "--with-archive", "--json", "-o"])
            .arg(&out),
    );

    assert_eq!(written["manifest"]["runId"], run_id.as_str());
    let files = unpack_bundle(&std::fs::read(&out).unwrap());
    let file = |name: &str| -> &Vec<u8> {
        files
            .get(&format!("{run_id}/{name}"))
            .unwrap_or_else(|| panic!("no {name} in {:?}", files.keys()))
    };
    let manifest: Value = serde_json::from_slice(file("manifest.json")).unwrap();
    assert_eq!(manifest["format"], "tlao-run-bundle/1");
    assert!(!manifest["serverVersion"].as_str().unwrap().is_empty());
    let listed = manifest["files"].as_array().unwrap();
    // Every file but the manifest is listed with its size and hash, and nothing else is.
    assert_eq!(listed.len() + 1, files.len(), "{manifest:#}");
    for entry in listed {
        let bytes = file(entry["path"].as_str().unwrap());
        assert_eq!(entry["size"], bytes.len() as u64, "{entry}");
        assert_eq!(entry["sha256"], sha256_hex(bytes), "{entry}");
    }
    let run: Value = serde_json::from_slice(file("run.json")).unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["usage"]["kind"], "reported");
    assert!(run["startedAt"].is_string() && run["finishedAt"].is_string());
    let task: Value = serde_json::from_slice(file("task.json")).unwrap();
    assert_eq!(task["spec"]["input"]["prompt"], "change the readme");
    let base = git(&repo, &config, &["rev-parse", "HEAD"]);
    assert_eq!(task["spec"]["input"]["source"]["commit"], base.trim());
    let executor: Value = serde_json::from_slice(file("executor.json")).unwrap();
    assert_eq!(executor["name"], "kiro");
    assert_eq!(executor["record"]["kind"], "kiro");
    assert_eq!(executor["agentVersion"], version.as_str());
    let archive: Value = serde_json::from_slice(file("archive.json")).unwrap();
    assert_eq!(archive["sha256"], sha256_hex(file("archive.tar.gz")));
    assert_eq!(archive["archiveId"], task["spec"]["input"]["archiveId"]);
    let events: Vec<Value> = String::from_utf8(file("events.jsonl").clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["type"] == "log"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "status" && e["status"] == "completed")
    );
    let artifacts: Vec<Value> = serde_json::from_slice(file("artifacts.json")).unwrap();
    for name in ["changes.patch", "transcript.txt"] {
        let artifact = artifacts
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no {name} among {artifacts:#?}"));
        let bytes = file(&format!(
            "artifacts/{}/{name}",
            artifact["artifactId"].as_str().unwrap()
        ));
        assert_eq!(artifact["sha256"], sha256_hex(bytes));
    }

    // The route itself: the run's authorization, and problems with request ids.
    let http = reqwest::Client::new();
    let bundle_url = format!("{}/runs/{run_id}/bundle", server.url);
    let response = http
        .get(&bundle_url)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let plain = unpack_bundle(&response.bytes().await.unwrap());
    assert!(!plain.contains_key(&format!("{run_id}/archive.tar.gz")));
    let plain_manifest: Value =
        serde_json::from_slice(&plain[&format!("{run_id}/manifest.json")]).unwrap();
    // Not asking for the archive is no omission; everything else is there.
    assert!(
        plain_manifest.get("omitted").is_none(),
        "{plain_manifest:#}"
    );
    assert!(manifest.get("omitted").is_none(), "{manifest:#}");
    let (status, user) = admin
        .post("/users", serde_json::json!({"name": "outsider"}))
        .await;
    assert_eq!(status, 201, "{user}");
    let outsider = common::Api::login(&server.url, user["apiKey"].as_str().unwrap()).await;
    for (url, token, expected) in [
        (bundle_url.clone(), outsider.token.as_str(), 403),
        (bundle_url.clone(), "not-a-token", 401),
        (
            format!("{bundle_url}?withArchive=maybe"),
            admin.token.as_str(),
            400,
        ),
        (
            format!("{}/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV/bundle", server.url),
            admin.token.as_str(),
            404,
        ),
    ] {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), expected, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["requestId"], request_id.as_str(), "{problem}");
    }
    // An existing file is not replaced without --force.
    tlao(&server, &config)
        .args(["bundle", &run_id, "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(contains("exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_packed_from_a_subdirectory_comes_back_to_that_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let service = repo.join("service");
    std::fs::create_dir(&service).unwrap();
    std::fs::write(service.join("README.md"), README).unwrap();
    git(&repo, &config, &["add", "-A"]);
    git(&repo, &config, &["commit", "-q", "-m", "a service"]);

    // Packed clean, then edited inside the patch's context: merged three ways there.
    let run_id = change_run(&server, &config, &service, "change the readme").await;
    let edited = README.replace("three", "THREE");
    std::fs::write(service.join("README.md"), &edited).unwrap();
    let merged = stdout_json(
        tlao(&server, &config)
            .args(["apply", &run_id, "--json", "--path"])
            .arg(&service),
    );
    assert_eq!(merged["fit"], "merged", "{merged:#}");
    assert_eq!(read(&service, "README.md"), format!("{edited}{APPENDED}"));
    git(&repo, &config, &["checkout", "-q", "--", "."]);
    git(&repo, &config, &["clean", "-q", "-fd"]);

    // An edit not committed: the archive is packed from a dirty tree, and says so.
    let edited = README.replace("three", "THREE");
    std::fs::write(service.join("README.md"), &edited).unwrap();

    let applied = tlao(&server, &config)
        .args([
            "run",
            "change",
            "change the readme",
            "--apply",
            "--json",
            "--path",
        ])
        .arg(&service)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();

    let applied = String::from_utf8(applied).unwrap();
    assert!(applied.contains("\"fit\": \"clean\""), "{applied}");
    assert!(
        applied.contains("\"path\": \"service/README.md\""),
        "{applied}"
    );
    let admin = server.admin().await;
    let (_, runs) = admin.get("/runs?limit=1").await;
    let (_, task) = admin
        .get(&format!(
            "/tasks/{}",
            runs["items"][0]["taskId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(task["spec"]["input"]["source"]["dirty"], true, "{task:#}");
    assert_eq!(read(&service, "README.md"), format!("{edited}{APPENDED}"));
    assert!(service.join("NEW_FILE.md").exists());
    // The top of the repository is untouched.
    assert_eq!(read(&repo, "README.md"), README);
    assert!(!repo.join("NEW_FILE.md").exists());
    assert!(repo.join("obsolete.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_change_with_branch_commits_what_an_acp_agent_said_about_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = gitconfig(dir.path());
    std::fs::write(
        &config,
        format!(
            "{}[tlao]\n\tcoauthor = Kiro <kiro@example.com>\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let server = DevServer::with_standin(dir.path(), &[]);
    let repo = repository(dir.path(), &config);
    let record = serde_json::json!({
        "name": "kiro-acp",
        "kind": "acp",
        "taskTypes": ["code.change"],
        "config": {"command": ["kiro-cli", "acp", "--trust-all-tools"]},
    });
    tlao(&server, &config)
        .args(["executors", "add", &record.to_string()])
        .assert()
        .success();

    tlao(&server, &config)
        .args([
            "run",
            "change",
            "change the docs",
            "--executor",
            "kiro-acp",
            "--branch",
            "agent-docs",
            "--path",
        ])
        .arg(&repo)
        .assert()
        .success()
        .stderr(contains("committed"));

    assert_eq!(
        git(&repo, &config, &["branch", "--show-current"]).trim(),
        "agent-docs"
    );
    let message = git(&repo, &config, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("change the docs\n\nThe agent's summary:\n\n"),
        "{message}"
    );
    assert!(message.contains("Created NEW_FILE.md."), "{message}");
    assert!(message.contains("Tlao-Executor: kiro-acp"), "{message}");
    // The trailer from `git config tlao.coauthor`, in the commit's trailer block.
    let trailers = git(
        &repo,
        &config,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Co-authored-by,valueonly)",
        ],
    );
    assert_eq!(trailers.trim(), "Kiro <kiro@example.com>");
    assert_eq!(
        git(
            &repo,
            &config,
            &["show", "--name-status", "--format=", "HEAD"]
        )
        .trim(),
        "A\tNEW_FILE.md"
    );
}
