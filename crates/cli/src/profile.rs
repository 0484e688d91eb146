//! The CLI's stored logins: `$XDG_CONFIG_HOME/tlao/credentials.json` (mode 0600), one
//! profile per server. `TLAO_CONFIG_DIR` moves the directory (tests use it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::secrets::write_private;
use crate::settings::xdg_dir;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// One server login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The API's base URL.
    pub api_url: String,
    /// The API key, kept so expired session tokens can be renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The current session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the session token expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<String>,
    /// The workspace commands use when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// Every stored profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// By name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Credentials {
    /// Where the file lives.
    pub fn path() -> anyhow::Result<PathBuf> {
        let dir = match std::env::var_os("TLAO_CONFIG_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => xdg_dir("XDG_CONFIG_HOME", ".config")?.join("tlao"),
        };
        Ok(dir.join("credentials.json"))
    }

    /// Reads the file; an absent file is no profiles.
    pub fn load() -> anyhow::Result<Credentials> {
        let path = Self::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid credentials file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the file, owner-readable only.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = Self::path()?;
        write_private(&path, &serde_json::to_string_pretty(self)?)
    }
}
