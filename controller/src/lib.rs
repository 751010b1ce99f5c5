//! The holdfast controller: serves the agent stream and the admin API on one
//! address, keeps environments, baselines, drift records and the
//! remediation journal in the store, and runs one decider per environment.
//!
//! `main.rs` only parses flags; everything else is here so tests can reach it.

pub mod admin_api;
pub mod agent_api;
pub mod audit;
pub mod compliance;
pub mod convert;
pub mod decider;
pub mod error;
pub mod fleet;
pub mod gates;
pub mod hub;
pub mod notify;
pub mod records;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use holdfast_proto::admin::v1::admin_service_server::AdminServiceServer;
use holdfast_proto::agent::v1::agent_service_server::AgentServiceServer;
use tokio_util::sync::CancellationToken;

/// Controller settings (flags, with `HOLDFAST_*` environment fallbacks).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "holdfast-controller",
    version,
    about = "Holdfast controller: baselines, drift and enforcement for a fleet of agents"
)]
pub struct Config {
    /// Address to serve the agent stream and the admin API on.
    #[arg(long, env = "HOLDFAST_LISTEN", default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    /// etcd endpoints, comma-separated (e.g. http://127.0.0.1:2379). Without
    /// it the controller keeps everything in one file under --data-dir (one
    /// process, no external service).
    #[arg(long, env = "HOLDFAST_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Directory of the embedded store (used when --etcd is not given).
    #[arg(long, env = "HOLDFAST_DATA_DIR", default_value = "holdfast-data")]
    pub data_dir: std::path::PathBuf,
    /// How long to keep trying to reach etcd at start-up.
    #[arg(long, env = "HOLDFAST_ETCD_CONNECT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub etcd_connect_timeout: Duration,
    /// This replica's name in logs, in the store and in the agent's welcome
    /// (default: controller-HOSTNAME-PID).
    #[arg(long, env = "HOLDFAST_CONTROLLER_ID")]
    pub id: Option<String>,
    /// The URL other replicas and agents reach this replica at (default:
    /// http://LISTEN).
    #[arg(long, env = "HOLDFAST_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// A directory of extra policy rules (`*.rego`). A file that does not
    /// load is logged with its file, line and reason and left out.
    #[arg(long, env = "HOLDFAST_POLICIES")]
    pub policies: Option<std::path::PathBuf>,
    /// TTL of this replica's lease: how long after it stops (crash, pause,
    /// partition) another replica can take over its accounts.
    #[arg(long, env = "HOLDFAST_LEASE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
}

/// Runs the controller until `shutdown` fires, then stops in order: stop
/// accepting, close agent streams, stop deciders (with a deadline).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for e in &config.etcd {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            anyhow::bail!(
                "invalid --etcd endpoint {e:?}: expected http://HOST:PORT or https://HOST:PORT"
            );
        }
    }
    let store: Arc<dyn store::Store> = if config.etcd.is_empty() {
        let path = config.data_dir.join("holdfast.redb");
        let store = store::embedded::EmbeddedStore::open(&path)
            .await
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        tracing::info!(path = %path.display(), "using the embedded store (single process; use --etcd for replicas)");
        Arc::new(store)
    } else {
        let store = store::etcd::EtcdStore::connect(&config.etcd, config.etcd_connect_timeout)
            .await
            .context("connecting to etcd")?;
        tracing::info!(endpoints = ?config.etcd, "using etcd");
        Arc::new(store)
    };
    if config.lease_ttl < Duration::from_secs(2) {
        anyhow::bail!(
            "--lease-ttl must be at least 2s, got {:?}",
            config.lease_ttl
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let id = config.id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("controller-{}-{}", host.trim(), std::process::id())
    });
    let advertise_url = config
        .advertise_url
        .clone()
        .unwrap_or_else(|| describe(addr));
    let (policies, broken) = holdfast_policy::Policies::load(config.policies.as_deref())
        .map_err(|e| anyhow::anyhow!("loading policy rules: {e}"))?;
    for e in &broken {
        tracing::error!(error = %e, "a policy rule file does not load; it is left out");
    }
    tracing::info!(rules = policies.rules().len(), "policy rules loaded");
    let hub = hub::Hub::new(
        store.clone(),
        id.clone(),
        advertise_url.clone(),
        policies,
        shutdown.child_token(),
    );

    let (lease_tx, lease_rx) = tokio::sync::watch::channel(None);
    let me = fleet::ReplicaInfo {
        id: id.clone(),
        url: advertise_url.clone(),
    };
    let fleet_tasks = [
        tokio::spawn(fleet::membership(
            store,
            me,
            config.lease_ttl,
            lease_tx,
            shutdown.child_token(),
        )),
        tokio::spawn(fleet::ownership(
            hub.clone(),
            lease_rx,
            shutdown.child_token(),
        )),
        tokio::spawn(fleet::desired_state(hub.clone(), shutdown.child_token())),
    ];
    tracing::info!(%addr, controller = %id, %advertise_url, "listening");

    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .add_service(AgentServiceServer::new(agent_api::AgentApi {
            hub: hub.clone(),
        }))
        .add_service(AdminServiceServer::new(admin_api::AdminApi {
            hub: hub.clone(),
        }))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), {
            let shutdown = shutdown.clone();
            let hub = hub.clone();
            async move {
                shutdown.cancelled().await;
                // Long-lived agent streams would hold the server open.
                hub.close_sessions();
            }
        });
    let serving = tokio::spawn(server);
    shutdown.cancelled().await;
    match tokio::time::timeout(Duration::from_secs(10), serving).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server error during shutdown"),
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("server did not stop within 10s"),
    }
    hub.join(Duration::from_secs(5)).await;
    // Membership revokes the lease on the way out, handing accounts over.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        futures::future::join_all(fleet_tasks),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// Parses flags and runs until SIGINT/SIGTERM.
pub async fn main_with(config: Config) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        holdfast_telemetry::shutdown_signal().await;
        t.cancel();
    });
    run(config, token).await
}

/// The socket address the controller is listening on, for messages.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
