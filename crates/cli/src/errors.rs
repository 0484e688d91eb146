//! Exit codes and error messages of the client commands, as `CONTRACT.md` fixes them:
//! 0 success (or the run completed), 1 the run failed, timed out or was cancelled (and
//! any other error), 2 a usage error, 3 the API cannot be reached, 4 not authenticated
//! or not allowed.
//!
//! Commands return `anyhow::Error`s; [`exit_code`] and [`render`] look through the
//! chain for the SDK's typed errors, so a command never chooses a code by hand except
//! for a run's outcome ([`Exit`]).

use std::fmt::Write as _;

use tlao_sdk::{ClientError, EventStreamError};

/// How a client command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; the run completed.
    Success = 0,
    /// 1: the run failed, timed out or was cancelled; or another error.
    Failure = 1,
    /// 2: the command line (or an input it names) is not usable.
    Usage = 2,
    /// 3: the API could not be reached.
    Unreachable = 3,
    /// 4: not authenticated, or not allowed.
    Denied = 4,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Errors the client commands raise themselves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or an input it names cannot be used (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No stored login and no `TLAO_TOKEN` (exit 4).
    #[error("not logged in to {api_url} (profile {profile:?})")]
    NotLoggedIn {
        /// The profile looked at.
        profile: String,
        /// The API URL it would use.
        api_url: String,
    },
}

/// The exit code for `error`.
pub fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<CliError>() {
            return match error {
                CliError::Usage(_) => Exit::Usage,
                CliError::NotLoggedIn { .. } => Exit::Denied,
            };
        }
        if let Some(error) = cause.downcast_ref::<ClientError>() {
            return match error {
                ClientError::Connection { .. } => Exit::Unreachable,
                ClientError::Api {
                    status: 401 | 403, ..
                } => Exit::Denied,
                _ => Exit::Failure,
            };
        }
        if let Some(error) = cause.downcast_ref::<EventStreamError>() {
            return match error {
                EventStreamError::Connection { .. } => Exit::Unreachable,
                EventStreamError::Api {
                    status: 401 | 403, ..
                } => Exit::Denied,
                _ => Exit::Failure,
            };
        }
    }
    Exit::Failure
}

/// The message for `error`, several lines, without a trailing newline: what went
/// wrong, then what to do about it. `profile` is the profile the command used.
pub fn render(error: &anyhow::Error, profile: &str) -> String {
    let context = context_lines(error);
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<ClientError>() {
            return match error {
                ClientError::Connection { url, source } => {
                    unreachable(&context, url, &root_cause(source), profile)
                }
                ClientError::Api {
                    status,
                    title,
                    detail,
                    request_id,
                    problem,
                } => {
                    let fields = problem
                        .as_ref()
                        .map(|p| {
                            p.errors
                                .iter()
                                .map(|e| (e.field.clone(), e.message.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    api_problem(
                        &context,
                        *status,
                        title,
                        detail,
                        request_id.as_deref(),
                        fields,
                        profile,
                    )
                }
                ClientError::Decode { .. } | ClientError::Io { .. } => plain(error),
            };
        }
        if let Some(error) = cause.downcast_ref::<EventStreamError>() {
            return match error {
                EventStreamError::Connection { url, message } => {
                    unreachable(&context, url, message, profile)
                }
                EventStreamError::Api {
                    status,
                    title,
                    detail,
                    request_id,
                } => api_problem(
                    &context,
                    *status,
                    title,
                    detail,
                    request_id.as_deref(),
                    Vec::new(),
                    profile,
                ),
                EventStreamError::Protocol { .. } => plain(error),
            };
        }
        if let Some(CliError::NotLoggedIn { profile, api_url }) = cause.downcast_ref::<CliError>() {
            return format!(
                "error: not logged in to {api_url} (profile {profile:?})\n  \
                 Run `tlao login --api-url {api_url}`, or set TLAO_TOKEN."
            );
        }
    }
    format!("error: {error:#}")
}

/// The `context(...)` messages above the first typed error, outermost first.
fn context_lines(error: &anyhow::Error) -> Vec<String> {
    error
        .chain()
        .take_while(|cause| {
            cause.downcast_ref::<ClientError>().is_none()
                && cause.downcast_ref::<EventStreamError>().is_none()
        })
        .map(ToString::to_string)
        .collect()
}

fn plain(error: &dyn std::error::Error) -> String {
    format!("error: {error}")
}

fn with_context(context: &[String], message: &str) -> String {
    if context.is_empty() {
        format!("error: {message}")
    } else {
        format!("error: {}: {message}", context.join(": "))
    }
}

fn unreachable(context: &[String], url: &str, cause: &str, profile: &str) -> String {
    let base = base_url(url);
    let mut text = with_context(context, &format!("cannot reach the TLÁO API at {base}"));
    let _ = write!(text, "\n  tried: {url} ({cause})");
    text.push_str("\n  likely causes:");
    text.push_str("\n  - no server is running there: start one with `tlao dev` (or `tlao serve`)");
    match std::env::var("TLAO_API_URL").ok().filter(|v| !v.is_empty()) {
        Some(from_env) => {
            let _ = write!(
                text,
                "\n  - the URL is wrong: it comes from TLAO_API_URL={from_env}; unset or fix it"
            );
        }
        None => {
            let _ = write!(
                text,
                "\n  - the URL is wrong: it comes from profile {profile:?}; \
                 change it with `tlao login --api-url URL` or set TLAO_API_URL"
            );
        }
    }
    let proxies: Vec<String> = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|_| (*name).to_owned())
    })
    .collect();
    if proxies.is_empty() {
        text.push_str("\n  - a proxy or firewall is in the way");
    } else {
        let _ = write!(
            text,
            "\n  - a proxy is in the way: {} is set; add the host to NO_PROXY if the server is local",
            proxies.join(", ")
        );
    }
    text
}

fn api_problem(
    context: &[String],
    status: u16,
    title: &str,
    detail: &str,
    request_id: Option<&str>,
    fields: Vec<(String, String)>,
    profile: &str,
) -> String {
    let mut text = match status {
        401 => {
            let mut text = with_context(context, &format!("not authenticated: {detail}"));
            let _ = write!(
                text,
                "\n  Run `tlao login` to sign in again (profile {profile:?}), or set TLAO_TOKEN."
            );
            text
        }
        403 => with_context(context, &format!("not allowed: {detail}")),
        _ => with_context(context, &format!("{title}: {detail}")),
    };
    for (field, message) in fields {
        let _ = write!(text, "\n  - {field}: {message}");
    }
    if let Some(id) = request_id {
        let _ = write!(text, "\n  request id: {id}");
    }
    text
}

/// `http://host:port` of a URL, for the headline.
fn base_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// The innermost cause of an error, lowercase ("connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let lower = text.to_lowercase();
    lower
        .split(" (os error")
        .next()
        .map(str::to_owned)
        .unwrap_or(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_login_problems_exit_4() {
        let usage = anyhow::Error::new(CliError::Usage("no prompt".into()));
        let missing = anyhow::Error::new(CliError::NotLoggedIn {
            profile: "default".into(),
            api_url: "http://x".into(),
        });
        let denied = anyhow::Error::new(ClientError::Api {
            status: 403,
            title: "Forbidden".into(),
            detail: "not a member".into(),
            request_id: None,
            problem: None,
        })
        .context("reading the run");

        assert_eq!(exit_code(&usage), Exit::Usage);
        assert_eq!(exit_code(&missing), Exit::Denied);
        assert_eq!(exit_code(&denied), Exit::Denied);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), Exit::Failure);
    }

    #[test]
    fn a_problem_shows_title_detail_fields_and_request_id() {
        let text = api_problem(
            &["creating the task".into()],
            400,
            "Invalid request",
            "1 field is invalid",
            Some("req-1"),
            vec![("input.prompt".into(), "must not be blank".into())],
            "default",
        );
        assert_eq!(
            text,
            "error: creating the task: Invalid request: 1 field is invalid\n  \
             - input.prompt: must not be blank\n  request id: req-1"
        );
    }

    #[test]
    fn the_headline_names_the_server_not_the_path() {
        assert_eq!(base_url("http://127.0.0.1:9/runs/x"), "http://127.0.0.1:9");
    }
}
