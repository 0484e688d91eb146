//! A hostile agent under `tlao dev`: a `command` executor whose script tries to read
//! the server's secrets, list other runs, look into the worker's and the server's
//! `/proc` entries, signal them and write outside its directories. Every attempt must
//! fail, no secret may reach its report or its environment, and its run must still
//! complete with its normal output, while what its executor was granted stays readable
//! (also through its per-run `HOME`). Needs Landlock (this machine: ABI 7).

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::{DevServer, path_with_standin};
use serde_json::json;

/// Each probe writes `name: ALLOWED|refused <first output>` to `report.txt`.
const SCRIPT: &str = r#"
out=$1; data=$2; work_root=$3; server=$4; granted=$5
report="$out/report.txt"
probe() {
    name=$1; shift
    if "$@" > "$out/.probe" 2>&1; then verdict=ALLOWED; else verdict=refused; fi
    printf '%s: %s %s\n' "$name" "$verdict" "$(head -c 300 "$out/.probe" | tr '\n\0' '  ')" >> "$report"
    rm -f "$out/.probe"
}
probe read_secret_key cat "$data/secret.key"
probe read_admin_key cat "$data/admin.key"
probe read_worker_token cat "$data/worker.token"
probe read_database head -c 64 "$data/tlao.db"
probe list_data_dir ls "$data"
probe list_work_root ls "$work_root"
probe list_run_dir ls "$out/.."
probe read_worker_environ cat "/proc/$PPID/environ"
probe read_server_environ cat "/proc/$server/environ"
probe read_worker_mem head -c 16 "/proc/$PPID/mem"
probe signal_worker kill -0 "$PPID"
probe signal_server kill -0 "$server"
probe write_tmp touch "/tmp/tlao-sandbox-escape-$$"
probe write_data_dir touch "$data/escape"
probe write_base touch "$out/../base/escape"
probe write_home_of_user touch "$granted/../escape"
probe read_granted cat "$granted/config"
probe read_granted_through_home cat "$HOME/.agent/login"
probe write_own_home touch "$HOME/scratch"
probe write_own_tmp touch "$TMPDIR/scratch"
env > "$out/env.txt"
printf '# done\nthe hostile agent finished its normal work\n' > "$out/result.md"
"#;

/// The probes that must fail.
const REFUSED: &[&str] = &[
    "read_secret_key",
    "read_admin_key",
    "read_worker_token",
    "read_database",
    "list_data_dir",
    "list_work_root",
    "list_run_dir",
    "read_worker_environ",
    "read_server_environ",
    "read_worker_mem",
    "signal_worker",
    "signal_server",
    "write_tmp",
    "write_data_dir",
    "write_base",
    "write_home_of_user",
];
/// The probes that must work.
const ALLOWED: &[&str] = &[
    "read_granted",
    "read_granted_through_home",
    "write_own_home",
    "write_own_tmp",
];

const AWS_CANARY: &str = "aws-canary-4f1c2b7e9d";
const GRANTED_CANARY: &str = "granted-config-8c2e";
const LOGIN_CANARY: &str = "agent-login-5d1a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_reads_no_secret_touches_no_process_and_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    // What the executor is granted: a directory outside everything else, and one under
    // the (real) HOME of the server, which the agent reaches through its own HOME.
    let granted = dir_path.join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("config"), GRANTED_CANARY).unwrap();
    let real_home = dir_path.join("realhome");
    std::fs::create_dir_all(real_home.join(".agent")).unwrap();
    std::fs::write(real_home.join(".agent/login"), LOGIN_CANARY).unwrap();
    // The directory is granted by the operator (a worker setting, for every agent), the
    // login by the executor's record (`~/...`, as records say it).
    let read_grants = granted.display().to_string();
    let path = path_with_standin();
    let real_home_text = real_home.display().to_string();
    let server = DevServer::start(
        &dir_path.join("data"),
        &dir_path.join("config"),
        &[
            ("PATH", path.as_str()),
            ("HOME", real_home_text.as_str()),
            ("AWS_SECRET_ACCESS_KEY", AWS_CANARY),
            ("TLAO_SANDBOX__READ", read_grants.as_str()),
        ],
    );
    let admin = server.admin().await;
    let ws = admin.create_workspace("hostile").await;
    let data = server.data_dir.canonicalize().unwrap();
    let work_root = server.work_root();
    let server_pid = server.pid().unwrap().to_string();
    let (code, executor) = admin
        .post(
            "/executors",
            json!({
                "name": "hostile",
                "kind": "command",
                "taskTypes": ["doc.write"],
                "config": {"command": [
                    "sh", "-c", SCRIPT, "hostile", "{outdir}",
                    data.to_str().unwrap(), work_root.to_str().unwrap(),
                    server_pid, granted.to_str().unwrap()
                ]},
                // The data dir is asked for too: a grant that would open the server's own
                // files is dropped, and the run's log says so.
                "sandbox": {"readPaths": ["~/.agent", data.to_str().unwrap()]}
            }),
        )
        .await;
    assert_eq!(code, 201, "{executor}");

    let run_id = admin
        .start_run(
            json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "look around"}}),
            Some("hostile"),
        )
        .await;
    let run = admin.await_final(&run_id).await;
    assert_eq!(run["status"], "completed", "{run:#}");

    let events = admin.events(&run_id).await;
    assert!(
        events.iter().any(|(_, e)| e
            .to_string()
            .contains("the agent runs sandboxed (Landlock ABI")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, e)| e.to_string().contains("not granted to the agent: ")),
        "the data dir grant was not dropped with a line saying so: {events:?}"
    );
    let (_, result) = admin.artifact_bytes(&run_id, "result.md").await;
    assert!(String::from_utf8_lossy(&result).contains("finished its normal work"));
    let (_, report) = admin.artifact_bytes(&run_id, "report.txt").await;
    let report = String::from_utf8(report).unwrap();
    let (_, env) = admin.artifact_bytes(&run_id, "env.txt").await;
    let env = String::from_utf8(env).unwrap();
    eprintln!("report.txt:\n{report}");

    let verdict = |name: &str| -> &str {
        report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in the report:\n{report}"))
    };
    for name in REFUSED {
        assert!(
            verdict(name).starts_with("refused"),
            "{name} was not refused: {}",
            verdict(name)
        );
    }
    for name in ALLOWED {
        assert!(
            verdict(name).starts_with("ALLOWED"),
            "{name} was refused: {}",
            verdict(name)
        );
    }
    assert!(verdict("read_granted").contains(GRANTED_CANARY));
    assert!(verdict("read_granted_through_home").contains(LOGIN_CANARY));

    // No secret reached the report or the agent's environment.
    let mut secrets = vec![AWS_CANARY.to_owned()];
    for file in ["secret.key", "admin.key", "worker.token"] {
        let value = std::fs::read_to_string(data.join(file)).unwrap();
        assert!(value.trim().len() >= 16, "{file} holds a real secret");
        secrets.push(value.trim().to_owned());
    }
    for secret in &secrets {
        assert!(
            !report.contains(secret.as_str()),
            "a secret leaked into the report"
        );
        assert!(
            !env.contains(secret.as_str()),
            "a secret leaked into the environment"
        );
    }
    for name in [
        "TLAO_WORKER_TOKEN",
        "TLAO_AUTH__SECRET",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(!env.contains(&format!("{name}=")), "{name} in:\n{env}");
    }
    let home = env
        .lines()
        .find_map(|l| l.strip_prefix("HOME="))
        .unwrap_or_else(|| panic!("no HOME in:\n{env}"));
    assert!(
        Path::new(home).starts_with(&work_root) && home.ends_with("/home"),
        "HOME={home}"
    );
    assert!(
        env.lines()
            .any(|l| l.starts_with("TMPDIR=") && l.ends_with("/tmp"))
    );

    // Nothing was written where the agent was refused, and the server is unharmed.
    assert!(!data.join("escape").exists());
    assert!(!dir_path.join("escape").exists());
    let escaped: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tlao-sandbox-escape-")
        })
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    let (code, _) = admin.get("/readyz").await;
    assert_eq!(code, 200);
    let again = admin
        .run_prompt(&ws, "doc.write", "write a short overview", None)
        .await;
    assert_eq!(admin.await_final(&again).await["status"], "completed");
}
