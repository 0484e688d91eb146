//! The worker launcher the configuration names (`[launcher]`): what the dispatcher uses
//! to start one worker per leased run. `tlao dev` always starts local processes;
//! `tlao serve` starts none unless told (`kind = "process"` or `"ecs"`).

use std::sync::Arc;

use anyhow::Context;
use tlao_adapters_local::ProcessLauncher;
use tlao_ports::RunLauncher;

use crate::settings::{LauncherKind, Settings};

/// A launcher of `tlao worker --run ID --lease ID` processes of this binary, reaching the
/// API at `api_url` with the server's worker token, at most `worker.max_local_workers`
/// at once, unpacking runs under `worker.work_root` (`<data_dir>/work` by default).
pub fn process_launcher(settings: &Settings, api_url: &str) -> anyhow::Result<ProcessLauncher> {
    let work_root = match &settings.worker.work_root {
        Some(dir) => dir.clone(),
        None => settings.data_dir()?.join("work"),
    };
    Ok(ProcessLauncher::new(
        std::env::current_exe().context("finding the tlao binary to start workers with")?,
        vec![
            "worker".into(),
            "--work-root".into(),
            work_root.display().to_string(),
        ],
        vec![
            ("TLAO_API_URL".into(), api_url.to_owned()),
            (
                "TLAO_WORKER_TOKEN".into(),
                settings.worker_token.clone().unwrap_or_default(),
            ),
        ],
        settings.worker.max_local_workers,
    ))
}

/// The launcher `[launcher]` names for a server reachable at `public_url`, or `None`
/// when workers lease runs themselves.
pub async fn configured(
    settings: &Settings,
    public_url: &str,
) -> anyhow::Result<Option<Arc<dyn RunLauncher>>> {
    match settings.launcher.kind {
        LauncherKind::None => Ok(None),
        LauncherKind::Process => {
            if settings.worker_token.as_deref().is_none_or(str::is_empty) {
                anyhow::bail!(
                    "launcher.kind = \"process\" needs the worker token its workers authenticate with (worker_token, TLAO_WORKER_TOKEN)"
                );
            }
            Ok(Some(Arc::new(process_launcher(settings, public_url)?)))
        }
        LauncherKind::Ecs => {
            let ecs = &settings.launcher.ecs;
            let api_url = ecs.api_url.as_deref().unwrap_or(public_url);
            Ok(Some(crate::aws::open_launcher(ecs, api_url).await?))
        }
    }
}
