//! The `kiro` executor: runs `kiro-cli chat --no-interactive` headless.
//!
//! `kiro-cli chat --no-interactive --trust-all-tools --wrap never [--agent NAME]
//! [extraArgs…] <prompt>` runs in the working directory with `TLAO_OUTPUT_DIR` set to
//! the output directory (and `KIRO_API_KEY` passed through). Headless kiro-cli prints a
//! human transcript with ANSI colours and no JSON: the lines are cleaned, and the
//! `▸ Credits: 0.42 • Time: 5s` line it prints on stderr becomes the run's usage
//! (unmeasured when absent, never a fake zero). Its documented exit codes become clear
//! errors: 1 a failure, 3 an MCP server that failed to start, 4 an agent not found.
//! With `preflight`, `kiro-cli whoami` runs first, so a worker that is not logged in
//! fails the run with instructions rather than a confusing transcript.
//!
//! The harness is always explicit (`config.harness`, `--v2` by default: see
//! [`tlao_domain::KiroHarness`]). Before a chat the executor reads `kiro-cli chat --help`
//! (cached per binary path and version) and passes only the flags it lists: a missing
//! `--no-interactive` fails the run (kiro-cli cannot run headless), any other flag the
//! installed kiro-cli does not list (`--wrap`, the harness flag, an `extraArgs` flag) is
//! left out with a line in the run's log, instead of kiro-cli exiting 2 on it.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tlao_domain::{
    ExecutionContext, ExecutionOutcome, ExecutionStatus, Executor, KiroConfig, LogStream, RunError,
    RunErrorCode, TaskSpec, Usage,
};

use crate::confine::Confinement;
use crate::outcome::{exit_failure, failed_early, outcome, system, unavailable};
use crate::process::{GroupCommand, run_in_group};
use crate::prompt::build_prompt;

/// How long `kiro-cli chat --help` may take.
const HELP_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags `kiro-cli chat --help` listed, by binary path and version.
type FlagCache = HashMap<(PathBuf, Option<String>), BTreeSet<String>>;

fn flag_cache() -> &'static Mutex<FlagCache> {
    static CACHE: OnceLock<Mutex<FlagCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The long flags (`--name`) a help text lists.
pub fn listed_flags(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '=' | '<'))
        .filter(|word| {
            word.len() > 2
                && word.starts_with("--")
                && word[2..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .collect()
}

/// How long `kiro-cli whoami` may take.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// What to tell an operator whose worker has no kiro-cli.
const INSTALL_HINT: &str =
    "install kiro-cli on this worker, or set the executor's config.binary to its full path";

/// Runs TaskSpecs with the Kiro CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KiroExecutor {
    config: KiroConfig,
    confinement: Option<Arc<Confinement>>,
}

impl KiroExecutor {
    /// An executor with the registry record's configuration.
    pub fn new(config: KiroConfig) -> KiroExecutor {
        KiroExecutor {
            config,
            confinement: None,
        }
    }

    /// The same executor, running kiro-cli in `confinement` (its run's sandbox).
    pub fn confined(mut self, confinement: Arc<Confinement>) -> KiroExecutor {
        self.confinement = Some(confinement);
        self
    }

    /// The `kiro-cli chat` command for `prompt` (written to its standard input), with
    /// every flag the configuration asks for.
    pub fn chat_command(&self, prompt: &str, context: &ExecutionContext<'_>) -> GroupCommand {
        self.chat_command_for(prompt, context, None).0
    }

    /// The `kiro-cli chat` command for `prompt`, passing only the flags in `listed`
    /// (what the installed kiro-cli's `chat --help` lists) when given; and the flags it
    /// left out.
    pub fn chat_command_for(
        &self,
        prompt: &str,
        context: &ExecutionContext<'_>,
        listed: Option<&BTreeSet<String>>,
    ) -> (GroupCommand, Vec<String>) {
        let mut command = GroupCommand::new(&self.config.binary, context.workdir);
        // Each flag with the values that go with it.
        let mut wanted: Vec<Vec<String>> = vec![
            vec!["--no-interactive".into()],
            vec!["--trust-all-tools".into()],
            vec!["--wrap".into(), "never".into()],
            vec![self.config.harness.flag().into()],
        ];
        if let Some(agent) = &self.config.agent {
            wanted.push(vec!["--agent".into(), agent.clone()]);
        }
        // extraArgs: a word starting with `--` begins a flag; the words after it, up to
        // the next one, are its values.
        let extra_start = wanted.len();
        for arg in &self.config.extra_args {
            let extends = !arg.starts_with('-') && wanted.len() > extra_start;
            match wanted.last_mut() {
                Some(last) if extends => last.push(arg.clone()),
                _ => wanted.push(vec![arg.clone()]),
            }
        }
        let mut dropped = Vec::new();
        let mut args: Vec<OsString> = vec!["chat".into()];
        for flag in wanted {
            let name = flag[0].split('=').next().unwrap_or_default().to_owned();
            let known =
                listed.is_none_or(|listed| !name.starts_with("--") || listed.contains(&name));
            if known {
                args.extend(flag.into_iter().map(OsString::from));
            } else {
                dropped.push(name);
            }
        }
        // The prompt goes to standard input (kiro-cli reads it there when no argument
        // is given), not the command line, where every local user could read it in
        // `ps` and where its length is bounded.
        command.stdin = Some(prompt.to_owned());
        command.args = args;
        command.env = self.env(context);
        command.confinement = self.confinement.clone();
        (command, dropped)
    }

    /// The long flags the installed kiro-cli's `chat --help` lists, read once per
    /// binary path and version; `None` when it cannot be read (then every flag is
    /// passed, as before this check).
    async fn chat_flags(&self) -> Option<BTreeSet<String>> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let resolved = crate::availability::resolve(&self.config.binary, &path)?;
        let version = crate::availability::version_of(&resolved).await;
        let slot = (resolved.clone(), version);
        if let Some(flags) = flag_cache().lock().ok().and_then(|c| c.get(&slot).cloned()) {
            return Some(flags);
        }
        // Another worker process may have read them already (see `probe_cache`).
        let key = format!("chat-flags\u{0}{}\u{0}{:?}", slot.0.display(), slot.1);
        let kept: Option<BTreeSet<String>> = crate::probe_cache::get(&key)
            .and_then(|kept| serde_json::from_value(kept).ok())
            .filter(|flags: &BTreeSet<String>| !flags.is_empty());
        if let Some(flags) = kept {
            if let Ok(mut cache) = flag_cache().lock() {
                cache.insert(slot, flags.clone());
            }
            return Some(flags);
        }
        let child = tokio::process::Command::new(&resolved)
            .args(["chat", "--help"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let output = tokio::time::timeout(HELP_TIMEOUT, child.wait_with_output())
            .await
            .ok()?
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let flags = listed_flags(&String::from_utf8_lossy(&output.stdout));
        if flags.is_empty() {
            return None;
        }
        if let Ok(mut cache) = flag_cache().lock() {
            cache.insert(slot, flags.clone());
        }
        if let Ok(kept) = serde_json::to_value(&flags) {
            crate::probe_cache::put(&key, kept);
        }
        Some(flags)
    }

    fn env(
        &self,
        context: &ExecutionContext<'_>,
    ) -> std::collections::BTreeMap<OsString, OsString> {
        let mut env = std::collections::BTreeMap::new();
        env.insert(
            "TLAO_OUTPUT_DIR".into(),
            context.outdir.as_os_str().to_owned(),
        );
        if let Some(key) = std::env::var_os("KIRO_API_KEY") {
            env.insert("KIRO_API_KEY".into(), key);
        }
        env
    }

    /// Runs `kiro-cli whoami`; an error when kiro-cli is missing or not logged in.
    async fn preflight(&self, context: &ExecutionContext<'_>) -> Result<(), RunError> {
        let mut command = GroupCommand::new(&self.config.binary, context.workdir);
        command.args = vec!["whoami".into()];
        command.env = self.env(context);
        command.confinement = self.confinement.clone();
        let mut ignore = |_: LogStream, _: &str| {};
        let run = run_in_group(&command, context.events, &mut ignore);
        let finished = match tokio::time::timeout(PREFLIGHT_TIMEOUT, run).await {
            Err(_) => {
                return Err(RunError {
                    code: RunErrorCode::ExecutorUnavailable,
                    message: format!(
                        "`{} whoami` did not answer within {} s",
                        self.config.binary,
                        PREFLIGHT_TIMEOUT.as_secs()
                    ),
                    exit_code: None,
                });
            }
            Ok(Err(error)) => return Err(unavailable(&self.config.binary, &error, INSTALL_HINT)),
            Ok(Ok(finished)) => finished,
        };
        match finished.exit_code() {
            Some(0) => Ok(()),
            Some(1) => Err(RunError {
                code: RunErrorCode::ExecutorUnavailable,
                message: format!(
                    "kiro-cli is not logged in on this worker: run `{} login` on the worker (or give it a KIRO_API_KEY) and try again",
                    self.config.binary
                ),
                exit_code: Some(1),
            }),
            _ => {
                let mut error = exit_failure(
                    &format!("`{} whoami` failed", self.config.binary),
                    &finished,
                    &finished.stderr_text(|_| false),
                );
                error.code = RunErrorCode::ExecutorUnavailable;
                Err(error)
            }
        }
    }
}

#[async_trait]
impl Executor for KiroExecutor {
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome {
        if self.config.preflight {
            if let Err(error) = self.preflight(&context).await {
                return failed_early(error, context.outdir, context.events);
            }
            system(context.events, "kiro-cli is logged in".to_owned());
        }
        let prompt = build_prompt(spec, context.outdir);
        let listed = self.chat_flags().await;
        if listed
            .as_ref()
            .is_some_and(|flags| !flags.contains("--no-interactive"))
        {
            return failed_early(
                RunError {
                    code: RunErrorCode::ExecutorUnavailable,
                    message: format!(
                        "`{} chat --help` does not list --no-interactive: this kiro-cli cannot run headless; install a current kiro-cli",
                        self.config.binary
                    ),
                    exit_code: None,
                },
                context.outdir,
                context.events,
            );
        }
        let (command, dropped) = self.chat_command_for(&prompt, &context, listed.as_ref());
        if listed.is_none() {
            system(
                context.events,
                "cannot read `kiro-cli chat --help`; passing every configured flag".to_owned(),
            );
        }
        for flag in dropped {
            system(
                context.events,
                format!("this kiro-cli does not list {flag} in `chat --help`; left out"),
            );
        }
        let mut usage_line: Option<String> = None;
        let mut observe = |stream: LogStream, line: &str| {
            if stream == LogStream::Stderr && parse_usage(line).is_some() {
                usage_line = Some(line.to_owned());
            }
        };
        let result = run_in_group(&command, context.events, &mut observe).await;
        let finished = match result {
            Ok(finished) => finished,
            Err(error) => {
                return failed_early(
                    unavailable(&self.config.binary, &error, INSTALL_HINT),
                    context.outdir,
                    context.events,
                );
            }
        };
        let usage = usage_line
            .as_deref()
            .and_then(parse_usage)
            .unwrap_or(Usage::Unmeasured);
        let status = if finished.status.success() {
            ExecutionStatus::Completed
        } else {
            let tail = finished.stderr_text(|line| parse_usage(line).is_some());
            let what = match finished.exit_code() {
                Some(code) => exit_meaning(code, self.config.agent.as_deref()),
                None => "kiro-cli was killed".to_owned(),
            };
            ExecutionStatus::Failed(exit_failure(&what, &finished, &tail))
        };
        outcome(
            status,
            finished.transcript,
            usage,
            context.outdir,
            context.events,
        )
    }
}

/// What a kiro-cli exit code means.
pub fn exit_meaning(code: i32, agent: Option<&str>) -> String {
    match code {
        1 => "kiro-cli failed".to_owned(),
        3 => "kiro-cli failed: an MCP server failed to start".to_owned(),
        4 => match agent {
            Some(agent) => format!("kiro-cli failed: the requested agent {agent:?} was not found"),
            None => "kiro-cli failed: the requested agent was not found".to_owned(),
        },
        other => format!("kiro-cli exited with the undocumented code {other}"),
    }
}

/// The usage a `▸ Credits: 0.42 • Time: 5s` line reports; `None` for other lines.
pub fn parse_usage(line: &str) -> Option<Usage> {
    let (_, after) = line.split_once("Credits:")?;
    let credits: String = after
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '•')
        .collect();
    Some(Usage::reported(
        (!credits.is_empty()).then_some(credits),
        line.trim(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credits_line_is_parsed() {
        assert_eq!(
            parse_usage("▸ Credits: 0.42 • Time: 1s"),
            Some(Usage::reported(
                Some("0.42".into()),
                "▸ Credits: 0.42 • Time: 1s"
            ))
        );
        assert_eq!(parse_usage("all good"), None);
    }

    #[test]
    fn exit_codes_have_meanings() {
        assert_eq!(
            exit_meaning(3, None),
            "kiro-cli failed: an MCP server failed to start"
        );
        assert!(exit_meaning(4, Some("x")).contains("agent \"x\" was not found"));
    }
}
