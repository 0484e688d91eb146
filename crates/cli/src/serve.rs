//! `tlao serve`: the API and orchestrator alone, on whatever adapters the configuration
//! names. Nothing is created implicitly: secrets and storage must exist.

use anyhow::Context;

use crate::launcher;
use crate::server::Server;
use crate::settings::Settings;

/// Runs until Ctrl-C.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let server = Server::open(&settings, false).await?;
    let launcher = launcher::configured(&settings, &server.public_url).await?;
    server.start_background(&settings, launcher).await?;
    let url = server.public_url.clone();
    let running = server.start()?;
    tracing::info!(%url, "serving");
    println!("Ready: {url}");
    running
        .await
        .context("the HTTP server stopped with an error")?;
    Ok(())
}
