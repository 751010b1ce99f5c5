//! Process-wide setup shared by every holdfast daemon: structured logs and
//! shutdown signals. Logs go to stderr, filtered by `RUST_LOG` (default
//! `info`), as text or, with `HOLDFAST_LOG_FORMAT=json`, one JSON object per
//! line. The OTLP exporter of the roadmap plugs in here.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber. Call once, first thing in `main`.
pub fn init_telemetry(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("HOLDFAST_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_target(true).init();
    }
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
