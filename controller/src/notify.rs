//! Notice delivery from the durable outbox to each webhook of an
//! environment.
//!
//! Notices are written to `outbox/{env}/{seq}` in the same transaction as
//! the record that caused them, so none is lost to a crash. One deliverer
//! runs per environment, on the replica deciding for it, fenced like the
//! decider. Each webhook has its own cursor (the last notice it accepted),
//! so a receiver that is down delays only itself, and notices reach it in
//! order once it is back; a failed POST is retried with backoff (1 s up to
//! 30 s). A notice is deleted once every webhook has it. Every POST carries
//! `X-Holdfast-Notice-Id` (`env/seq`): the one case that can repeat a
//! notice — the controller dying between a receiver's 2xx and the cursor
//! write — is recognisable by the receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::fleet::Fence;
use crate::hub::Hub;
use crate::records::{Notice, Webhook};

const POLL: Duration = Duration::from_millis(500);
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client() -> Result<HttpClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("no TLS roots for webhooks: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The body a webhook receives.
pub fn payload(format: &str, n: &Notice) -> Value {
    match format {
        "slack" => json!({"text": format!("[holdfast] {}: {}", n.env, n.text)}),
        _ => json!({
            "id": format!("{}/{}", n.env, n.seq),
            "environment": n.env,
            "seq": n.seq,
            "at": n.at,
            "kind": n.kind,
            "resource": n.resource,
            "text": n.text,
            "data": n.data,
        }),
    }
}

async fn post(client: &HttpClient, w: &Webhook, n: &Notice) -> Result<(), String> {
    let body = payload(&w.format, n).to_string();
    let req = http::Request::post(&w.url)
        .header("content-type", "application/json")
        .header("x-holdfast-notice-id", format!("{}/{}", n.env, n.seq))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad request to {}: {e}", w.url))?;
    match tokio::time::timeout(POST_TIMEOUT, client.request(req)).await {
        Err(_) => Err(format!("no answer within {POST_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("answered {}", resp.status())),
    }
}

/// What a deliverer remembers between rounds, so that an idle
/// environment costs one small read per round.
#[derive(Default)]
struct State {
    /// Per webhook: the last notice it accepted (read from the store once,
    /// then kept: this deliverer is the only writer while it is fenced).
    cursors: HashMap<String, u64>,
    /// Per webhook: when to try again, and the current backoff.
    retry: HashMap<String, (Instant, Duration)>,
    /// The audit head the last round saw, and whether notices were left
    /// undelivered then.
    seen: Option<u64>,
    pending: bool,
}

/// Delivers an environment's notices until `token` fires or the fence is
/// lost.
pub async fn deliver(hub: Arc<Hub>, env: String, fence: Fence, token: CancellationToken) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(env = %env, error = %e, "notices cannot be delivered");
            return;
        }
    };
    let mut state = State::default();
    loop {
        match round(&hub, &env, &fence, &client, &mut state).await {
            Ok(()) => {}
            Err(Error::Fenced(_)) => {
                tracing::info!(env = %env, "notice delivery stops: this replica no longer owns the account");
                return;
            }
            Err(e) => {
                state.seen = None;
                tracing::warn!(env = %env, error = %e, "notice delivery round failed; retrying")
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn round(
    hub: &Hub,
    env: &str,
    fence: &Fence,
    client: &HttpClient,
    st: &mut State,
) -> Result<(), Error> {
    let Some(environment) = hub.environment(env) else {
        return Ok(());
    };
    // Nothing new and nothing left over: nothing to read.
    let head = hub.records.audit_seq(env).await?;
    if st.seen == Some(head) && !st.pending {
        return Ok(());
    }
    let outbox = hub.records.list_outbox(env).await?;
    let mut delivered_all = outbox.last().map_or(0, |n| n.seq);
    st.pending = false;
    for w in &environment.webhooks {
        let mut cursor = match st.cursors.get(&w.id) {
            Some(c) => *c,
            None => {
                let c = hub.records.cursor(env, w).await?;
                st.cursors.insert(w.id.clone(), c);
                c
            }
        };
        let due = st
            .retry
            .get(&w.id)
            .is_none_or(|(at, _)| Instant::now() >= *at);
        if due {
            let from = cursor;
            for n in outbox.iter().filter(|n| n.seq > from) {
                match post(client, w, n).await {
                    Ok(()) => {
                        hub.records.set_cursor(env, &w.id, n.seq, fence).await?;
                        cursor = n.seq;
                        st.cursors.insert(w.id.clone(), cursor);
                        st.retry.remove(&w.id);
                        tracing::debug!(env, webhook = %w.id, seq = n.seq, kind = %n.kind, "notice delivered");
                    }
                    Err(e) => {
                        let backoff = st
                            .retry
                            .get(&w.id)
                            .map_or(Duration::from_secs(1), |(_, b)| (*b * 2).min(MAX_BACKOFF));
                        tracing::warn!(env, webhook = %w.id, seq = n.seq, error = %e,
                            "notice not delivered; retrying in {backoff:?}");
                        st.retry
                            .insert(w.id.clone(), (Instant::now() + backoff, backoff));
                        break;
                    }
                }
            }
        }
        st.pending |= outbox.last().is_some_and(|n| n.seq > cursor);
        delivered_all = delivered_all.min(cursor);
    }
    let done: Vec<u64> = outbox
        .iter()
        .map(|n| n.seq)
        .filter(|s| *s <= delivered_all)
        .collect();
    if !done.is_empty() {
        hub.records.prune_outbox(env, &done, fence).await?;
    }
    st.seen = Some(head);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_notice() {
        let n = Notice {
            seq: 7,
            env: "prod".into(),
            at: "2026-11-24T00:00:00.000Z".into(),
            kind: "drift".into(),
            resource: Some("aws.ec2.security_group/us-east-1/sg-1".into()),
            text: "sg-1 drifted".into(),
            data: json!({"drift_id": "d1"}),
        };
        let j = payload("json", &n);
        assert_eq!(j["id"], "prod/7");
        assert_eq!(j["kind"], "drift");
        assert_eq!(j["data"]["drift_id"], "d1");
        assert_eq!(
            payload("slack", &n),
            json!({"text": "[holdfast] prod: sg-1 drifted"})
        );
    }
}
