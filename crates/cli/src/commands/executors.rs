//! `tlao executors list|add|remove`: the executor registry. Adding takes the record
//! (`{"name","kind","taskTypes","config"}`, see `CONTRACT.md`) as inline JSON, a file,
//! or `-` for standard input; registering and removing need an administrator.

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
    #[arg(value_name = "FILE_OR_JSON")]
    pub record: String,
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
                let mut table = Table::new(&["NAME", "KIND", "TASK TYPES"]);
                for executor in &executors {
                    let types: Vec<&str> = executor.task_types.iter().map(|t| t.as_str()).collect();
                    table.row(vec![
                        executor.name.clone(),
                        executor.kind.to_string(),
                        types.join(", "),
                    ]);
                }
                table.print()?;
            }
        }
        ExecutorsCommand::Add(add) => {
            let record = read_record(&add.record)?;
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
