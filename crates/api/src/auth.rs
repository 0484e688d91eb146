//! Bearer tokens: HS256 JWTs issued by `POST /auth/token` in exchange for an API key,
//! and the [`Authenticated`] extractor that turns one back into a [`Caller`].
//!
//! Expiry is checked against the services' clock (the one quotas and presigned URLs
//! use), with a few seconds of leeway for clock skew between API instances. Every way a
//! token can be wrong is a 401 whose detail says which.
//!
//! A token's signature and claims are checked once, then remembered for
//! [`VERIFIED_TTL`] (at most [`VERIFIED_CAPACITY`] tokens): what a token says cannot
//! change (it is signed with the one secret this process holds), so a remembered token
//! only has its expiry checked again, against the clock, on every request. Only tokens
//! that passed are remembered; a bad token is checked (and refused) every time.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::ops::Deref;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tlao_domain::{Timestamp, User, UserId};
use tlao_orchestrator::Caller;

use crate::error::ApiError;
use crate::request_id;
use crate::state::AppState;

/// The `iss` claim of every token this API issues and accepts.
pub const ISSUER: &str = "tlao";

/// How far past its `exp` a token is still accepted, for clock skew.
pub const LEEWAY_SECONDS: i64 = 5;

/// The claims of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Whether the user is an administrator.
    pub adm: bool,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Always [`ISSUER`].
    pub iss: String,
}

/// How long a verified token is remembered before its signature is checked again.
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// How many verified tokens are remembered; when full, the memory starts over.
pub const VERIFIED_CAPACITY: usize = 10_000;

/// What a verified token says: its caller and its `exp` claim.
#[derive(Debug, Clone)]
struct Verified {
    caller: Caller,
    exp: i64,
    at: Instant,
}

/// Signs and checks tokens with one secret.
pub(crate) struct TokenAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Tokens whose signature and claims passed, by token text.
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

impl TokenAuthority {
    /// The authority for `secret`; `None` when the secret is empty.
    pub fn new(secret: &[u8], ttl: Duration) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the services' clock in `verify`.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Some(TokenAuthority {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// How long a token (and a console session) lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user`, issued at `now`, and when it expires.
    pub fn issue(&self, user: &User, now: Timestamp) -> Result<(String, Timestamp), ApiError> {
        let iat = now.unix_millis().div_euclid(1000);
        let exp = iat.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = Claims {
            sub: user.user_id.to_string(),
            adm: user.admin,
            iat,
            exp,
            iss: ISSUER.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok((token, Timestamp::from_unix_millis(exp.saturating_mul(1000))))
    }

    /// The caller a token speaks for at `now`, or a 401 saying what is wrong with it.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Caller, ApiError> {
        let (caller, exp) = match self.remembered(token) {
            Some(known) => known,
            None => {
                let (caller, exp) = self.check(token)?;
                self.remember(token, &caller, exp);
                (caller, exp)
            }
        };
        let now_seconds = now.unix_millis().div_euclid(1000);
        if now_seconds > exp.saturating_add(LEEWAY_SECONDS) {
            let expired_at = Timestamp::from_unix_millis(exp.saturating_mul(1000));
            return Err(ApiError::invalid_token(format!(
                "the bearer token expired at {expired_at}; get a new one from POST /auth/token"
            )));
        }
        Ok(caller)
    }

    /// The caller and `exp` of a token whose signature and claims are valid (its expiry
    /// not checked), or a 401 saying what is wrong with it.
    fn check(&self, token: &str) -> Result<(Caller, i64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| {
                ApiError::invalid_token(match error.kind() {
                    ErrorKind::InvalidSignature => "the bearer token's signature is not valid",
                    ErrorKind::InvalidIssuer => "the bearer token was not issued by tlao",
                    ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                        "the bearer token must be signed with HS256"
                    }
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the bearer token lacks a required claim (sub, exp, iss)"
                    }
                    _ => "the bearer token is malformed",
                })
            })?;
        let claims = data.claims;
        let user_id = claims
            .sub
            .parse::<UserId>()
            .map_err(|_| ApiError::invalid_token("the bearer token's subject is not a user id"))?;
        Ok((
            Caller {
                user_id,
                admin: claims.adm,
            },
            claims.exp,
        ))
    }

    /// A token verified less than [`VERIFIED_TTL`] ago: its caller and `exp`.
    fn remembered(&self, token: &str) -> Option<(Caller, i64)> {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        let known = verified.get(token)?;
        (known.at.elapsed() < VERIFIED_TTL).then(|| (known.caller.clone(), known.exp))
    }

    /// Remembers a token whose signature and claims passed.
    fn remember(&self, token: &str, caller: &Caller, exp: i64) {
        // Only inserts and clears happen under this lock: a panic cannot leave the map
        // half-changed, so a poisoned lock is safe to use.
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(
            token.into(),
            Verified {
                caller: caller.clone(),
                exp,
                at: Instant::now(),
            },
        );
    }
}

/// The authenticated caller of a request: extracting it answers 401 unless the request
/// carries `Authorization: Bearer <token>` with a valid, unexpired token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub Caller);

impl Deref for Authenticated {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn state_of(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the app state is not registered")))
}

/// The token of `Authorization: Bearer <token>`, or a 401 saying what is wrong.
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_credentials(
            "the Authorization header is missing; send Authorization: Bearer <token> with a token from POST /auth/token",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| {
            let (scheme, token) = text.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .ok_or_else(|| {
            ApiError::invalid_token("the Authorization header must use the Bearer scheme")
        })?;
    if token.is_empty() {
        return Err(ApiError::invalid_token("the bearer token is empty"));
    }
    Ok(token)
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = state_of(req)?;
    let token = bearer_token(req)?;
    let caller = state.tokens.verify(token, state.now())?;
    request_id::note_user(&caller.user_id);
    Ok(Authenticated(caller))
}

/// A request from a worker: extracting it answers 401 unless the request carries
/// `Authorization: Bearer <worker token>` matching the server's configured worker
/// token. Without a configured token every worker request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerAuthenticated;

impl FromRequest for WorkerAuthenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate_worker(req))
    }
}

fn authenticate_worker(req: &HttpRequest) -> Result<WorkerAuthenticated, ApiError> {
    let state = state_of(req)?;
    let token = bearer_token(req)?;
    match &state.worker_token {
        Some(expected) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(WorkerAuthenticated)
        }
        Some(_) => Err(ApiError::invalid_token("the worker token is not valid")),
        None => Err(ApiError::invalid_token(
            "this server accepts no workers: it was started without a worker token",
        )),
    }
}

/// Who may run a maintenance pass (`POST /admin/maintenance`): an administrator's
/// bearer token, or the server's maintenance token (`maintenance_token`), a static
/// secret a scheduler can send as it is. Extracting it answers 401 for missing or
/// invalid credentials and 403 for a valid token of a user who is not an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceCaller {
    /// The maintenance token.
    Scheduler,
    /// An administrator.
    Administrator(Caller),
}

impl FromRequest for MaintenanceCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate_maintenance(req))
    }
}

fn authenticate_maintenance(req: &HttpRequest) -> Result<MaintenanceCaller, ApiError> {
    let state = state_of(req)?;
    let token = bearer_token(req)?;
    if let Some(expected) = &state.maintenance_token
        && constant_time_eq(token.as_bytes(), expected.as_bytes())
    {
        return Ok(MaintenanceCaller::Scheduler);
    }
    let caller = state.tokens.verify(token, state.now())?;
    request_id::note_user(&caller.user_id);
    if !caller.admin {
        return Err(ApiError::Forbidden(
            "only an administrator or the maintenance token may run maintenance".into(),
        ));
    }
    Ok(MaintenanceCaller::Administrator(caller))
}

/// Compares two secrets in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn authority() -> TokenAuthority {
        TokenAuthority::new(
            b"test-secret-test-secret-test-secret",
            Duration::from_secs(60),
        )
        .unwrap()
    }

    fn user(admin: bool) -> User {
        User {
            user_id: UserId::new(tlao_domain::Ulid::from_parts(1_700_000_000_000, 7)),
            name: tlao_domain::Name::try_from("ada".to_owned()).unwrap(),
            admin,
            created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        }
    }

    fn detail(error: ApiError) -> String {
        match error {
            ApiError::Unauthenticated { detail, .. } => detail,
            other => panic!("not a 401: {other:?}"),
        }
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let tokens = authority();
        let issued = Timestamp::from_unix_millis(1_800_000_000_000);
        let (token, expires) = tokens.issue(&user(true), issued).unwrap();
        let caller = tokens.verify(&token, issued).unwrap();
        assert!(caller.admin);
        assert_eq!(caller.user_id, user(true).user_id);
        // Remembered now: the same answer, and past exp + leeway the same refusal.
        assert_eq!(tokens.verify(&token, issued).unwrap(), caller);
        let within = Timestamp::from_unix_millis(expires.unix_millis() + LEEWAY_SECONDS * 1000);
        assert_eq!(tokens.verify(&token, within).unwrap(), caller);
        let late = Timestamp::from_unix_millis(within.unix_millis() + 1000);
        let error = detail(tokens.verify(&token, late).unwrap_err());
        assert!(error.starts_with("the bearer token expired at"), "{error}");
    }

    #[test]
    fn a_bad_token_is_refused_every_time_and_not_remembered() {
        let tokens = authority();
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let (token, _) = tokens.issue(&user(false), now).unwrap();
        let other = TokenAuthority::new(b"another-secret", Duration::from_secs(60)).unwrap();
        let (forged, _) = other.issue(&user(true), now).unwrap();
        for _ in 0..2 {
            let error = detail(tokens.verify(&forged, now).unwrap_err());
            assert_eq!(error, "the bearer token's signature is not valid");
        }
        assert!(tokens.remembered(&forged).is_none());
        assert!(!tokens.verify(&token, now).unwrap().admin);
        assert!(tokens.remembered(&token).is_some());
    }
}
