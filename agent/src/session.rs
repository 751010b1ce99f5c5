//! The agent's stream to a controller: Hello, then partitions and
//! remediation results out, collection requests and remediations in.
//! Reconnects across the controller list with jittered exponential backoff.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use holdfast_proto::agent::v1::agent_service_client::AgentServiceClient;
use holdfast_proto::agent::v1::{
    agent_message, controller_message, AgentMessage, CollectRequest, Hello, RemediationResult,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::collect::{collect_all, partitions};
use crate::drivers::Drivers;
use crate::remediate;
use crate::Config;

/// Jittered exponential backoff: each delay is drawn from [d/2, d], and d
/// doubles up to the cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            current: base,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.cap);
        let half = d / 2;
        half + d.mul_f64(rand::rng().random_range(0.0..=0.5))
    }

    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

enum End {
    Shutdown,
    /// The stream ended; `established` says whether the controller welcomed us.
    Closed {
        established: bool,
        reason: String,
    },
}

/// Outcomes are re-sent on every new stream for this long: one sent just
/// before a controller died may never have been read, and the controller
/// that takes over records it (a duplicate is ignored).
const RESEND_OUTCOMES_FOR: Duration = Duration::from_secs(120);
/// HTTP/2 pings: a controller that stops answering (crashed host, paused
/// process) is left within about ten seconds.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

type Outcomes = Arc<Mutex<VecDeque<(Instant, RemediationResult)>>>;

/// Runs sessions until the token is cancelled, failing over across the
/// configured controllers and those the controllers announce.
pub async fn run(config: Config, account: String, drivers: Drivers, token: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(15));
    let mut controllers = config.controller.clone();
    let mut next = rand::rng().random_range(0..controllers.len());
    let outcomes: Outcomes = Arc::new(Mutex::new(VecDeque::new()));
    loop {
        let url = controllers[next % controllers.len()].clone();
        next += 1;
        match session(
            &config,
            &account,
            &drivers,
            &url,
            &token,
            &mut controllers,
            &outcomes,
        )
        .await
        {
            End::Shutdown => return,
            End::Closed {
                established,
                reason,
            } => {
                if established {
                    backoff.reset();
                }
                tracing::warn!(controller = %url, %reason, "controller stream ended");
            }
        }
        let delay = backoff.next_delay();
        tracing::info!("reconnecting in {delay:?}");
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn open(
    url: &str,
    hello: Hello,
) -> anyhow::Result<(
    mpsc::Sender<AgentMessage>,
    tonic::Streaming<holdfast_proto::agent::v1::ControllerMessage>,
)> {
    let channel = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid controller URL {url:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let mut client = AgentServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(64);
    tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Hello(hello)),
    })
    .await
    .context("stream closed before hello")?;
    let inbound = client
        .connect(ReceiverStream::new(rx))
        .await
        .context("controller refused the stream")?
        .into_inner();
    Ok((tx, inbound))
}

async fn session(
    config: &Config,
    account: &str,
    drivers: &Drivers,
    url: &str,
    token: &CancellationToken,
    controllers: &mut Vec<String>,
    outcomes: &Outcomes,
) -> End {
    let hello = Hello {
        agent_id: config
            .agent_id
            .clone()
            .unwrap_or_else(|| format!("agent-{account}-{}", std::process::id())),
        account_id: account.to_string(),
        regions: config.regions.clone(),
        resource_types: drivers.types(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let (tx, mut inbound) = tokio::select! {
        _ = token.cancelled() => return End::Shutdown,
        r = open(url, hello) => match r {
            Ok(v) => v,
            Err(e) => return End::Closed { established: false, reason: format!("{e:#}") },
        },
    };
    // Everything this session spawns stops with it.
    let session_token = token.child_token();
    let _stop_children = session_token.clone().drop_guard();

    let (rem_tx, mut rem_rx) = mpsc::channel(64);
    {
        // One remediation at a time, in arrival order.
        let (tx, drivers, tok, outcomes) = (
            tx.clone(),
            drivers.clone(),
            session_token.clone(),
            outcomes.clone(),
        );
        tokio::spawn(async move {
            loop {
                let r = tokio::select! {
                    _ = tok.cancelled() => return,
                    r = rem_rx.recv() => match r { Some(r) => r, None => return },
                };
                let result = remediate::execute(&drivers, &r).await;
                tracing::info!(remediation = %result.remediation_id, outcome = result.outcome,
                    message = %result.message, "remediation executed");
                {
                    let mut recent = outcomes.lock().expect("outcomes lock");
                    recent.retain(|(at, _)| at.elapsed() < RESEND_OUTCOMES_FOR);
                    recent.push_back((Instant::now(), result.clone()));
                }
                let msg = AgentMessage {
                    msg: Some(agent_message::Msg::RemediationResult(result)),
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
    }

    let interval_running = Arc::new(AtomicBool::new(false));
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + config.interval,
        config.interval,
    );
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut established = false;
    loop {
        tokio::select! {
            _ = token.cancelled() => return End::Shutdown,
            _ = interval.tick() => {
                if !interval_running.swap(true, Ordering::SeqCst) {
                    let flag = interval_running.clone();
                    spawn_collection(config, account, drivers, &tx, &session_token, CollectRequest::default(), Some(flag));
                }
            }
            msg = inbound.message() => match msg {
                Ok(Some(m)) => match m.msg {
                    Some(controller_message::Msg::Welcome(w)) => {
                        established = true;
                        tracing::info!(controller = %w.controller_id, %url, replicas = ?w.controllers, "connected");
                        for c in w.controllers {
                            if (c.starts_with("http://") || c.starts_with("https://")) && !controllers.contains(&c) {
                                controllers.push(c);
                            }
                        }
                        let recent: Vec<RemediationResult> = outcomes
                            .lock()
                            .expect("outcomes lock")
                            .iter()
                            .filter(|(at, _)| at.elapsed() < RESEND_OUTCOMES_FOR)
                            .map(|(_, r)| r.clone())
                            .collect();
                        for r in recent {
                            let msg = AgentMessage { msg: Some(agent_message::Msg::RemediationResult(r)) };
                            if tx.send(msg).await.is_err() {
                                return End::Closed { established, reason: "stream closed".into() };
                            }
                        }
                    }
                    Some(controller_message::Msg::Collect(req)) => {
                        tracing::debug!(collection = %req.collection_id, "collection requested");
                        spawn_collection(config, account, drivers, &tx, &session_token, req, None);
                    }
                    Some(controller_message::Msg::Remediation(r)) => {
                        tracing::info!(remediation = %r.remediation_id, "remediation received");
                        if rem_tx.send(r).await.is_err() {
                            return End::Closed { established, reason: "remediation worker stopped".into() };
                        }
                    }
                    None => tracing::warn!("ignoring an empty controller message"),
                },
                Ok(None) => return End::Closed { established, reason: "controller closed the stream".into() },
                Err(status) => return End::Closed { established, reason: status.to_string() },
            },
        }
    }
}

fn spawn_collection(
    config: &Config,
    account: &str,
    drivers: &Drivers,
    tx: &mpsc::Sender<AgentMessage>,
    token: &CancellationToken,
    req: CollectRequest,
    running: Option<Arc<AtomicBool>>,
) {
    let parts = partitions(drivers, &config.regions, &req.regions, &req.resource_types);
    let (drivers, account, tx, token) = (
        drivers.clone(),
        account.to_string(),
        tx.clone(),
        token.clone(),
    );
    tokio::spawn(async move {
        let send = |p| {
            let tx = tx.clone();
            async move {
                tx.send(AgentMessage {
                    msg: Some(agent_message::Msg::Partition(p)),
                })
                .await
                .is_ok()
            }
        };
        tokio::select! {
            _ = token.cancelled() => {}
            _ = collect_all(&drivers, &account, &req.collection_id, parts, send) => {}
        }
        if let Some(flag) = running {
            flag.store(false, Ordering::SeqCst);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_capped_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        let nominal = [100, 200, 400, 800, 800, 800];
        for (d, n) in delays.iter().zip(nominal) {
            let n = Duration::from_millis(n);
            assert!(*d >= n / 2 && *d <= n, "{d:?} not in [{:?}, {n:?}]", n / 2);
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
