//! `tlao admin`: one-off operator steps against the configured storage, never side
//! effects of `tlao serve` starting:
//!
//! - `init-aws` creates the DynamoDB table and the S3 bucket (idempotent);
//! - `bootstrap` creates the first administrator and prints its API key (or stores it
//!   in a Secrets Manager secret), once, and the default workspace and executors.

use std::sync::Arc;

use anyhow::{Context, bail};
use tlao_adapters_local::{FsBlobStore, LocalEventBus, SqliteTable};
use tlao_domain::{Name, UserId};
use tlao_orchestrator::{Caller, Services};
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
    /// Create the first administrator and print its API key (once: keep it), its
    /// default workspace and the default executors (kiro, shell).
    ///
    /// Idempotent: what exists is left as it is; when the administrator exists, prints
    /// no key and says so, unless --new-key issues it a new key. Examples:
    /// KEY=$(tlao admin bootstrap);
    /// tlao admin bootstrap --key-secret arn:aws:secretsmanager:...:secret:tlao-admin-key
    Bootstrap {
        /// Issue a new key to the existing administrator (the old one keeps working).
        #[arg(long)]
        new_key: bool,
        /// Store the issued key in this existing AWS Secrets Manager secret (name or
        /// ARN, in the table's region) instead of printing it: how a deployment runs
        /// the bootstrap without its key in any log.
        #[arg(long, value_name = "SECRET", value_parser = secret_id)]
        key_secret: Option<String>,
    },
}

/// A Secrets Manager secret id as `--key-secret` takes it: a name or an ARN.
fn secret_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 2048
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a Secrets Manager secret name or ARN (letters, digits and /_+=.@-: only)"
        ))
    }
}

/// Runs an admin command.
pub async fn run(args: AdminArgs, settings: Settings) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::InitAws => crate::aws::init(&settings.storage, &settings.blobs).await,
        AdminCommand::Bootstrap {
            new_key,
            key_secret,
        } => bootstrap(&settings, new_key, key_secret.as_deref()).await,
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

async fn bootstrap(
    settings: &Settings,
    new_key: bool,
    key_secret: Option<&str>,
) -> anyhow::Result<()> {
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
    let result = issue(&services, settings, new_key, key_secret).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn issue(
    services: &Services,
    settings: &Settings,
    new_key: bool,
    key_secret: Option<&str>,
) -> anyhow::Result<()> {
    let name = Name::try_from("admin".to_owned()).context("the admin name")?;
    let admin_id = if let Some(issued) = services.users.bootstrap_admin(name).await? {
        let admin_id = issued.user.user_id;
        eprintln!("created the administrator {admin_id}");
        deliver(settings, &admin_id, &issued.api_key, key_secret).await?;
        admin_id
    } else {
        let admin_id = services
            .users
            .bootstrap_admin_id()
            .await?
            .context("the table says an administrator was created but names none")?;
        if new_key {
            let key = services.users.issue_key(&admin_id).await?;
            eprintln!("issued a new API key to the administrator {admin_id}");
            deliver(settings, &admin_id, &key, key_secret).await?;
        } else {
            eprintln!(
                "the administrator {admin_id} already exists; its key was shown when it was created (--new-key issues another)"
            );
        }
        admin_id
    };
    let admin = Caller {
        user_id: admin_id,
        admin: true,
    };
    let defaults = crate::bootstrap::ensure_defaults(services, &admin).await?;
    eprintln!(
        "workspace default {}: {}",
        defaults.workspace_id,
        if defaults.workspace_created {
            "created"
        } else {
            "already there"
        }
    );
    if defaults.registered.is_empty() {
        eprintln!("default executors: already registered");
    } else {
        let names: Vec<String> = defaults
            .registered
            .iter()
            .map(ToString::to_string)
            .collect();
        eprintln!("default executors registered: {}", names.join(", "));
    }
    Ok(())
}

/// Hands the administrator's new `key` over: into the secret `key_secret` when given,
/// else on standard output (shown once).
async fn deliver(
    settings: &Settings,
    admin_id: &UserId,
    key: &str,
    key_secret: Option<&str>,
) -> anyhow::Result<()> {
    match key_secret {
        Some(secret) => {
            crate::aws::store_secret(&settings.storage, secret, key)
                .await
                .with_context(|| {
                    format!(
                        "the administrator {admin_id} has a new API key that could not be stored; \
                         run `tlao admin bootstrap --new-key --key-secret {secret}` once the secret \
                         is writable"
                    )
                })?;
            eprintln!("stored its API key in the secret {secret}");
        }
        None => {
            eprintln!("its API key (shown once):");
            println!("{key}");
        }
    }
    Ok(())
}
