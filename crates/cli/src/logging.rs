//! Structured logs: human-readable by default, JSON (the form CloudWatch ingests) with
//! `TLAO_LOG_FORMAT=json`. The level comes from `TLAO_LOG` (or `RUST_LOG`), `info` by default.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber for the processes (`dev`, `serve`, `worker`); call
/// once at start.
pub fn init() {
    init_with_default("info,actix_server=warn");
}

/// Installs the global subscriber for the client commands: only warnings unless
/// `TLAO_LOG` says otherwise, so their output stays theirs.
pub fn init_client() {
    init_with_default("warn");
}

fn init_with_default(default_filter: &str) {
    let filter = std::env::var("TLAO_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let json = std::env::var("TLAO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling into the binary's code) is harmless; ignore it.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
