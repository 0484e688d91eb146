//! `tlao keys list|create|revoke`: the API keys of the logged-in user (or, for an
//! administrator, of any user with `--user`). A new key is printed once; a revoked key
//! gets no more tokens, while tokens it already got work until they expire.

use anyhow::Context as _;
use serde::Serialize;
use tlao_domain::{KeyId, UserId};

use crate::commands::auth::Claims;
use crate::context::Context;
use crate::errors::Exit;
use crate::output::{self, Table};

/// `tlao keys ...`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao keys list\n  \
    tlao keys create            # prints the new key once\n  \
    tlao keys revoke key_01J...\n  \
    tlao keys list --user usr_01J... --json   # an administrator, for another user\n\n\
    Rotating a key: create a new one, log in with it (tlao login), revoke the old one.\n\
    A revoked key gets no more tokens; tokens it already got work until they expire\n\
    (auth.token_ttl_seconds, 12 hours by default).")]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The subcommands of `tlao keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// List the API keys (ids, created, last used; never the keys).
    ///
    /// Example: tlao keys list --json
    List(ListArgs),
    /// Issue a new API key, printed once.
    ///
    /// Example: tlao keys create
    Create(CreateArgs),
    /// Revoke an API key: it gets no more tokens.
    ///
    /// Example: tlao keys revoke key_01J...
    Revoke(RevokeArgs),
}

/// Whose keys: the logged-in user's unless an administrator names another.
#[derive(Debug, clap::Args)]
pub struct UserArg {
    /// The user (`usr_...`) whose keys to manage; yourself by default (another user's
    /// needs an administrator).
    #[arg(long = "user", value_name = "USER_ID")]
    pub user: Option<UserId>,
}

/// Options of `tlao keys list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub user: UserArg,
    /// Print the keys as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao keys create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub user: UserArg,
    /// Print `{"keyId","userId","apiKey","createdAt"}`.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao keys revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key (`key_...`), as `tlao keys list` shows it.
    pub key_id: KeyId,
    #[command(flatten)]
    pub user: UserArg,
    /// Print `{"keyId","userId","revoked":true}`.
    #[arg(long)]
    pub json: bool,
}

/// What `tlao keys revoke --json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Revoked<'a> {
    key_id: &'a KeyId,
    user_id: &'a UserId,
    revoked: bool,
}

/// `tlao keys ...`.
pub async fn keys(args: KeysArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    match args.command {
        KeysCommand::List(list) => {
            let user = user_of(&ctx, list.user).await?;
            let keys = ctx
                .client
                .list_keys(&user)
                .await
                .with_context(|| format!("listing the API keys of {user}"))?;
            if list.json {
                output::print_json(&keys)?;
            } else {
                let mut table = Table::new(&["KEY", "CREATED", "LAST USED"]);
                for key in &keys {
                    table.row(vec![
                        key.key_id.to_string(),
                        key.created_at.to_string(),
                        key.last_used_at
                            .map_or_else(|| "never".to_owned(), |at| at.to_string()),
                    ]);
                }
                table.print()?;
            }
        }
        KeysCommand::Create(create) => {
            let user = user_of(&ctx, create.user).await?;
            let created = ctx
                .client
                .create_key(&user)
                .await
                .with_context(|| format!("creating an API key for {user}"))?;
            if create.json {
                output::print_json(&created)?;
            } else {
                println!("{}", created.api_key);
                output::success(format!(
                    "created API key {} for {user}; it is shown only now, so store it (tlao login --with-token reads it from stdin)",
                    created.key_id
                ));
            }
        }
        KeysCommand::Revoke(revoke) => {
            let user = user_of(&ctx, revoke.user).await?;
            ctx.client
                .revoke_key(&user, &revoke.key_id)
                .await
                .with_context(|| format!("revoking API key {}", revoke.key_id))?;
            if revoke.json {
                output::print_json(&Revoked {
                    key_id: &revoke.key_id,
                    user_id: &user,
                    revoked: true,
                })?;
            } else {
                output::success(format!(
                    "revoked API key {}; tokens it already got work until they expire",
                    revoke.key_id
                ));
            }
        }
    }
    ctx.save_session()?;
    Ok(Exit::Success)
}

/// The user named by `--user`, else the one the profile's token is for.
async fn user_of(ctx: &Context, given: UserArg) -> anyhow::Result<UserId> {
    if let Some(user) = given.user {
        return Ok(user);
    }
    let token = ctx.client.bearer().await.context("authenticating")?;
    Claims::of(&token)
        .and_then(|claims| claims.sub.parse().ok())
        .context("the session token does not say whose it is; pass --user")
}
