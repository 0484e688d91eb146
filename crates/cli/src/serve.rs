//! `tlao serve`: the API and orchestrator alone, on whatever adapters the configuration
//! names. Nothing is created implicitly: secrets and storage must exist.

use std::time::Duration;

use crate::launcher;
use crate::server::Server;
use crate::settings::Settings;
use crate::shutdown;

/// Runs until SIGTERM or Ctrl-C, then stops gracefully ([`shutdown`]).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Secrets live in this process's memory and environment: /proc/<pid>/environ and
    // mem are closed to other processes of the user.
    if let Err(error) = tlao_sandbox::make_non_dumpable() {
        tracing::warn!(%error, "cannot make the server non-dumpable");
    }
    let mut server = Server::open(&settings, false).await?;
    let launcher = launcher::configured(&settings, &server.public_url, &server.services).await?;
    let background = server.start_background(&settings, launcher).await?;
    let services = server.services.clone();
    let url = server.public_url.clone();
    let running = server.start()?;
    tracing::info!(%url, "serving");
    println!("Ready: {url}");
    let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
    shutdown::serve_until_signalled(running, services, background, grace).await?;
    tracing::info!("stopped");
    Ok(())
}
