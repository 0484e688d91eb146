//! What a fresh deployment starts with: an administrator, a default workspace and the
//! default executors, created once and found again on every later start of `tlao dev`
//! or run of `tlao admin bootstrap`.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use tlao_domain::{ExecutorDescriptor, ExecutorName, Name, WorkspaceId};
use tlao_orchestrator::{Caller, Services};

use crate::secrets;

/// What a started `tlao dev` hands the developer.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The administrator's API key (also in `admin.key`).
    pub admin_key: String,
    /// The administrator's default workspace.
    pub workspace_id: WorkspaceId,
}

/// The executors registered on first start: Kiro for every task type (the `kiro`
/// preset of `crates/wire/presets/presets.json`, with the paths and variables its login
/// needs granted), and a `command` example that shows how any CLI becomes an executor
/// by record alone.
pub fn default_executors() -> anyhow::Result<Vec<ExecutorDescriptor>> {
    let kiro = tlao_sdk::wire::presets::record("kiro", None)
        .context("the built-in presets have no `kiro` preset")?;
    let shell = json!({
        "name": "shell",
        "kind": "command",
        "taskTypes": ["doc.write"],
        "config": {
            "command": ["sh", "-c", "printf '%s\\n' \"$1\" | tee \"$2/prompt.txt\"", "tlao-shell", "{prompt}", "{outdir}"],
            "promptVia": "arg"
        }
    });
    [kiro, shell]
        .iter()
        .map(|record| {
            ExecutorDescriptor::parse(record)
                .map_err(|e| anyhow::anyhow!("a built-in executor record is invalid: {e}"))
        })
        .collect()
}

/// What [`ensure_defaults`] found or created.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The administrator's default workspace.
    pub workspace_id: WorkspaceId,
    /// Whether that workspace was created now.
    pub workspace_created: bool,
    /// The default executors registered now (those already registered, under the same
    /// names, are left as they are).
    pub registered: Vec<ExecutorName>,
}

/// Creates, when missing, the default workspace of the administrator `admin` (named
/// `default`) and the [`default_executors`]. Idempotent: a second call creates nothing.
pub async fn ensure_defaults(services: &Services, admin: &Caller) -> anyhow::Result<Defaults> {
    let (workspace_id, workspace_created) = match services.workspaces.default_for(admin).await? {
        Some(ws) => (ws, false),
        None => (
            services
                .workspaces
                .create(admin, "default")
                .await?
                .workspace_id,
            true,
        ),
    };
    let before: Vec<ExecutorName> = services
        .executors
        .reload()
        .await?
        .iter()
        .map(|executor| executor.name.clone())
        .collect();
    let mut registered = Vec::new();
    for executor in default_executors()? {
        if !before.contains(&executor.name) {
            registered.push(executor.name.clone());
        }
        services.executors.ensure(executor).await?;
    }
    services.executors.reload().await?;
    Ok(Defaults {
        workspace_id,
        workspace_created,
        registered,
    })
}

/// Creates what is missing and returns the admin key and default workspace.
pub async fn ensure(services: &Services, data_dir: &Path) -> anyhow::Result<Boot> {
    let key_file = data_dir.join("admin.key");
    let admin_name = Name::try_from("admin".to_owned()).context("the admin name")?;
    let (admin_id, admin_key) = match services.users.bootstrap_admin(admin_name).await? {
        Some(issued) => {
            secrets::write_private(&key_file, &issued.api_key)?;
            tracing::info!(user_id = %issued.user.user_id, "created the administrator");
            (issued.user.user_id, issued.api_key)
        }
        None => {
            let admin_id = services
                .users
                .bootstrap_admin_id()
                .await?
                .context("the table says an administrator was created but names none")?;
            let key = match std::fs::read_to_string(&key_file) {
                Ok(key) => {
                    let key = key.trim().to_owned();
                    match services.users.authenticate(&key).await {
                        Err(tlao_orchestrator::ServiceError::Unauthenticated(_)) => {
                            // The key was revoked (`tlao keys revoke`): a new one, so the
                            // owner is not locked out of their own dev server.
                            let key = services.users.issue_key(&admin_id).await?;
                            secrets::write_private(&key_file, &key)?;
                            tracing::warn!(path = %key_file.display(), "admin.key was revoked; issued a new administrator key");
                            key
                        }
                        _ => key,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // The key file was lost (or a crash came between creating the admin
                    // and writing it): issue a new key rather than lock the owner out.
                    let key = services.users.issue_key(&admin_id).await?;
                    secrets::write_private(&key_file, &key)?;
                    tracing::warn!(path = %key_file.display(), "admin.key was missing; issued a new administrator key");
                    key
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", key_file.display())),
            };
            (admin_id, key)
        }
    };
    let admin = Caller {
        user_id: admin_id,
        admin: true,
    };
    let defaults = ensure_defaults(services, &admin).await?;
    Ok(Boot {
        admin_key,
        workspace_id: defaults.workspace_id,
    })
}
