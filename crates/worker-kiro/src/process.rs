//! Running an agent process: its own process tree, line-by-line output, and a tree that
//! ends with it.
//!
//! The agent is the root of a [`ProcessTree`]: a cgroup of its own where the worker can
//! make one (else this worker becomes a child subreaper and the tree is found through
//! `/proc`), a new session, and an environment marker its descendants inherit. So
//! everything it starts — grandchildren that left its process group, double-forked
//! daemons — is killed at once: when the agent exits (a background process it left
//! behind cannot hold the output pipes open, nor outlive the run), and when the
//! execution future is dropped (deadline, cancel, lost lease). The agent is also told
//! to die with the worker (`PR_SET_PDEATHSIG`, Linux), for the case where the worker
//! itself is killed with `SIGKILL` and no destructor runs; what the agent started is
//! then ended by the launcher that started the worker, whose own tree holds it.
//!
//! Output is read as lines (at most [`MAX_LINE_BYTES`] each), cleaned of ANSI escapes
//! and carriage-return redraws, emitted as [`EventPayload::Log`] events, and kept in
//! the transcript (up to [`MAX_TRANSCRIPT_BYTES`]) and a stderr tail.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tlao_domain::{EventPayload, EventSink, LogStream};
use tlao_process::{Preference, ProcessTree, TreeOptions};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::ansi::strip_ansi;
use crate::confine::{Confinement, agent_env};
use crate::run_dir::Kept;

/// The longest line kept as one log event; longer output is split.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The most transcript bytes kept in memory; later output is only streamed.
pub const MAX_TRANSCRIPT_BYTES: usize = 32 * 1024 * 1024;
/// How much of the end of stderr is kept for error messages.
pub const STDERR_TAIL_BYTES: usize = 4 * 1024;
/// How long output is still read after the child exited and its group was killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A command to run as the root of its own process tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommand {
    /// The program, a path or a name on `PATH`.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its own variables, added to what the worker's environment lets through
    /// ([`agent_env`]).
    pub env: BTreeMap<OsString, OsString>,
    /// Text written to its standard input, which is then closed; `/dev/null` when `None`.
    pub stdin: Option<String>,
    /// Its run's sandbox and environment; `None` runs it unsandboxed with the worker's
    /// `HOME` and `TMPDIR` (the rest of the environment is filtered all the same).
    pub confinement: Option<Arc<Confinement>>,
}

impl GroupCommand {
    /// `program` with no arguments, run in `cwd`.
    pub fn new(program: impl Into<OsString>, cwd: impl Into<PathBuf>) -> GroupCommand {
        GroupCommand {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: BTreeMap::new(),
            stdin: None,
            confinement: None,
        }
    }
}

/// How a process ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its whole output, stdout and stderr interleaved as read, ANSI-free.
    pub transcript: String,
    /// The last lines of its stderr, at most [`STDERR_TAIL_BYTES`] in all.
    pub stderr_tail: Vec<String>,
}

impl Finished {
    /// The exit code, when it exited (rather than being killed by a signal).
    pub fn exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed it, when one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The stderr tail as text, without the lines `skip` rejects.
    pub fn stderr_text(&self, skip: impl Fn(&str) -> bool) -> String {
        let lines: Vec<&str> = self
            .stderr_tail
            .iter()
            .map(String::as_str)
            .filter(|line| !skip(line) && !line.trim().is_empty())
            .collect();
        lines.join("\n")
    }
}

/// Spawns `command` as the root of a new process tree, streams its output as log events
/// into `events` (each line is also shown to `observe`), and waits for it; the whole
/// tree is killed when it exits. Fails only when the process cannot be started.
/// Dropping the future kills the whole tree.
pub async fn run_in_group(
    command: &GroupCommand,
    events: &dyn EventSink,
    observe: &mut (dyn FnMut(LogStream, &str) + Send),
) -> io::Result<Finished> {
    let mut log_all = |stream: LogStream, line: &str| {
        observe(stream, line);
        true
    };
    run_in_group_with(command, events, &mut log_all).await
}

/// [`run_in_group`], where `observe` also decides whether each line becomes a log event
/// (`true`) or not (`false`: it made its own events of it); every line is kept in the
/// transcript either way.
pub async fn run_in_group_with(
    command: &GroupCommand,
    events: &dyn EventSink,
    observe: &mut (dyn FnMut(LogStream, &str) -> bool + Send),
) -> io::Result<Finished> {
    let mut tree = agent_tree()?;
    let mut child = spawn(command, &mut tree, command.stdin.is_some())?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();
    let (tx, mut rx) = mpsc::channel::<(LogStream, String)>(256);

    let feed_stdin = async {
        if let (Some(mut pipe), Some(text)) = (stdin, command.stdin.as_ref()) {
            // A child that exits without reading its input is not an error.
            let _ = pipe.write_all(text.as_bytes()).await;
            let _ = pipe.shutdown().await;
        }
    };
    let out_tx = tx.clone();
    let read_stdout = async move {
        if let Some(pipe) = stdout {
            read_lines(pipe, LogStream::Stdout, out_tx).await;
        }
    };
    let read_stderr = async move {
        if let Some(pipe) = stderr {
            read_lines(pipe, LogStream::Stderr, tx).await;
        }
    };
    let mut output = Output::default();
    let consume = async {
        while let Some((stream, line)) = rx.recv().await {
            let log = observe(stream, &line);
            output.record(stream, &line);
            if log {
                events.emit(EventPayload::Log { stream, text: line });
            }
        }
    };
    let status = {
        let pump = async {
            tokio::join!(feed_stdin, read_stdout, read_stderr, consume);
        };
        tokio::pin!(pump);
        let wait = child.wait();
        tokio::pin!(wait);
        let mut status: Option<ExitStatus> = None;
        let drain = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
        tokio::pin!(drain);
        loop {
            tokio::select! {
                exited = &mut wait, if status.is_none() => {
                    status = Some(exited?);
                    // Whatever the child left running dies with it.
                    tree.kill();
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                }
                () = &mut pump => {
                    if status.is_none() {
                        status = Some(wait.as_mut().await?);
                        tree.kill();
                    }
                    break;
                }
                () = &mut drain, if status.is_some() => break,
            }
        }
        match status {
            Some(status) => status,
            None => wait.as_mut().await?,
        }
    };
    Ok(Finished {
        status,
        transcript: output.transcript,
        stderr_tail: output.stderr_tail.into_iter().collect(),
    })
}

/// Spawns `command` as the root of a new process tree with its standard input, output
/// and error piped, for an agent the worker talks with (ACP). `command.stdin` is
/// ignored. Dropping the tree kills everything in it.
pub(crate) fn spawn_piped(
    command: &GroupCommand,
) -> io::Result<(ProcessTree, tokio::process::Child)> {
    let mut tree = agent_tree()?;
    let child = spawn(command, &mut tree, true)?;
    Ok((tree, child))
}

/// The tree [`prepare_agent_tree`] made and no agent has taken yet.
static PREPARED_TREE: Kept<ProcessTree> = Kept::new();

/// Makes the next agent's process tree ahead of the run, for a standby worker to do
/// while it waits (creating a cgroup takes the kernel a while); the next agent started
/// in this process takes it. Failing only means the agent's start makes its own. See
/// [`crate::run_dir::Ahead`].
pub(crate) fn prepare_agent_tree() {
    match new_agent_tree() {
        Ok(tree) => *PREPARED_TREE.slot() = Some(tree),
        Err(error) => tracing::debug!(%error, "cannot prepare an agent's process tree"),
    }
}

/// Removes the tree [`prepare_agent_tree`] made, if no agent took it.
pub(crate) fn discard_prepared_tree() {
    drop(PREPARED_TREE.slot().take());
}

/// The tree for the next agent: the prepared one, or a new one.
fn agent_tree() -> io::Result<ProcessTree> {
    if let Some(tree) = PREPARED_TREE.slot().take() {
        return Ok(tree);
    }
    new_agent_tree()
}

/// A new tree for an agent: a cgroup when one can be made (unless
/// `TLAO_PROCESS_TREE=fallback`), else this worker adopts the agent's orphans.
fn new_agent_tree() -> io::Result<ProcessTree> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // What workers killed before they could clean up left (empty cgroups) goes first.
    ProcessTree::sweep_leftovers("tlao-agent-");
    let name = format!(
        "tlao-agent-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    ProcessTree::create(
        &name,
        TreeOptions {
            preference: Preference::from_env(),
            adopt_orphans: true,
        },
    )
}

/// What to do once, right after this process next starts a child: see
/// [`on_first_spawn`].
type SpawnHook = Box<dyn FnOnce() + Send>;
static FIRST_SPAWN: std::sync::Mutex<Option<SpawnHook>> = std::sync::Mutex::new(None);

/// Calls `hook` once, right after this process next starts a child process — its run's
/// agent, or a probe of the agent's program that comes first. A standby worker says
/// with it that the CPU its start needed is free again.
pub fn on_first_spawn(hook: impl FnOnce() + Send + 'static) {
    *FIRST_SPAWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(hook));
}

fn spawned() {
    let hook = FIRST_SPAWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(hook) = hook {
        hook();
    }
}

/// Spawns the child in `tree` (its own session, killed with the worker): piped output,
/// an allowlisted environment, in its run's sandbox when it has one.
fn spawn(
    command: &GroupCommand,
    tree: &mut ProcessTree,
    pipe_stdin: bool,
) -> io::Result<tokio::process::Child> {
    let confinement = command.confinement.as_deref();
    let env = agent_env(std::env::vars_os(), confinement, &command.env);
    let mut process = tokio::process::Command::new(&command.program);
    process
        .args(&command.args)
        .current_dir(&command.cwd)
        .env_clear()
        .envs(&env)
        .stdin(if pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(confinement) = confinement {
        let path = env
            .get(std::ffi::OsStr::new("PATH"))
            .map(OsString::as_os_str);
        let policy = confinement.policy(&command.program, path);
        if let Some(sandbox) = confinement.sandbox(&policy)? {
            sandbox.apply(process.as_std_mut());
        }
    }
    // The agent starts at once; moving it into its tree's cgroup waits for the kernel
    // (~10 ms) and is done beside it. Until then its session and the tree's marker
    // find it, and this worker (a child subreaper, see `agent_tree`) adopts what it
    // double-forks.
    tracing::debug!(program = %command.program.display(), "agent spawning");
    let (child, join) = tree.spawn_joining_later(&mut process)?;
    tracing::debug!(pid = child.id(), "agent spawned");
    if let Some(join) = join {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || join.run())),
            Err(_) => join.run(),
        }
    }
    spawned();
    Ok(child)
}

/// What has been read so far.
#[derive(Default)]
struct Output {
    transcript: String,
    truncated: bool,
    stderr_tail: VecDeque<String>,
    stderr_tail_bytes: usize,
}

impl Output {
    fn record(&mut self, stream: LogStream, line: &str) {
        if self.transcript.len() + line.len() < MAX_TRANSCRIPT_BYTES {
            self.transcript.push_str(line);
            self.transcript.push('\n');
        } else if !self.truncated {
            self.truncated = true;
            self.transcript.push_str(&format!(
                "[transcript truncated at {MAX_TRANSCRIPT_BYTES} bytes; the rest was streamed to the run's logs]\n"
            ));
        }
        if stream == LogStream::Stderr {
            let kept = tail_of(line, STDERR_TAIL_BYTES);
            self.stderr_tail_bytes += kept.len() + 1;
            self.stderr_tail.push_back(kept.to_owned());
            while self.stderr_tail_bytes > STDERR_TAIL_BYTES {
                match self.stderr_tail.pop_front() {
                    Some(old) => self.stderr_tail_bytes -= old.len() + 1,
                    None => break,
                }
            }
        }
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail_of(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Reads `pipe` as lines and sends each, cleaned, on `tx`; stops at end of file or on
/// a read error.
pub(crate) async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: LogStream,
    tx: mpsc::Sender<(LogStream, String)>,
) {
    let mut reader = BufReader::new(pipe);
    let mut line: Vec<u8> = Vec::new();
    while let Ok(buffer) = reader.fill_buf().await {
        if buffer.is_empty() {
            break;
        }
        let room = MAX_LINE_BYTES - line.len();
        let (taken, complete) = match buffer.iter().position(|b| *b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ if buffer.len() >= room => (room, true),
            _ => (buffer.len(), false),
        };
        line.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if complete {
            let text = clean_line(&line);
            line.clear();
            if tx.send((stream, text)).await.is_err() {
                return;
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send((stream, clean_line(&line))).await;
    }
}

/// A raw output line as it would look on a terminal: decoded (lossily), without the
/// line ending, only the text after the last carriage return (spinner redraws), and
/// without ANSI escapes.
pub fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    let shown = text
        .rsplit('\r')
        .find(|part| !strip_ansi(part).trim().is_empty())
        .unwrap_or("");
    strip_ansi(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_what_a_terminal_would() {
        assert_eq!(clean_line(b"\x1b[32mok\x1b[0m\r\n"), "ok");
        assert_eq!(clean_line(b"10%\r50%\r100%\n"), "100%");
        assert_eq!(clean_line(b"done\r\x1b[2K\n"), "done");
        assert_eq!(clean_line(b"caf\xc3\xa9 \xff\n"), "café \u{fffd}");
    }

    #[test]
    fn the_stderr_tail_keeps_the_last_bytes() {
        let mut output = Output::default();
        for i in 0..2000 {
            output.record(LogStream::Stderr, &format!("line {i}"));
        }
        assert!(output.stderr_tail_bytes <= STDERR_TAIL_BYTES);
        assert_eq!(
            output.stderr_tail.back().map(String::as_str),
            Some("line 1999")
        );
        assert_eq!(tail_of("héllo", 4), "llo");
    }
}
