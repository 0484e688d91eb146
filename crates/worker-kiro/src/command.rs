//! The `command` executor: any CLI agent from an argv template.
//!
//! `{prompt}`, `{workdir}` and `{outdir}` are substituted in every argument, also
//! inside larger strings (`--out={outdir}/x`), in one pass, so a prompt that happens
//! to contain `{outdir}` stays as written. The record's `env` is added to the
//! environment, with `TLAO_OUTPUT_DIR` and `TLAO_WORKDIR`; with `promptVia: "stdin"`
//! the prompt is written to the program's standard input. So `claude -p {prompt}`,
//! `codex exec {prompt}`, `gemini -p {prompt}` or a script become executors by
//! inserting a record.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tlao_domain::{
    CommandConfig, ExecutionContext, ExecutionOutcome, ExecutionStatus, Executor, LogStream,
    PromptVia, RunError, RunErrorCode, TaskSpec, Usage,
};

use crate::confine::Confinement;
use crate::outcome::{exit_failure, failed_early, outcome, unavailable};
use crate::process::{GroupCommand, run_in_group};
use crate::prompt::build_prompt;

/// What to tell an operator whose worker lacks the program.
const INSTALL_HINT: &str =
    "install it on this worker, or change the executor's config.command to its full path";

/// Runs TaskSpecs with a CLI from an argv template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandExecutor {
    config: CommandConfig,
    confinement: Option<Arc<Confinement>>,
}

impl CommandExecutor {
    /// An executor with the registry record's configuration.
    pub fn new(config: CommandConfig) -> CommandExecutor {
        CommandExecutor {
            config,
            confinement: None,
        }
    }

    /// The same executor, running its command in `confinement` (its run's sandbox).
    pub fn confined(mut self, confinement: Arc<Confinement>) -> CommandExecutor {
        self.confinement = Some(confinement);
        self
    }

    /// The command for `prompt`, or why there is none (an empty template).
    pub fn command(
        &self,
        prompt: &str,
        workdir: &Path,
        outdir: &Path,
    ) -> Result<GroupCommand, RunError> {
        let workdir_text = workdir.to_string_lossy();
        let outdir_text = outdir.to_string_lossy();
        let mut argv = self
            .config
            .command
            .iter()
            .map(|arg| substitute(arg, prompt, &workdir_text, &outdir_text));
        let Some(program) = argv.next().filter(|p| !p.trim().is_empty()) else {
            return Err(RunError {
                code: RunErrorCode::ExecutorUnavailable,
                message: "the executor's config.command is empty".to_owned(),
                exit_code: None,
            });
        };
        Ok(templated(
            program,
            argv,
            &self.config.env,
            workdir,
            outdir,
            self.confinement.clone(),
            (self.config.prompt_via == PromptVia::Stdin).then_some(prompt),
        ))
    }
}

#[async_trait]
impl Executor for CommandExecutor {
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome {
        let prompt = build_prompt(spec, context.outdir);
        let command = match self.command(&prompt, context.workdir, context.outdir) {
            Ok(command) => command,
            Err(error) => return failed_early(error, context.outdir, context.events),
        };
        let program = command.program.to_string_lossy().into_owned();
        let mut ignore = |_: LogStream, _: &str| {};
        let finished = match run_in_group(&command, context.events, &mut ignore).await {
            Ok(finished) => finished,
            Err(error) => {
                return failed_early(
                    unavailable(&program, &error, INSTALL_HINT),
                    context.outdir,
                    context.events,
                );
            }
        };
        let status = if finished.status.success() {
            ExecutionStatus::Completed
        } else {
            let tail = finished.stderr_text(|_| false);
            ExecutionStatus::Failed(exit_failure(&format!("{program} failed"), &finished, &tail))
        };
        outcome(
            status,
            finished.transcript,
            Usage::Unmeasured,
            context.outdir,
            context.events,
        )
    }
}

/// An agent's command from its substituted argv (`program`, then `args`): the record's
/// `env` plus `TLAO_OUTPUT_DIR` and `TLAO_WORKDIR`, run in `workdir` and `confinement`,
/// with `stdin` (the prompt) written to it when given. Shared by the `command` and
/// `stream` executors.
pub(crate) fn templated(
    program: String,
    args: impl Iterator<Item = String>,
    env: &std::collections::BTreeMap<String, String>,
    workdir: &Path,
    outdir: &Path,
    confinement: Option<Arc<Confinement>>,
    stdin: Option<&str>,
) -> GroupCommand {
    let mut command = GroupCommand::new(program, workdir);
    command.args = args.map(OsString::from).collect();
    command.env = env
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    command
        .env
        .insert("TLAO_OUTPUT_DIR".into(), outdir.as_os_str().to_owned());
    command
        .env
        .insert("TLAO_WORKDIR".into(), workdir.as_os_str().to_owned());
    command.confinement = confinement;
    command.stdin = stdin.map(str::to_owned);
    command
}

/// `template` with every `{prompt}`, `{workdir}` and `{outdir}` replaced, in one pass.
pub fn substitute(template: &str, prompt: &str, workdir: &str, outdir: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let replaced = [
            ("{prompt}", prompt),
            ("{workdir}", workdir),
            ("{outdir}", outdir),
        ]
        .into_iter()
        .find(|(placeholder, _)| tail.starts_with(placeholder));
        match replaced {
            Some((placeholder, value)) => {
                out.push_str(value);
                rest = &tail[placeholder.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_anywhere_once() {
        assert_eq!(
            substitute("--out={outdir}/x {prompt}{", "say {outdir}", "/w", "/o"),
            "--out=/o/x say {outdir}{"
        );
        assert_eq!(substitute("{workdir}", "", "/w", "/o"), "/w");
        assert_eq!(substitute("{unknown}", "p", "/w", "/o"), "{unknown}");
    }
}
