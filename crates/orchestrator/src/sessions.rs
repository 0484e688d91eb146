//! Console sessions: server-side, revocable, and no use anywhere but the console.
//!
//! Signing in to the console creates a session record in the table and gives the
//! browser an opaque random secret (256 bits). Only the secret's SHA-256 — the session
//! id — is stored, at `SESSION#{sid}`, so a leaked table does not leak live sessions,
//! and looking a secret up is a point read by its hash: no secret is ever compared
//! byte by byte, so there is nothing to time.
//!
//! A session is valid while its record exists and its `expiresAt` (seconds since the
//! epoch, DynamoDB's TTL attribute; other engines keep the item and this module treats
//! it as absent) is in the future. Ending a session deletes the record, so the cookie
//! stops working at once on every API instance. The secret is not a bearer token: the
//! REST API's extractor only accepts signed JWTs, which this is not.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tlao_domain::{Timestamp, User, UserId, keys};
use tlao_ports::{AttrValue, Condition, Item};

use crate::attrs::{self, kind};
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::users::hex_lower;

/// A console session's default lifetime when not ended: 12 hours (the API passes its
/// configured token lifetime).
pub const SESSION_TTL_SECONDS: i64 = 12 * 3600;

/// A session just started: the secret for the cookie and when it expires.
#[derive(Debug, Clone)]
pub struct StartedSession {
    /// The secret the browser keeps (URL-safe, 64 hex characters); never stored.
    pub secret: String,
    /// When the session ends by itself.
    pub expires_at: Timestamp,
}

/// Starts, resolves and ends console sessions.
pub struct SessionService {
    core: Arc<Core>,
}

/// The session id of a secret: its hex SHA-256, as stored.
fn session_id(secret: &str) -> String {
    hex_lower(&Sha256::digest(secret.as_bytes()))
}

impl SessionService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        SessionService { core }
    }

    /// Starts a session for `user`, valid for `ttl_seconds` (at least one second).
    pub async fn start(
        &self,
        user: &User,
        ttl_seconds: i64,
    ) -> Result<StartedSession, ServiceError> {
        let secret = hex_lower(&rand::random::<[u8; 32]>());
        let now = self.core.now();
        let expires_seconds = now.unix_millis().div_euclid(1000) + ttl_seconds.max(1);
        let item = Item::new(keys::session(&session_id(&secret)))
            .with(attrs::KIND, AttrValue::S(kind::SESSION.into()))
            .with(attrs::USER_ID, AttrValue::S(user.user_id.to_string()))
            .with(attrs::ADMIN, AttrValue::Bool(user.admin))
            .with(attrs::CREATED_AT, AttrValue::N(now.unix_millis()))
            .with(attrs::EXPIRES_AT, AttrValue::N(expires_seconds));
        self.core
            .store
            .put_item(item, Some(Condition::NotExists))
            .await?;
        Ok(StartedSession {
            secret,
            expires_at: Timestamp::from_unix_millis(expires_seconds.saturating_mul(1000)),
        })
    }

    /// The caller of a live session: `None` when the secret names no session, or one
    /// that ended or expired. One point read.
    pub async fn resolve(&self, secret: &str) -> Result<Option<Caller>, ServiceError> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let Some(item) = self
            .core
            .store
            .get_item(&keys::session(&session_id(secret)))
            .await?
        else {
            return Ok(None);
        };
        let now_seconds = self.core.now().unix_millis().div_euclid(1000);
        if item.n(attrs::EXPIRES_AT).is_none_or(|at| at <= now_seconds) {
            return Ok(None);
        }
        let Some(user_id) = item
            .s(attrs::USER_ID)
            .and_then(|id| id.parse::<UserId>().ok())
        else {
            return Ok(None);
        };
        let admin = matches!(item.attrs.get(attrs::ADMIN), Some(AttrValue::Bool(true)));
        Ok(Some(Caller { user_id, admin }))
    }

    /// Ends a session: its record is deleted, so its secret stops working everywhere.
    /// Ending a session that does not exist does nothing.
    pub async fn end(&self, secret: &str) -> Result<(), ServiceError> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(());
        }
        self.core
            .store
            .delete(&keys::session(&session_id(secret)), None)
            .await?;
        Ok(())
    }
}
