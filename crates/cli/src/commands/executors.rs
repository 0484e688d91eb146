//! `tlao executors list|add|remove|presets`: the executor registry. Adding takes the
//! record (`{"name","kind","taskTypes","config"}`, see `CONTRACT.md`) as inline JSON, a
//! file, `-` for standard input, or `--preset NAME` (a documented record kept as data,
//! listed by `tlao executors presets`); registering and removing need an administrator.

use std::io::Read;

use anyhow::Context as _;
use serde_json::Value;

use crate::context::Context;
use crate::errors::{CliError, Exit};
use crate::output::{self, Table};

/// `tlao executors ...`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao executors list\n  \
    tlao executors add ./claude.json\n  \
    tlao executors presets\n  \
    tlao executors add --preset claude-code\n  \
    tlao executors add --preset kiro-acp --name kiro\n  \
    tlao executors add '{\"name\":\"echo\",\"kind\":\"command\",\"taskTypes\":[\"doc.write\"],\"config\":{\"command\":[\"echo\",\"{prompt}\"]}}'\n  \
    tlao executors remove echo")]
pub struct ExecutorsArgs {
    #[command(subcommand)]
    pub command: ExecutorsCommand,
}

/// The subcommands of `tlao executors`.
#[derive(Debug, clap::Subcommand)]
pub enum ExecutorsCommand {
    /// List the registered executors.
    ///
    /// Example: tlao executors list --json
    List(ListArgs),
    /// Register an executor (administrators).
    ///
    /// Example: tlao executors add executor.json
    Add(AddArgs),
    /// Remove an executor (administrators); runs queued for it stay queued.
    ///
    /// Example: tlao executors remove shell
    Remove(RemoveArgs),
    /// List the presets `add --preset` registers (documented records for common agents).
    ///
    /// Example: tlao executors presets --json
    Presets(ListArgs),
}

/// Options of `tlao executors list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print the executors as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao executors add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The record: inline JSON (starting with `{`), a file holding it, or `-` for stdin.
    #[arg(
        value_name = "FILE_OR_JSON",
        required_unless_present = "preset",
        conflicts_with = "preset"
    )]
    pub record: Option<String>,
    /// Register this preset's record instead (see `tlao executors presets`).
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// The name to register the preset under (the preset's name by default).
    #[arg(long, value_name = "NAME", requires = "preset")]
    pub name: Option<String>,
    /// Print the registered executor as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao executors remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The executor's name.
    pub name: String,
}

/// `tlao executors ...`.
pub async fn executors(args: ExecutorsArgs, profile: &str) -> anyhow::Result<Exit> {
    // The presets are part of this binary: listing them needs no server.
    if let ExecutorsCommand::Presets(list) = &args.command {
        let presets = tlao_sdk::wire::presets::all();
        if list.json {
            output::print_json(&presets)?;
        } else {
            let mut table = Table::new(&["PRESET", "KIND", "PROGRAM", "DESCRIPTION"]);
            for preset in &presets {
                let program = preset.record["config"]["binary"]
                    .as_str()
                    .or_else(|| preset.record["config"]["command"][0].as_str())
                    .unwrap_or_default();
                table.row(vec![
                    preset.preset.clone(),
                    preset.record["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    program.to_owned(),
                    preset.description.clone(),
                ]);
            }
            table.print()?;
        }
        return Ok(Exit::Success);
    }
    let ctx = Context::load(profile)?;
    match args.command {
        ExecutorsCommand::List(list) => {
            let executors = ctx
                .client
                .list_executors()
                .await
                .context("listing executors")?;
            if list.json {
                output::print_json(&executors)?;
            } else {
                let mut table = Table::new(&["NAME", "KIND", "TASK TYPES", "LAST SEEN AVAILABLE"]);
                for executor in &executors {
                    let types: Vec<&str> = executor.task_types.iter().map(|t| t.as_str()).collect();
                    let seen = match &executor.availability {
                        Some(seen) => format!(
                            "{} ({} worker{}{})",
                            seen.last_seen_at,
                            seen.workers,
                            if seen.workers == 1 { "" } else { "s" },
                            seen.version
                                .as_deref()
                                .map(|v| format!(", {v}"))
                                .unwrap_or_default()
                        ),
                        None => "never".to_owned(),
                    };
                    table.row(vec![
                        executor.name.clone(),
                        executor.kind.to_string(),
                        types.join(", "),
                        seen,
                    ]);
                }
                table.print()?;
            }
        }
        ExecutorsCommand::Add(add) => {
            let record = match (&add.preset, &add.record) {
                (Some(preset), _) => tlao_sdk::wire::presets::record(preset, add.name.as_deref())
                    .ok_or_else(|| {
                    let known: Vec<String> = tlao_sdk::wire::presets::all()
                        .into_iter()
                        .map(|p| p.preset)
                        .collect();
                    CliError::Usage(format!(
                        "no preset named {preset:?}; presets: {}",
                        known.join(", ")
                    ))
                })?,
                (None, Some(record)) => read_record(record)?,
                (None, None) => {
                    return Err(CliError::Usage("give a record or --preset NAME".into()).into());
                }
            };
            let executor = ctx
                .client
                .register_executor(&record)
                .await
                .context("registering the executor")?;
            if add.json {
                output::print_json(&executor)?;
            } else {
                output::success(format!("registered executor {}", executor.name));
            }
        }
        ExecutorsCommand::Remove(remove) => {
            ctx.client
                .remove_executor(&remove.name)
                .await
                .with_context(|| format!("removing executor {}", remove.name))?;
            output::success(format!("removed executor {}", remove.name));
        }
        ExecutorsCommand::Presets(_) => unreachable!("answered above"),
    }
    ctx.save_session()?;
    Ok(Exit::Success)
}

/// The record from inline JSON, `-` (stdin) or a file.
fn read_record(given: &str) -> anyhow::Result<Value> {
    let (text, source) = if given.trim_start().starts_with('{') {
        (given.to_owned(), "the argument".to_owned())
    } else if given == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the record from stdin")?;
        (text, "stdin".to_owned())
    } else {
        let text = std::fs::read_to_string(given)
            .map_err(|e| CliError::Usage(format!("cannot read {given}: {e}")))?;
        (text, given.to_owned())
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{source} is not valid JSON: {e}")).into())
}
