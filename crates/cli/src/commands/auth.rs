//! `tlao login`, `tlao logout`, `tlao whoami`: the stored login of a profile. The API
//! key is read from a flag, from stdin (`--with-token`) or from a prompt that does not
//! echo; it is exchanged for a session token (`POST /auth/token`) and both are stored
//! in the credentials file (mode 0600). Neither is ever printed.

use std::io::{IsTerminal, Read};

use anyhow::Context as _;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tlao_sdk::{Credentials as ApiCredentials, TlaoClient};

use crate::context::{Context, api_url_for};
use crate::errors::{CliError, Exit};
use crate::output;
use crate::profile::{Credentials, Profile};

/// Options of `tlao login`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao login                                   # prompts for the key\n  \
    tlao login --api-url https://tlao.example.com --with-token < key.txt\n  \
    tlao --profile staging login --api-url https://staging.example.com")]
pub struct LoginArgs {
    /// The API's URL [default: TLAO_API_URL, else the profile's, else http://127.0.0.1:7411].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// The API key (it lands in your shell history; prefer --with-token or the prompt).
    #[arg(long, value_name = "KEY", conflicts_with = "with_token")]
    pub api_key: Option<String>,
    /// Read the API key from standard input.
    #[arg(long)]
    pub with_token: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao whoami`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  tlao whoami\n  tlao whoami --json | jq -r .userId")]
pub struct WhoamiArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `login` and `whoami` print with `--json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    profile: String,
    api_url: String,
    user_id: String,
    admin: bool,
    token_expires_at: Option<String>,
    workspace_id: Option<String>,
}

/// `tlao login`.
pub async fn login(args: LoginArgs, profile_name: &str) -> anyhow::Result<Exit> {
    let mut stored = Credentials::load()?;
    let existing = stored.profiles.get(profile_name).cloned();
    let api_url = match args.api_url {
        Some(url) => url.trim().trim_end_matches('/').to_owned(),
        None => api_url_for(existing.as_ref()),
    };
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--api-url {api_url:?} is not an http:// or https:// URL"
        ))
        .into());
    }
    let api_key = read_key(args.api_key, args.with_token)?;
    let client = TlaoClient::new(api_url.clone(), ApiCredentials::api_key(api_key.clone()))?;
    let grant = client
        .exchange_key(&api_key)
        .await
        .with_context(|| format!("logging in to {api_url}"))?;
    let workspace_id = existing
        .as_ref()
        .filter(|p| p.api_url == api_url)
        .and_then(|p| p.workspace_id.clone());
    stored.profiles.insert(
        profile_name.to_owned(),
        Profile {
            api_url: api_url.clone(),
            api_key: Some(api_key),
            token: Some(grant.token.clone()),
            token_expires_at: Some(grant.expires_at.to_string()),
            workspace_id: workspace_id.clone(),
        },
    );
    stored.save()?;
    let claims = Claims::of(&grant.token);
    if args.json {
        output::print_json(&Identity {
            profile: profile_name.to_owned(),
            api_url,
            user_id: grant.user_id.to_string(),
            admin: claims.as_ref().is_some_and(|c| c.adm),
            token_expires_at: Some(grant.expires_at.to_string()),
            workspace_id,
        })?;
    } else {
        output::success(format!(
            "Logged in to {api_url} as {} (profile {profile_name:?})",
            grant.user_id
        ));
    }
    Ok(Exit::Success)
}

/// The API key from `--api-key`, stdin (`--with-token`) or a silent prompt.
fn read_key(flag: Option<String>, with_token: bool) -> anyhow::Result<String> {
    let key = if let Some(key) = flag {
        key
    } else if with_token {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the API key from stdin")?;
        text
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API key: ").context("reading the API key")?
    } else {
        return Err(CliError::Usage(
            "no API key: pass --api-key KEY, or --with-token to read it from stdin".into(),
        )
        .into());
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        return Err(CliError::Usage("the API key is empty".into()).into());
    }
    Ok(key)
}

/// `tlao logout`: forgets the profile's key and token (its URL and default workspace
/// stay, for the next `tlao login`).
pub fn logout(profile_name: &str) -> anyhow::Result<Exit> {
    let mut stored = Credentials::load()?;
    match stored.profiles.get_mut(profile_name) {
        Some(profile) if profile.api_key.is_some() || profile.token.is_some() => {
            profile.api_key = None;
            profile.token = None;
            profile.token_expires_at = None;
            let url = profile.api_url.clone();
            stored.save()?;
            output::success(format!("Logged out of {url} (profile {profile_name:?})"));
        }
        _ => output::note(format!("profile {profile_name:?} holds no login")),
    }
    Ok(Exit::Success)
}

/// `tlao whoami`: checks the login against the server and says who it is.
pub async fn whoami(args: WhoamiArgs, profile_name: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile_name)?;
    // Any authenticated call proves the token (and renews it when it expired).
    ctx.client
        .list_workspaces()
        .await
        .context("checking the login")?;
    ctx.save_session()?;
    let session = ctx.client.session();
    let claims = session.as_ref().and_then(|s| Claims::of(&s.token));
    let identity = Identity {
        profile: ctx.profile_name.clone(),
        api_url: ctx.client.api_url().to_owned(),
        user_id: claims
            .as_ref()
            .map(|c| c.sub.clone())
            .unwrap_or_else(|| "unknown".into()),
        admin: claims.as_ref().is_some_and(|c| c.adm),
        token_expires_at: session
            .as_ref()
            .and_then(|s| s.expires_at)
            .map(|at| at.to_string()),
        workspace_id: ctx.profile.workspace_id.clone(),
    };
    if args.json {
        output::print_json(&identity)?;
        return Ok(Exit::Success);
    }
    let role = if identity.admin {
        " (administrator)"
    } else {
        ""
    };
    println!(
        "Logged in to {} as {}{role}",
        identity.api_url, identity.user_id
    );
    println!("  profile:    {}", identity.profile);
    if let Some(ws) = &identity.workspace_id {
        println!("  workspace:  {ws}");
    }
    if let Some(at) = &identity.token_expires_at {
        println!("  token expires: {at}");
    }
    if std::env::var_os("TLAO_TOKEN").is_some_and(|v| !v.is_empty()) {
        println!("  token from: TLAO_TOKEN");
    }
    Ok(Exit::Success)
}

/// The claims of a session token that say who it is for; read without verifying the
/// signature (the server just accepted the token).
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    /// The user.
    pub(crate) sub: String,
    /// Whether they are an administrator.
    #[serde(default)]
    pub(crate) adm: bool,
}

impl Claims {
    /// The claims of `token`, when it is a JWT with them.
    pub(crate) fn of(token: &str) -> Option<Claims> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
