//! `tlao admin`: one-off operator steps against the configured storage, never side
//! effects of `tlao serve` starting:
//!
//! - `init-aws` creates the DynamoDB table and the S3 bucket (idempotent);
//! - `bootstrap` creates the first administrator and prints its API key, once.

use std::sync::Arc;

use anyhow::{Context, bail};
use tlao_adapters_local::{FsBlobStore, LocalEventBus, SqliteTable};
use tlao_domain::Name;
use tlao_orchestrator::Services;
use tlao_ports::{SystemClock, Table};

use crate::settings::{Settings, StorageKind};

/// Options of `tlao admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Create the DynamoDB table and the S3 bucket the configuration names, when missing.
    ///
    /// Idempotent: what exists is left as it is. Example:
    /// TLAO_STORAGE__TABLE=tlao TLAO_BLOBS__BUCKET=tlao-artifacts tlao admin init-aws
    InitAws,
    /// Create the first administrator and print its API key (once: keep it).
    ///
    /// Idempotent: when an administrator exists, prints nothing and says so, unless
    /// --new-key issues it a new key. Example: KEY=$(tlao admin bootstrap)
    Bootstrap {
        /// Issue a new key to the existing administrator (the old one keeps working).
        #[arg(long)]
        new_key: bool,
    },
}

/// Runs an admin command.
pub async fn run(args: AdminArgs, settings: Settings) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::InitAws => crate::aws::init(&settings.storage, &settings.blobs).await,
        AdminCommand::Bootstrap { new_key } => bootstrap(&settings, new_key).await,
    }
}

async fn open_table(settings: &Settings) -> anyhow::Result<Arc<dyn Table>> {
    Ok(match settings.storage.kind {
        StorageKind::Sqlite => {
            let path = match &settings.storage.path {
                Some(path) => path.clone(),
                None => settings.data_dir()?.join("tlao.db"),
            };
            Arc::new(
                SqliteTable::open(&path)
                    .await
                    .with_context(|| format!("opening the SQLite table at {}", path.display()))?,
            )
        }
        StorageKind::Memory => bail!(
            "storage.kind = \"memory\" lives inside one server process: there is nothing to bootstrap"
        ),
        StorageKind::Dynamodb => crate::aws::open_table(&settings.storage).await?,
    })
}

async fn bootstrap(settings: &Settings, new_key: bool) -> anyhow::Result<()> {
    let table = open_table(settings).await?;
    // Users live in the table alone; the blob store is never touched here, so a scratch
    // one stands in for whatever the server is configured with.
    let scratch = std::env::temp_dir().join(format!("tlao-admin-{}", std::process::id()));
    let blobs = FsBlobStore::new(
        scratch.clone(),
        "http://unused.invalid".to_owned(),
        rand::random::<[u8; 32]>().to_vec(),
        Arc::new(SystemClock),
    )
    .context("preparing a scratch blob store")?;
    let services = Services::new(
        table,
        Arc::new(blobs),
        Arc::new(SystemClock),
        settings.guardrails,
        Arc::new(LocalEventBus::new()),
    );
    let result = issue(&services, new_key).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn issue(services: &Services, new_key: bool) -> anyhow::Result<()> {
    let name = Name::try_from("admin".to_owned()).context("the admin name")?;
    if let Some(issued) = services.users.bootstrap_admin(name).await? {
        eprintln!(
            "created the administrator {}; its API key (shown once):",
            issued.user.user_id
        );
        println!("{}", issued.api_key);
        return Ok(());
    }
    let admin_id = services
        .users
        .bootstrap_admin_id()
        .await?
        .context("the table says an administrator was created but names none")?;
    if new_key {
        let key = services.users.issue_key(&admin_id).await?;
        eprintln!("issued a new API key to the administrator {admin_id} (shown once):");
        println!("{key}");
    } else {
        eprintln!(
            "the administrator {admin_id} already exists; its key was shown when it was created (--new-key issues another)"
        );
    }
    Ok(())
}
