//! The worker launcher the configuration names (`[launcher]`): what the dispatcher uses
//! to start one worker per leased run. `tlao dev` always starts local processes;
//! `tlao serve` starts none unless told (`kind = "process"` or `"ecs"`).

use std::sync::Arc;

use anyhow::Context;
use tlao_adapters_local::{Handover, ProcessLauncher};
use tlao_ports::{Launch, RunLauncher};

use tlao_api::{AgentSandbox, Handovers};
use tlao_orchestrator::{ExecutorRegistry, Services, Sighting};
use tlao_worker_kiro::availability;

use crate::settings::{LauncherKind, Settings};

/// A launcher of `tlao worker --run ID --lease ID` processes of this binary, reaching the
/// API at `api_url` with the server's worker token, at most `worker.max_local_workers`
/// at once, unpacking runs under `worker.work_root` (`<data_dir>/work` by default), and
/// recording each running worker in `<data_dir>/workers` so a restart after a crash
/// fails the runs of gone workers at once, and keeping `worker.standby` workers started
/// ahead of their runs, each handed its run by `services` without a request.
pub fn process_launcher(
    settings: &Settings,
    api_url: &str,
    services: &Arc<Services>,
) -> anyhow::Result<ProcessLauncher> {
    let data_dir = settings.data_dir()?;
    let work_root = match &settings.worker.work_root {
        Some(dir) => dir.clone(),
        None => data_dir.join("work"),
    };
    let mut env = vec![
        ("TLAO_API_URL".to_owned(), api_url.to_owned()),
        (
            "TLAO_WORKER_TOKEN".to_owned(),
            settings.worker_token.clone().unwrap_or_default(),
        ),
        (
            "TLAO_SANDBOX__MODE".to_owned(),
            settings.sandbox.mode_name().to_owned(),
        ),
    ];
    let sandbox = &settings.sandbox;
    for (name, value) in [
        ("TLAO_SANDBOX__READ", joined(&sandbox.read)),
        ("TLAO_SANDBOX__WRITE", joined(&sandbox.write)),
        ("TLAO_SANDBOX__PASS_ENV", sandbox.pass_env.join(",")),
    ] {
        if !value.is_empty() {
            env.push((name.to_owned(), value));
        }
    }
    Ok(ProcessLauncher::new(
        std::env::current_exe().context("finding the tlao binary to start workers with")?,
        vec![
            "worker".into(),
            "--work-root".into(),
            work_root.display().to_string(),
            "--protect".into(),
            data_dir.display().to_string(),
        ],
        env,
        settings.worker.max_local_workers,
    )
    .with_records(data_dir.join("workers"))
    .with_handover(Arc::new(ServerHandover(Handovers::new(
        services.clone(),
        std::time::Duration::from_secs(settings.worker.heartbeat_timeout_seconds),
    ))))
    .with_standby(settings.worker.standby))
}

/// Hands a standby worker its run's assignment and TaskSpec, read from the services.
struct ServerHandover(Handovers);

#[async_trait::async_trait]
impl Handover for ServerHandover {
    async fn document(&self, launch: &Launch) -> Option<String> {
        match self.0.document(&launch.run_id, &launch.lease_id).await {
            Ok(document) => Some(document),
            Err(error) => {
                // The worker asks the API itself, which answers with the same error.
                tracing::warn!(run_id = %launch.run_id, %error, "cannot write a run's handover");
                None
            }
        }
    }
}

/// `paths`, comma-separated, as `tlao worker` reads its `TLAO_SANDBOX__*` lists.
fn joined(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// What `tlao dev` and `tlao serve` say about their agents' sandbox: `Ok` with a line
/// to print, or `Err` when local agents must not be started (`tlao serve` where no
/// sandbox is possible and `sandbox.mode = "off"` was not set explicitly).
pub fn sandbox_status(settings: &Settings, multi_user: bool) -> anyhow::Result<String> {
    use crate::settings::SandboxModeSetting;
    let support = tlao_sandbox::support();
    if let tlao_sandbox::Support::Unavailable { reason } = support
        && multi_user
        && settings.sandbox.mode != Some(SandboxModeSetting::Off)
    {
        anyhow::bail!(
            "no sandbox is possible for local agents ({reason}): they would read the server's secrets and every user's runs. Run agents elsewhere (launcher.kind = \"ecs\" or \"none\" with `tlao worker` on other machines), use a kernel with Landlock, or set sandbox.mode = \"off\" (TLAO_SANDBOX__MODE=off) to accept it"
        );
    }
    Ok(match agent_sandbox_with(settings, support) {
        AgentSandbox::Sandboxed(text) => format!("agents:     sandboxed ({text})"),
        AgentSandbox::NotSandboxed(text) => format!("agents:     {text}"),
    })
}

/// Whether the agents this machine starts are sandboxed, as the dashboard shows it.
pub fn agent_sandbox(settings: &Settings) -> AgentSandbox {
    agent_sandbox_with(settings, tlao_sandbox::support())
}

fn agent_sandbox_with(settings: &Settings, support: &tlao_sandbox::Support) -> AgentSandbox {
    use crate::settings::SandboxModeSetting;
    match (settings.sandbox.mode, support) {
        (Some(SandboxModeSetting::Off), _) => AgentSandbox::NotSandboxed(
            "NOT sandboxed (sandbox.mode = \"off\"); they can read what this user can".to_owned(),
        ),
        (_, tlao_sandbox::Support::Landlock { abi }) => {
            AgentSandbox::Sandboxed(format!("Landlock ABI {abi}"))
        }
        (Some(SandboxModeSetting::Required), tlao_sandbox::Support::Unavailable { reason }) => {
            AgentSandbox::NotSandboxed(format!(
                "cannot be sandboxed ({reason}); sandbox.mode = \"required\", so every run fails"
            ))
        }
        (_, tlao_sandbox::Support::Unavailable { reason }) => AgentSandbox::NotSandboxed(format!(
            "NOT sandboxed: {reason}; they can read what this user can"
        )),
    }
}

/// Probes every registered executor's program against this machine's `PATH` now and
/// every `every`, and records the found ones as seen by this server's local workers
/// (which exist only while a run does, so they cannot report before one). Runs until
/// the process ends.
pub async fn probe_locally(executors: Arc<ExecutorRegistry>, every: std::time::Duration) {
    let worker = format!("local-{}", availability::default_worker_id());
    let worker: String = worker.chars().take(64).collect();
    loop {
        match executors.list().await {
            Ok(registered) => {
                let report = availability::probe(&worker, &registered).await;
                let sightings: Vec<Sighting> = report
                    .executors
                    .into_iter()
                    .filter(|probe| probe.found)
                    .map(|probe| Sighting {
                        executor: probe.name,
                        version: probe.version,
                    })
                    .collect();
                if let Err(error) = executors.record_seen(&worker, &sightings).await {
                    tracing::warn!(%error, "cannot record which executors can run here");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list executors to probe them"),
        }
        tokio::time::sleep(every).await;
    }
}

/// The launcher `[launcher]` names for a server reachable at `public_url`, or `None`
/// when workers lease runs themselves.
pub async fn configured(
    settings: &Settings,
    public_url: &str,
    services: &Arc<Services>,
) -> anyhow::Result<Option<Arc<dyn RunLauncher>>> {
    let kind = match settings.launcher.kind {
        LauncherKind::None => return Ok(None),
        LauncherKind::Process => "process",
        LauncherKind::Ecs => "ecs",
    };
    // Without it the server refuses every worker: each run would start one for nothing.
    if settings.worker_token.as_deref().is_none_or(str::is_empty) {
        anyhow::bail!(
            "launcher.kind = \"{kind}\" needs the worker token its workers authenticate with (worker_token, TLAO_WORKER_TOKEN)"
        );
    }
    if settings.launcher.kind == LauncherKind::Process {
        // `tlao serve` is the server for several users (users can be added at any
        // time), so its local agents must be sandboxed unless the operator said "off".
        let status = sandbox_status(settings, true)?;
        tracing::info!(sandbox = %status.trim_start_matches("agents:").trim(), "local agents");
        return Ok(Some(Arc::new(process_launcher(
            settings, public_url, services,
        )?)));
    }
    let ecs = &settings.launcher.ecs;
    let api_url = match &ecs.api_url {
        _ if ecs.api_url_from_task_definition => None,
        Some(url) => Some(url.as_str()),
        None if reachable_from_elsewhere(public_url) => Some(public_url),
        None => anyhow::bail!(
            "launcher.kind = \"ecs\": the tasks cannot reach the API at {public_url}; set launcher.ecs.api_url (TLAO_LAUNCHER__ECS__API_URL) or server.public_url (TLAO_SERVER__PUBLIC_URL) to an address they can reach"
        ),
    };
    Ok(Some(crate::aws::open_launcher(ecs, api_url).await?))
}

/// Whether `url` names a host other machines could reach: not loopback, not the
/// unspecified address a server binds to.
fn reachable_from_elsewhere(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback() && !ip.is_unspecified(),
        Err(_) => !host.is_empty() && !host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::reachable_from_elsewhere;

    #[test]
    fn loopback_and_unspecified_addresses_are_not_reachable_from_a_task() {
        for url in [
            "http://127.0.0.1:7411",
            "http://0.0.0.0:7411",
            "http://localhost:7411",
            "http://[::1]:7411",
            "http://[::]:7411",
        ] {
            assert!(!reachable_from_elsewhere(url), "{url}");
        }
        for url in [
            "https://tlao.example.com",
            "http://10.0.1.5:7411",
            "http://api.internal:7411/",
            "http://[fd00::5]:7411",
        ] {
            assert!(reachable_from_elsewhere(url), "{url}");
        }
    }
}
