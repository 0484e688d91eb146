//! What an agent may see and touch: its sandbox and its environment.
//!
//! Each run's agent gets a [`Confinement`]: a Landlock sandbox ([`tlao_sandbox`]) that
//! lets it read the system and what it was granted, write its `work/`, `out/`, and a
//! per-run `home/` and `tmp/` — not the worker's other files, not other runs, not the
//! server's data directory — and an environment built from an allowlist
//! ([`agent_env`]): never the worker's or the server's secrets. How strict the worker is
//! when the kernel cannot sandbox is its [`SandboxMode`].

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

pub use tlao_sandbox::{Network, SandboxPolicy, Support};

use tlao_domain::{GrantedPath, NetworkPolicy, SandboxGrants};

use crate::run_dir::{Kept, RunDir};

/// Variables of the worker's environment every agent gets (besides `LC_*`).
pub const ALLOWED_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "USER",
    "LOGNAME",
    "SHELL",
];

/// How strictly a worker sandboxes its agents (`sandbox.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Sandboxed where the kernel can, else unsandboxed (and the run's log says so).
    #[default]
    Auto,
    /// Sandboxed, or the run fails.
    Required,
    /// Never sandboxed (the environment is still filtered).
    Off,
}

impl std::str::FromStr for SandboxMode {
    type Err = String;

    fn from_str(text: &str) -> Result<SandboxMode, String> {
        match text.trim() {
            "auto" => Ok(SandboxMode::Auto),
            "required" => Ok(SandboxMode::Required),
            "off" => Ok(SandboxMode::Off),
            other => Err(format!(
                "sandbox mode {other:?} is none of \"auto\", \"required\", \"off\""
            )),
        }
    }
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SandboxMode::Auto => "auto",
            SandboxMode::Required => "required",
            SandboxMode::Off => "off",
        })
    }
}

/// What an agent is given beyond its run's own directories.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentGrants {
    /// Paths it may read (and execute) beneath. Paths under the worker's real `HOME`
    /// are also linked into the run's home at the same place ([`mirror_home_grants`]).
    pub read: Vec<PathBuf>,
    /// Paths it may write beneath (linked into the run's home likewise).
    pub write: Vec<PathBuf>,
    /// Its TCP network.
    pub network: Network,
    /// Variables of the worker's environment it gets: names, or prefixes ending in `*`
    /// (`KIRO_*`). `TLAO_*` names never pass.
    pub pass_env: Vec<String>,
}

impl AgentGrants {
    /// These grants (the worker's own, from its settings) with what an executor's
    /// record grants: its paths (`~/...` resolved against `home`, and left out when
    /// there is none), its variables, and its network policy unless it is `any` (then
    /// the worker's stands).
    pub fn with_record(&self, record: &SandboxGrants, home: Option<&Path>) -> AgentGrants {
        let resolve = |path: &GrantedPath| match path.under_home() {
            Some(rest) => home.map(|home| home.join(rest)),
            None => Some(PathBuf::from(path.as_str())),
        };
        let mut grants = self.clone();
        grants
            .read
            .extend(record.read_paths.iter().filter_map(resolve));
        grants
            .write
            .extend(record.write_paths.iter().filter_map(resolve));
        grants
            .pass_env
            .extend(record.env.iter().map(|grant| grant.as_str().to_owned()));
        grants.network = match &record.network {
            NetworkPolicy::Any => self.network.clone(),
            NetworkPolicy::None => Network::None,
            NetworkPolicy::TcpPorts(ports) => Network::TcpPorts(ports.clone()),
        };
        grants
    }
}

/// The worker's real home directory (`HOME`), when it has one: what granted `~/...`
/// paths resolve against and what a run's home links into.
pub fn real_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

/// Whether `path` (resolved where it exists) is inside one of `dirs` (already resolved)
/// or holds one.
fn is_inside_or_holding(path: &Path, dirs: &[PathBuf]) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    dirs.iter()
        .any(|dir| path.starts_with(dir) || dir.starts_with(&path))
}

/// `dir` with its links resolved, where it exists.
fn resolved(dir: PathBuf) -> PathBuf {
    dir.canonicalize().unwrap_or(dir)
}

/// The confinement of one run's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// How strict to be.
    pub mode: SandboxMode,
    /// What it is given.
    pub grants: AgentGrants,
    /// Its working directory (read-write).
    pub work: PathBuf,
    /// Its output directory (read-write).
    pub out: PathBuf,
    /// Its `HOME` (read-write).
    pub home: PathBuf,
    /// Its `TMPDIR` (read-write).
    pub tmp: PathBuf,
    /// Directories no `PATH` entry may open (the worker's work root, the server's data
    /// directory), resolved: entries inside them, or holding them, are not granted.
    pub hidden: Vec<PathBuf>,
}

impl Confinement {
    /// The confinement of the run in `dir`, under a worker whose work root and other
    /// protected directories are `hidden`; links the granted paths under the worker's
    /// `real_home` into the run's home (and unlinks what was linked ahead for grants
    /// this run does not have), and records those places for the next run's standby.
    pub fn for_run(
        mode: SandboxMode,
        grants: AgentGrants,
        dir: &RunDir,
        hidden: Vec<PathBuf>,
        real_home: Option<&Path>,
    ) -> io::Result<(Confinement, Vec<PathBuf>)> {
        let mut confinement = Confinement {
            mode,
            grants,
            work: dir.work(),
            out: dir.out(),
            home: dir.home(),
            tmp: dir.tmp(),
            // Resolved once: every grant and `PATH` entry is checked against them.
            hidden: hidden.into_iter().map(resolved).collect(),
        };
        // A grant inside the worker's work root or the server's data directory, or
        // holding one (`~/.local`), would open what the sandbox exists to close.
        let mut dropped = Vec::new();
        for list in [&mut confinement.grants.read, &mut confinement.grants.write] {
            let granted = std::mem::take(list);
            for path in granted {
                if is_inside_or_holding(&path, &confinement.hidden) {
                    dropped.push(path);
                } else {
                    list.push(path);
                }
            }
        }
        let places = real_home.map_or_else(Vec::new, |real_home| {
            home_places(
                real_home,
                confinement
                    .grants
                    .read
                    .iter()
                    .chain(&confinement.grants.write),
            )
        });
        // First, so no link made ahead stands where (or above where) a grant is linked.
        unlink_ungranted(&confinement.home, dir.home_linked_ahead(), &places)?;
        if let Some(real_home) = real_home {
            mirror_home_grants(real_home, &confinement.home, &places)?;
        }
        if let Some(work_root) = dir.root().parent() {
            remember_home_places(work_root, dir.home_linked_ahead(), &places);
        }
        Ok((confinement, dropped))
    }

    /// The sandbox policy for `program` run with the search path `path_var`: the
    /// grants, each absolute `PATH` directory that is not hidden (read), the program
    /// itself when it is named by a path (read), and the run's directories (write).
    pub fn policy(&self, program: &OsStr, path_var: Option<&OsStr>) -> SandboxPolicy {
        let mut read = self.grants.read.clone();
        if let Some(path_var) = path_var {
            for dir in std::env::split_paths(path_var) {
                if dir.is_absolute() && dir != Path::new("/") && !self.is_hidden(&dir) {
                    read.push(dir);
                }
            }
        }
        let program = Path::new(program);
        if program.components().count() > 1
            && let Ok(resolved) = program.canonicalize()
            && !self.is_hidden(&resolved)
        {
            read.push(resolved);
        }
        let mut write = self.grants.write.clone();
        write.extend([
            self.work.clone(),
            self.out.clone(),
            self.home.clone(),
            self.tmp.clone(),
        ]);
        SandboxPolicy {
            read,
            write,
            network: self.grants.network.clone(),
        }
    }

    /// Whether `path` is inside a hidden directory or holds one.
    fn is_hidden(&self, path: &Path) -> bool {
        is_inside_or_holding(path, &self.hidden)
    }

    /// The sandbox for `policy` as the mode wants it: `Ok(None)` when the agent runs
    /// unsandboxed (`off`, or `auto` where none is possible), an error when `required`
    /// cannot be met.
    pub fn sandbox(&self, policy: &SandboxPolicy) -> io::Result<Option<tlao_sandbox::Sandbox>> {
        match self.mode {
            SandboxMode::Off => Ok(None),
            SandboxMode::Auto => match policy.prepare_on(take_system_rules()) {
                Ok(sandbox) => Ok(Some(sandbox)),
                Err(error) => {
                    tracing::warn!(%error, "the agent runs without a sandbox");
                    Ok(None)
                }
            },
            SandboxMode::Required => {
                policy
                    .prepare_on(take_system_rules())
                    .map(Some)
                    .map_err(|error| {
                        io::Error::other(format!("sandbox.mode is \"required\": {error}"))
                    })
            }
        }
    }
}

/// The system's sandbox rules a standby built while it waited ([`prepare_system_rules`]).
static SYSTEM_RULES: Kept<tlao_sandbox::SystemRules> = Kept::new();

/// Builds the rules every agent's sandbox holds (the system's paths, about half of a
/// sandbox's rules), for a standby worker to do while it waits: for a run whose network
/// policy is `network`, the worker's own, as most executors leave it (a run whose
/// policy is of the other kind builds all its rules itself). Nothing in `off` mode;
/// failing only means the run builds its own.
pub fn prepare_system_rules(mode: SandboxMode, network: &Network) {
    if mode == SandboxMode::Off {
        return;
    }
    match tlao_sandbox::SystemRules::prepare(*network != Network::Any) {
        Ok(rules) => *SYSTEM_RULES.slot() = Some(rules),
        Err(error) => tracing::debug!(%error, "cannot prepare the sandbox's system rules"),
    }
}

/// The rules [`prepare_system_rules`] built, for the next sandbox (once).
fn take_system_rules() -> Option<tlao_sandbox::SystemRules> {
    SYSTEM_RULES.slot().take()
}

/// Drops the rules [`prepare_system_rules`] built, if no sandbox took them.
pub fn discard_system_rules() {
    drop(take_system_rules());
}

/// What the run's log says about the sandbox of a worker in `mode` on a machine with
/// `support`, and whether the run may go on (`Err` when `required` cannot be met).
pub fn describe(mode: SandboxMode, support: &Support) -> Result<String, String> {
    match (mode, support) {
        (SandboxMode::Off, _) => Ok(
            "the agent runs without a sandbox (sandbox.mode = \"off\"); its environment is filtered".to_owned(),
        ),
        (_, Support::Landlock { abi }) => Ok(format!(
            "the agent runs sandboxed (Landlock ABI {abi}): it reads the system and what its executor was granted, writes only its workspace, output, home and temp directories"
        )),
        (SandboxMode::Auto, Support::Unavailable { reason }) => Ok(format!(
            "the agent runs WITHOUT a sandbox: {reason} (sandbox.mode = \"auto\")"
        )),
        (SandboxMode::Required, Support::Unavailable { reason }) => Err(format!(
            "this worker cannot sandbox agents ({reason}) and sandbox.mode is \"required\": set up a kernel with Landlock, or run it with sandbox.mode = \"auto\" or \"off\""
        )),
    }
}

/// Links each of `places` (the grants' places under the real home) in `run_home` to
/// the same place under `real_home` (`~/.kiro` → `<run home>/.kiro`), so an agent whose
/// `HOME` is the run's finds its login and configuration; the sandbox checks the link's
/// target, which is granted. Places already taken are skipped.
pub fn mirror_home_grants(real_home: &Path, run_home: &Path, places: &[PathBuf]) -> io::Result<()> {
    for place in places {
        link_place(real_home, run_home, place)?;
    }
    Ok(())
}

/// Links `relative` in `run_home` to the same place under `real_home`, making the
/// directories above it; whether it did. A place already taken, or below a link
/// ([`behind_link`]), is left as it is.
fn link_place(real_home: &Path, run_home: &Path, relative: &Path) -> io::Result<bool> {
    if behind_link(run_home, relative) {
        return Ok(false);
    }
    let link = run_home.join(relative);
    if std::fs::symlink_metadata(&link).is_ok() {
        return Ok(false);
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::os::unix::fs::symlink(real_home.join(relative), &link)?;
    Ok(true)
}

/// The places in a run's home where [`mirror_home_grants`] links `granted` paths.
fn home_places<'a>(
    real_home: &Path,
    granted: impl IntoIterator<Item = &'a PathBuf>,
) -> Vec<PathBuf> {
    granted
        .into_iter()
        .filter_map(|path| path.strip_prefix(real_home).ok())
        .filter(|relative| is_home_place(relative))
        .map(Path::to_owned)
        .collect()
}

/// Whether a directory above `relative` in `run_home` is a link (or not a directory):
/// what is made or removed there would be made or removed where that link points — in
/// the real home, for a granted place linked above this one (`.config` linked, then
/// `.config/kiro`). Such a place is left as it is.
fn behind_link(run_home: &Path, relative: &Path) -> bool {
    let mut dir = run_home.to_owned();
    let Some(parent) = relative.parent() else {
        return false;
    };
    for name in parent.components() {
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            // Not made yet: what is below it is made here.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return false,
            _ => return true,
        }
    }
    false
}

/// Whether `relative` names a place strictly inside a home: not empty, and nothing but
/// plain names (no `..`, no root).
fn is_home_place(relative: &Path) -> bool {
    !relative.as_os_str().is_empty()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// The file in a worker's work root naming the places in a run's home its last run
/// linked ([`mirror_home_grants`]), one per line: what a standby links ahead
/// ([`link_home_ahead`]), since the next run most likely gets the same grants.
pub const HOME_PLACES_FILE: &str = ".home-places";

/// Links into `run_home`, ahead of its run, the places the last run under `work_root`
/// linked ([`HOME_PLACES_FILE`]), each to the same place under `real_home`: what
/// [`mirror_home_grants`] would make for the same grants, so that run only checks
/// they are there. Returns the places linked; the run removes those its grants do not
/// name ([`Confinement::for_run`]). A place that cannot be linked is left to the run.
pub fn link_home_ahead(work_root: &Path, real_home: &Path, run_home: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(work_root.join(HOME_PLACES_FILE)) else {
        return Vec::new();
    };
    let mut linked = Vec::new();
    for line in text.lines() {
        let relative = Path::new(line);
        if is_home_place(relative) && link_place(real_home, run_home, relative).unwrap_or(false) {
            linked.push(relative.to_owned());
        }
    }
    linked
}

/// Removes from `run_home` the links made ahead ([`link_home_ahead`]) at places the
/// run's grants do not name (`granted`), and the directories made for them that are
/// left empty, so the home holds exactly what the run's grants link.
fn unlink_ungranted(run_home: &Path, ahead: &[PathBuf], granted: &[PathBuf]) -> io::Result<()> {
    for relative in ahead.iter().filter(|place| !granted.contains(place)) {
        // Made ahead only where no link stood above it; one may stand there now (a
        // place above it linked ahead too): then removing it is that link's removal.
        if behind_link(run_home, relative) {
            continue;
        }
        let link = run_home.join(relative);
        if std::fs::symlink_metadata(&link).is_ok_and(|meta| meta.is_symlink()) {
            std::fs::remove_file(&link)?;
        }
        let mut parent = link.parent();
        while let Some(dir) = parent.filter(|dir| *dir != run_home) {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
            parent = dir.parent();
        }
    }
    Ok(())
}

/// Records `places` as what the next run under `work_root` most likely links, unless
/// that is what `ahead` (read from the record) already says. Best effort: a record
/// that cannot be written only means the next standby links less ahead.
fn remember_home_places(work_root: &Path, ahead: &[PathBuf], places: &[PathBuf]) {
    if ahead == places {
        return;
    }
    let mut text = String::new();
    for place in places {
        // A place that is not UTF-8 is linked by its run, not ahead.
        if let Some(line) = place.to_str().filter(|line| !line.contains('\n')) {
            text.push_str(line);
            text.push('\n');
        }
    }
    // Written aside and renamed, so that a standby (or another worker sharing the work
    // root) reads a whole record, this one or the one before.
    let record = work_root.join(HOME_PLACES_FILE);
    let aside = work_root.join(format!("{HOME_PLACES_FILE}.{}", std::process::id()));
    let written = std::fs::write(&aside, text).and_then(|()| std::fs::rename(&aside, &record));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&aside);
        tracing::debug!(%error, "cannot record the home places to link ahead");
    }
}

/// The whole environment of an agent: from the worker's `worker_env`, the allowlisted
/// names ([`ALLOWED_ENV`], `LC_*`) and those `pass_env` names (never `TLAO_*`); its
/// `HOME`, `TMPDIR` (`TMP`, `TEMP`) and `XDG_*_HOME` in the run's home and temp
/// directories when it is confined (else the worker's `HOME` and `TMPDIR`); then the
/// command's own `command_env` (the record's `env`, the run's `TLAO_*` paths).
pub fn agent_env(
    worker_env: impl IntoIterator<Item = (OsString, OsString)>,
    confinement: Option<&Confinement>,
    command_env: &BTreeMap<OsString, OsString>,
) -> BTreeMap<OsString, OsString> {
    let pass: &[String] = confinement.map_or(&[], |c| &c.grants.pass_env);
    let mut env = BTreeMap::new();
    for (name, value) in worker_env {
        let Some(text) = name.to_str() else {
            continue;
        };
        let allowed = ALLOWED_ENV.contains(&text)
            || text.starts_with("LC_")
            || (confinement.is_none() && matches!(text, "HOME" | "TMPDIR"))
            || (!text.starts_with("TLAO_") && pass.iter().any(|p| passes(p, text)));
        if allowed {
            env.insert(name, value);
        }
    }
    if let Some(confinement) = confinement {
        let home = confinement.home.as_os_str();
        let tmp = confinement.tmp.as_os_str();
        env.insert("HOME".into(), home.to_owned());
        for name in ["TMPDIR", "TMP", "TEMP"] {
            env.insert(name.into(), tmp.to_owned());
        }
        for (name, sub) in [
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_DATA_HOME", ".local/share"),
            ("XDG_STATE_HOME", ".local/state"),
        ] {
            env.insert(name.into(), confinement.home.join(sub).into_os_string());
        }
    }
    env.extend(command_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Whether the pass-through entry `pattern` (a name, or a prefix ending in `*`) lets
/// `name` through; `TLAO_*` patterns let nothing through.
fn passes(pattern: &str, name: &str) -> bool {
    if pattern.starts_with("TLAO_") {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => !prefix.is_empty() && name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confinement(pass_env: &[&str]) -> Confinement {
        Confinement {
            mode: SandboxMode::Auto,
            grants: AgentGrants {
                pass_env: pass_env.iter().map(|s| (*s).to_owned()).collect(),
                ..AgentGrants::default()
            },
            work: "/w/run/work".into(),
            out: "/w/run/out".into(),
            home: "/w/run/home".into(),
            tmp: "/w/run/tmp".into(),
            hidden: vec!["/w".into(), "/data".into()],
        }
    }

    fn worker_env() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C"),
            ("HOME", "/root"),
            ("TMPDIR", "/tmp"),
            ("TLAO_WORKER_TOKEN", "worker-secret"),
            ("TLAO_AUTH__SECRET", "auth-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("KIRO_STANDIN_MODE", "plan"),
            ("KIRO_API_KEY", "kiro-key"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn names(env: &BTreeMap<OsString, OsString>) -> Vec<String> {
        env.keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_environment_is_an_allowlist() {
        let c = confinement(&["KIRO_STANDIN_*", "TLAO_*", "TLAO_AUTH__SECRET"]);
        let mut own = BTreeMap::new();
        own.insert(
            OsString::from("TLAO_OUTPUT_DIR"),
            OsString::from("/w/run/out"),
        );
        let env = agent_env(worker_env(), Some(&c), &own);
        let names = names(&env);
        for secret in [
            "TLAO_WORKER_TOKEN",
            "TLAO_AUTH__SECRET",
            "AWS_SECRET_ACCESS_KEY",
            "KIRO_API_KEY",
        ] {
            assert!(
                !names.iter().any(|n| n == secret),
                "{secret} leaked: {names:?}"
            );
        }
        for kept in [
            "PATH",
            "LANG",
            "LC_ALL",
            "KIRO_STANDIN_MODE",
            "TLAO_OUTPUT_DIR",
        ] {
            assert!(names.iter().any(|n| n == kept), "{kept} missing: {names:?}");
        }
        assert_eq!(env[OsStr::new("HOME")], "/w/run/home");
        assert_eq!(env[OsStr::new("TMPDIR")], "/w/run/tmp");
        assert_eq!(env[OsStr::new("TEMP")], "/w/run/tmp");
        assert_eq!(env[OsStr::new("XDG_CONFIG_HOME")], "/w/run/home/.config");
    }

    #[test]
    fn unconfined_commands_keep_the_workers_home_but_no_secret() {
        let env = agent_env(worker_env(), None, &BTreeMap::new());
        assert_eq!(env[OsStr::new("HOME")], "/root");
        assert!(!env.contains_key(OsStr::new("TLAO_WORKER_TOKEN")));
        assert!(!env.contains_key(OsStr::new("KIRO_STANDIN_MODE")));
    }

    #[test]
    fn path_entries_inside_or_holding_hidden_directories_are_not_granted() {
        let c = confinement(&[]);
        let policy = c.policy(
            OsStr::new("sh"),
            Some(OsStr::new(
                "/usr/bin:relative/bin:/w/run/work/bin:/:/data/x:/opt/tool/bin",
            )),
        );
        assert_eq!(
            policy.read,
            vec![PathBuf::from("/usr/bin"), PathBuf::from("/opt/tool/bin")]
        );
        assert!(policy.write.contains(&PathBuf::from("/w/run/home")));
    }

    #[test]
    fn a_records_grants_join_the_workers_and_home_paths_resolve_against_its_home() {
        let record: SandboxGrants = serde_json::from_value(serde_json::json!({
            "readPaths": ["~/.claude", "/opt/models"],
            "writePaths": ["~/.cache/claude"],
            "env": ["ANTHROPIC_*"],
            "network": {"tcpPorts": [443]}
        }))
        .unwrap();
        let worker = AgentGrants {
            read: vec!["/srv/shared".into()],
            pass_env: vec!["KIRO_*".into()],
            ..AgentGrants::default()
        };
        let grants = worker.with_record(&record, Some(Path::new("/home/dev")));
        assert_eq!(
            grants.read,
            [
                PathBuf::from("/srv/shared"),
                PathBuf::from("/home/dev/.claude"),
                PathBuf::from("/opt/models")
            ]
        );
        assert_eq!(grants.write, [PathBuf::from("/home/dev/.cache/claude")]);
        assert_eq!(grants.pass_env, ["KIRO_*", "ANTHROPIC_*"]);
        assert_eq!(grants.network, Network::TcpPorts([443].into()));
        // Without a HOME, `~/...` grants are left out; an `any` record keeps the worker's
        // network policy.
        let worker = AgentGrants {
            network: Network::None,
            ..AgentGrants::default()
        };
        let any: SandboxGrants =
            serde_json::from_value(serde_json::json!({"readPaths": ["~/.claude"]})).unwrap();
        let grants = worker.with_record(&any, None);
        assert!(grants.read.is_empty());
        assert_eq!(grants.network, Network::None);
    }

    #[test]
    fn grants_inside_or_holding_the_work_root_or_data_dir_are_dropped() {
        let root = tempfile::tempdir().unwrap();
        let work_root = root.path().join("runs");
        let data = root.path().join("home/.local/share/tlao");
        std::fs::create_dir_all(&data).unwrap();
        let dir = RunDir::create(
            &work_root,
            &"ws_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap(),
            &"run_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap(),
            &"lease_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap(),
        )
        .unwrap();
        let kept = root.path().join("home/.claude");
        let grants = AgentGrants {
            read: vec![
                root.path().join("home/.local"),
                kept.clone(),
                data.join("x"),
            ],
            write: vec![root.path().to_owned()],
            ..AgentGrants::default()
        };
        // The data directory named through a link: what it resolves to is hidden.
        let data_link = root.path().join("data-link");
        std::os::unix::fs::symlink(&data, &data_link).unwrap();
        let (confinement, dropped) = Confinement::for_run(
            SandboxMode::Auto,
            grants,
            &dir,
            vec![work_root.clone(), data_link],
            None,
        )
        .unwrap();
        assert_eq!(confinement.grants.read, [kept]);
        assert!(confinement.grants.write.is_empty());
        assert_eq!(
            dropped,
            [
                root.path().join("home/.local"),
                data.join("x"),
                root.path().to_owned()
            ]
        );
    }

    #[test]
    fn granted_paths_under_the_real_home_are_linked_into_the_runs() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let real = tmp.path().join("real");
        let run = tmp.path().join("run");
        std::fs::create_dir_all(real.join(".config/kiro")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(&run).unwrap_or_else(|e| panic!("{e}"));
        let granted = [
            real.join(".config/kiro"),
            real.join(".kiro"),
            real.clone(),
            PathBuf::from("/etc/other"),
        ];
        mirror_home_grants(&real, &run, &home_places(&real, &granted))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            home_places(&real, &granted),
            [PathBuf::from(".config/kiro"), PathBuf::from(".kiro")]
        );
        assert_eq!(
            std::fs::read_link(run.join(".config/kiro")).ok(),
            Some(real.join(".config/kiro"))
        );
        assert_eq!(
            std::fs::read_link(run.join(".kiro")).ok(),
            Some(real.join(".kiro"))
        );
        let entries: Vec<_> = std::fs::read_dir(&run)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(entries.len(), 2, "{entries:?}");
        // Again: nothing to do, no error.
        mirror_home_grants(&real, &run, &home_places(&real, &granted))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn nothing_is_made_or_removed_in_the_real_home_through_a_linked_place() {
        let tmp = tempfile::tempdir().unwrap();
        let (real, run, work_root) = (
            tmp.path().join("real"),
            tmp.path().join("run"),
            tmp.path().join("work"),
        );
        for dir in [real.join(".config/a"), run.clone(), work_root.clone()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink("/etc/hostname", real.join(".config/a/x")).unwrap();

        // A grant above another: `.config` is linked; `.config/kiro` would be made
        // through that link, in the real home.
        let granted = [real.join(".config"), real.join(".config/kiro")];
        mirror_home_grants(&real, &run, &home_places(&real, &granted)).unwrap();
        assert_eq!(
            std::fs::read_link(run.join(".config")).unwrap(),
            real.join(".config")
        );
        assert!(std::fs::symlink_metadata(real.join(".config/kiro")).is_err());

        // Linked ahead from a record naming both: the same.
        let ahead = tmp.path().join("ahead");
        std::fs::create_dir_all(&ahead).unwrap();
        std::fs::write(
            work_root.join(HOME_PLACES_FILE),
            ".config\n.config/opencode\n",
        )
        .unwrap();
        assert_eq!(
            link_home_ahead(&work_root, &real, &ahead),
            [PathBuf::from(".config")]
        );
        assert!(std::fs::symlink_metadata(real.join(".config/opencode")).is_err());

        // Unlinking a place behind a link would unlink the real home's `x` and remove
        // its directory `a`: left alone; the link itself goes.
        unlink_ungranted(
            &ahead,
            &[PathBuf::from(".config/a/x"), PathBuf::from(".config")],
            &[],
        )
        .unwrap();
        assert!(std::fs::symlink_metadata(real.join(".config/a/x")).is_ok());
        assert!(std::fs::symlink_metadata(ahead.join(".config")).is_err());

        // The record is replaced whole.
        remember_home_places(&work_root, &[], &[PathBuf::from(".kiro")]);
        assert_eq!(
            std::fs::read_to_string(work_root.join(HOME_PLACES_FILE)).unwrap(),
            ".kiro\n"
        );
        assert_eq!(
            std::fs::read_dir(&work_root).unwrap().count(),
            1,
            "nothing left aside"
        );
    }

    /// A standby's rules go to the first sandbox made after them, once; none are made
    /// in `off` mode.
    #[test]
    fn the_system_rules_built_ahead_go_to_the_next_sandbox_once() {
        if !tlao_sandbox::support().is_available() {
            return;
        }
        let confinement = confinement(&[]);
        let policy = confinement.policy(OsStr::new("sh"), Some(OsStr::new("/usr/bin")));
        prepare_system_rules(SandboxMode::Off, &Network::Any);
        assert!(SYSTEM_RULES.slot().is_none());
        prepare_system_rules(SandboxMode::Auto, &Network::Any);
        assert!(SYSTEM_RULES.slot().is_some());
        assert!(confinement.sandbox(&policy).unwrap().is_some());
        assert!(SYSTEM_RULES.slot().is_none(), "taken by the sandbox");
        assert!(
            confinement.sandbox(&policy).unwrap().is_some(),
            "built whole"
        );
        prepare_system_rules(SandboxMode::Required, &Network::None);
        discard_system_rules();
        assert!(SYSTEM_RULES.slot().is_none());
    }

    #[test]
    fn modes_parse_and_required_refuses_without_support() {
        assert_eq!("required".parse(), Ok(SandboxMode::Required));
        assert!("on".parse::<SandboxMode>().is_err());
        let none = Support::Unavailable {
            reason: "no Landlock".into(),
        };
        assert!(describe(SandboxMode::Required, &none).is_err());
        assert!(describe(SandboxMode::Auto, &none).is_ok_and(|t| t.contains("WITHOUT")));
        assert!(describe(SandboxMode::Required, &Support::Landlock { abi: 7 }).is_ok());
    }
}
