//! What a client command talks to and as whom: the stored profile (see
//! [`crate::profile`]), overridden by `TLAO_API_URL` and `TLAO_TOKEN`, turned into a
//! [`TlaoClient`]. A token the client renews with the stored key is written back, so
//! the next command does not exchange the key again.

use anyhow::Context as _;
use tlao_domain::{Timestamp, WorkspaceId};
use tlao_sdk::{Credentials as ApiCredentials, TlaoClient};

use crate::errors::CliError;
use crate::profile::{Credentials, Profile};

/// The API URL when neither the profile nor `TLAO_API_URL` gives one: `tlao dev`'s.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7411";

/// A resolved login.
#[derive(Debug)]
pub struct Context {
    /// The profile's name.
    pub profile_name: String,
    /// The stored profile (empty when there is none).
    pub profile: Profile,
    /// The client.
    pub client: TlaoClient,
    /// Whether the token came from `TLAO_TOKEN` (and so is not stored).
    token_from_env: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The API URL a command uses: `TLAO_API_URL`, else the profile's, else the default.
pub fn api_url_for(profile: Option<&Profile>) -> String {
    env("TLAO_API_URL")
        .or_else(|| {
            profile
                .map(|p| p.api_url.clone())
                .filter(|url| !url.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

impl Context {
    /// Resolves `profile_name`: fails with [`CliError::NotLoggedIn`] when there is
    /// neither a stored token or key nor `TLAO_TOKEN`.
    pub fn load(profile_name: &str) -> anyhow::Result<Context> {
        let stored = Credentials::load()?;
        let profile = stored
            .profiles
            .get(profile_name)
            .cloned()
            .unwrap_or_default();
        let api_url = api_url_for(Some(&profile));
        let expires_at = profile
            .token_expires_at
            .as_deref()
            .and_then(|at| at.parse::<Timestamp>().ok());
        let (credentials, token_from_env) = match env("TLAO_TOKEN") {
            Some(token) => (ApiCredentials::token(token), true),
            None => match (&profile.token, &profile.api_key) {
                (Some(token), Some(key)) => {
                    (ApiCredentials::session(token, expires_at, key), false)
                }
                (None, Some(key)) => (ApiCredentials::api_key(key), false),
                (Some(token), None) => (ApiCredentials::token(token), false),
                (None, None) => {
                    return Err(CliError::NotLoggedIn {
                        profile: profile_name.to_owned(),
                        api_url,
                    }
                    .into());
                }
            },
        };
        let client = TlaoClient::new(api_url, credentials)?;
        Ok(Context {
            profile_name: profile_name.to_owned(),
            profile,
            client,
            token_from_env,
        })
    }

    /// The workspace to use: `explicit`, else the profile's default, else the
    /// caller's oldest workspace.
    pub async fn workspace(&self, explicit: Option<&WorkspaceId>) -> anyhow::Result<WorkspaceId> {
        if let Some(id) = explicit {
            return Ok(id.clone());
        }
        if let Some(id) = self
            .profile
            .workspace_id
            .as_deref()
            .and_then(|id| id.parse::<WorkspaceId>().ok())
        {
            return Ok(id);
        }
        let workspaces = self
            .client
            .list_workspaces()
            .await
            .context("finding your workspace")?;
        workspaces
            .into_iter()
            .next()
            .map(|w| w.workspace_id)
            .ok_or_else(|| {
                CliError::Usage(
                    "you belong to no workspace yet: create one with `tlao workspace create NAME`"
                        .into(),
                )
                .into()
            })
    }

    /// Stores the session token when the client renewed it (not for `TLAO_TOKEN`).
    pub fn save_session(&self) -> anyhow::Result<()> {
        if self.token_from_env {
            return Ok(());
        }
        let Some(session) = self.client.session() else {
            return Ok(());
        };
        if self.profile.token.as_deref() == Some(session.token.as_str()) {
            return Ok(());
        }
        let mut stored = Credentials::load()?;
        if let Some(profile) = stored.profiles.get_mut(&self.profile_name) {
            profile.token = Some(session.token);
            profile.token_expires_at = session.expires_at.map(|at| at.to_string());
            stored.save()?;
        }
        Ok(())
    }

    /// Changes the stored profile with `change` and saves it.
    pub fn update_profile(&self, change: impl FnOnce(&mut Profile)) -> anyhow::Result<()> {
        let mut stored = Credentials::load()?;
        let profile = stored
            .profiles
            .entry(self.profile_name.clone())
            .or_insert_with(|| self.profile.clone());
        change(profile);
        stored.save()
    }
}
