//! `tlao dev`: the whole system on one machine, with nothing to configure. Embedded
//! SQLite and files under the data dir, an administrator and a default workspace made on
//! first start, and a CLI login stored so `tlao run ...` works at once.

use std::path::PathBuf;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::bootstrap;
use crate::launcher;
use crate::profile::{Credentials, DEFAULT_PROFILE, Profile};
use crate::secrets;
use crate::server::Server;
use crate::settings::Settings;
use crate::shutdown;

/// Options of `tlao dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where to listen, e.g. 127.0.0.1:7411 (port 0 picks a free port).
    #[arg(long)]
    pub addr: Option<std::net::SocketAddr>,
    /// Where state lives [default: $TLAO_DATA_DIR or $XDG_DATA_HOME/tlao].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Do not store a CLI login for the administrator.
    #[arg(long)]
    pub no_login: bool,
}

/// Runs until SIGTERM or Ctrl-C, then stops gracefully ([`shutdown`]).
pub async fn run(args: DevArgs, mut settings: Settings) -> anyhow::Result<()> {
    if let Some(addr) = args.addr {
        settings.server.addr = addr;
    }
    if let Some(dir) = args.data_dir {
        settings.data_dir = Some(dir);
    }
    // Secrets live in this process's memory and environment: /proc/<pid>/environ and
    // mem are closed to the agents (and any other process of the user).
    if let Err(error) = tlao_sandbox::make_non_dumpable() {
        tracing::warn!(%error, "cannot make the server non-dumpable");
    }
    let data_dir = settings.data_dir()?;
    create_private_dir(&data_dir)?;
    let sandbox = launcher::sandbox_status(&settings, false)?;

    if settings.worker_token.is_none() {
        settings.worker_token = Some(secrets::load_or_create(&data_dir.join("worker.token"))?);
    }
    let mut server = Server::open(&settings, true).await?;
    let boot = bootstrap::ensure(&server.services, &data_dir).await?;
    let launcher = launcher::process_launcher(&settings, &server.public_url, &server.services)?;
    let background = server
        .start_background(&settings, Some(Arc::new(launcher)))
        .await?;
    let services = server.services.clone();
    if !args.no_login {
        store_login(&server.public_url, &boot)?;
    }
    let url = server.public_url.clone();
    let running = server.start()?;
    println!("TLÁO Codex dev server");
    println!("  data dir:   {}", data_dir.display());
    println!("  admin key:  {}", data_dir.join("admin.key").display());
    println!("  workspace:  {}", boot.workspace_id);
    println!("  {sandbox}");
    println!("Console: {url}/console");
    println!("Ready: {url}");
    let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
    shutdown::serve_until_signalled(running, services, background, grace).await?;
    println!("Stopped.");
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Stores (or refreshes) the default profile so the CLI talks to this server as admin.
fn store_login(url: &str, boot: &bootstrap::Boot) -> anyhow::Result<()> {
    let mut credentials = Credentials::load()?;
    let profile = credentials
        .profiles
        .entry(DEFAULT_PROFILE.to_owned())
        .or_insert_with(Profile::default);
    if profile.api_url != url || profile.api_key.as_deref() != Some(&boot.admin_key) {
        *profile = Profile {
            api_url: url.to_owned(),
            api_key: Some(boot.admin_key.clone()),
            token: None,
            token_expires_at: None,
            workspace_id: Some(boot.workspace_id.to_string()),
        };
        credentials.save()?;
    }
    Ok(())
}
