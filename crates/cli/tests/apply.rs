//! The change comes home: `tlao run change` in a git repository, then `tlao apply`
//! (clean, 3-way, refused on conflicts, `--branch`), `tlao run change --apply`,
//! `tlao bundle`, `tlao rerun` and `tlao diff`, each against a real `tlao dev` whose
//! `kiro` executor is the stand-in `kiro-cli` (its prompt word `change` appends a line
//! to README.md, creates NEW_FILE.md and deletes obsolete.txt).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
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
