//! `tlao workspace create|list|use`: the workspaces a user belongs to, and the default
//! one the profile keeps for `tlao run` and `tlao runs`.

use anyhow::Context as _;
use tlao_domain::WorkspaceId;

use crate::context::Context;
use crate::errors::{CliError, Exit};
use crate::output::{self, Table, human_bytes};

/// `tlao workspace ...`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao workspace create payments\n  \
    tlao workspace list\n  \
    tlao workspace use ws_01J...")]
pub struct WorkspaceArgs {
    #[command(subcommand)]
    pub command: WorkspaceCommand,
}

/// The subcommands of `tlao workspace`.
#[derive(Debug, clap::Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace (you become its owner).
    ///
    /// Example: tlao workspace create payments --use
    Create(CreateArgs),
    /// List your workspaces; `*` marks the profile's default.
    ///
    /// Example: tlao workspace list --json
    List(ListArgs),
    /// Make a workspace the profile's default.
    ///
    /// Example: tlao workspace use ws_01J...
    Use(UseArgs),
}

/// Options of `tlao workspace create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Its display name.
    pub name: String,
    /// Also make it the profile's default.
    #[arg(long = "use")]
    pub make_default: bool,
    /// Print the workspace as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao workspace list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print the workspaces as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao workspace use`.
#[derive(Debug, clap::Args)]
pub struct UseArgs {
    /// The workspace (`ws_...`).
    pub id: WorkspaceId,
}

/// `tlao workspace ...`.
pub async fn workspace(args: WorkspaceArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let exit = match args.command {
        WorkspaceCommand::Create(create) => {
            if create.name.trim().is_empty() {
                return Err(CliError::Usage("the workspace name is empty".into()).into());
            }
            let workspace = ctx
                .client
                .create_workspace(create.name.trim())
                .await
                .context("creating the workspace")?;
            if create.make_default {
                let id = workspace.workspace_id.to_string();
                ctx.update_profile(|p| p.workspace_id = Some(id))?;
            }
            if create.json {
                output::print_json(&workspace)?;
            } else {
                println!("{}", workspace.workspace_id);
                output::success(format!("created workspace {:?}", workspace.name));
            }
            Exit::Success
        }
        WorkspaceCommand::List(list) => {
            let workspaces = ctx
                .client
                .list_workspaces()
                .await
                .context("listing workspaces")?;
            if list.json {
                output::print_json(&workspaces)?;
            } else {
                let current = ctx.profile.workspace_id.as_deref();
                let mut table = Table::new(&["", "WORKSPACE", "NAME", "CREATED", "MAX ARCHIVE"]);
                for workspace in &workspaces {
                    let mark = if current == Some(workspace.workspace_id.as_str()) {
                        "*"
                    } else {
                        ""
                    };
                    table.row(vec![
                        mark.to_owned(),
                        workspace.workspace_id.to_string(),
                        workspace.name.clone(),
                        workspace.created_at.to_string(),
                        human_bytes(workspace.limits.max_archive_bytes),
                    ]);
                }
                table.print()?;
            }
            Exit::Success
        }
        WorkspaceCommand::Use(use_args) => {
            // Reading it proves it exists and the user belongs to it.
            let workspace = ctx
                .client
                .get_workspace(&use_args.id)
                .await
                .with_context(|| format!("reading workspace {}", use_args.id))?;
            let id = workspace.workspace_id.to_string();
            ctx.update_profile(|p| p.workspace_id = Some(id))?;
            output::success(format!(
                "profile {:?} now uses workspace {} ({:?})",
                ctx.profile_name, workspace.workspace_id, workspace.name
            ));
            Exit::Success
        }
    };
    ctx.save_session()?;
    Ok(exit)
}
