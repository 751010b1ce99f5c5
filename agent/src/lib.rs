//! The holdfast agent: runs in one cloud account, collects canonical
//! snapshots of its resources, streams them to a controller over one
//! outbound gRPC stream, and executes remediations the controller sends.
//!
//! - [`aws`]: SDK configuration (endpoint, timeouts, retries) and the
//!   account identity (STS GetCallerIdentity), resolved in one place.
//! - [`compat`]: the emulator compatibility layer (off against real AWS).
//! - [`drivers`]: one driver per resource type (collect, read one, apply).
//! - [`collect`]: turns a collection request into partitions.
//! - [`remediate`]: the precondition-checked remediation procedure.
//! - [`session`]: the stream with reconnect and jittered backoff.

pub mod aws;
pub mod collect;
pub mod compat;
pub mod drivers;
pub mod remediate;
pub mod session;

use std::time::Duration;

/// Agent settings (flags, with `HOLDFAST_*` environment fallbacks).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "holdfast-agent",
    version,
    about = "Holdfast agent: snapshots one cloud account and applies remediations"
)]
pub struct Config {
    /// Controller address(es), comma-separated or repeated; the agent picks
    /// one at random and fails over to the others.
    #[arg(
        long,
        env = "HOLDFAST_CONTROLLER",
        value_delimiter = ',',
        required = true
    )]
    pub controller: Vec<String>,
    /// Regions to collect, comma-separated (e.g. us-east-1,eu-west-1).
    #[arg(long, env = "HOLDFAST_REGIONS", value_delimiter = ',', required = true)]
    pub regions: Vec<String>,
    /// How often to collect on the agent's own initiative.
    #[arg(long, env = "HOLDFAST_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Resource types to collect (default: every type this agent supports).
    #[arg(long, env = "HOLDFAST_RESOURCE_TYPES", value_delimiter = ',')]
    pub resource_types: Vec<String>,
    /// AWS API endpoint override, e.g. an emulator at http://127.0.0.1:5000.
    /// Without it the standard endpoints and credential chain are used.
    #[arg(long, env = "HOLDFAST_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Upper bound for one AWS operation, retries included.
    #[arg(long, env = "HOLDFAST_AWS_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub aws_timeout: Duration,
    /// Work around known differences of the AWS emulator (moto) — see
    /// `compat.rs`. Never needed, and off by default, against real AWS.
    #[arg(long, env = "HOLDFAST_EMULATOR_COMPAT")]
    pub emulator_compat: bool,
    /// Name of this agent in the controller's logs (default: account + pid).
    #[arg(long, env = "HOLDFAST_AGENT_ID")]
    pub agent_id: Option<String>,
}

impl Config {
    /// Checks values clap cannot: names the flag and the bad value.
    pub fn validate(&self) -> anyhow::Result<()> {
        for c in &self.controller {
            if !(c.starts_with("http://") || c.starts_with("https://")) {
                anyhow::bail!(
                    "invalid --controller {c:?}: expected http://HOST:PORT or https://HOST:PORT"
                );
            }
        }
        for r in &self.regions {
            if r.is_empty()
                || !r
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                anyhow::bail!(
                    "invalid --regions entry {r:?}: expected an AWS region such as us-east-1"
                );
            }
        }
        for t in &self.resource_types {
            if drivers::supported().iter().all(|s| s != t) {
                anyhow::bail!(
                    "unsupported --resource-types entry {t:?}; supported: {}",
                    drivers::supported().join(", ")
                );
            }
        }
        if self.interval < Duration::from_secs(1) {
            anyhow::bail!("--interval must be at least 1s, got {:?}", self.interval);
        }
        if let Some(u) = &self.aws_endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                anyhow::bail!("invalid --aws-endpoint-url {u:?}: expected http(s)://HOST:PORT");
            }
        }
        Ok(())
    }

    pub fn resource_types(&self) -> Vec<String> {
        if self.resource_types.is_empty() {
            drivers::supported().into_iter().map(String::from).collect()
        } else {
            self.resource_types.clone()
        }
    }
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn main_with(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        holdfast_telemetry::shutdown_signal().await;
        t.cancel();
    });
    let cloud = aws::Cloud::new(&config).await;
    let account = tokio::select! {
        a = cloud.resolve_account(&token) => a?,
        _ = token.cancelled() => return Ok(()),
    };
    tracing::info!(%account, regions = ?config.regions, "account identity resolved");
    let drivers = drivers::Drivers::new(&cloud, &config.resource_types());
    session::run(config, account, drivers, token).await;
    tracing::info!("stopped");
    Ok(())
}
