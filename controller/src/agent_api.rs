//! `AgentService`: the agent stream.

use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::agent::v1::agent_service_server::AgentService;
use holdfast_proto::agent::v1::{
    agent_message, controller_message, AgentMessage, ControllerMessage, Hello, Welcome,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::partition_from_wire;
use crate::hub::Hub;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const OUTBOUND_QUEUE: usize = 256;

pub struct AgentApi {
    pub hub: Arc<Hub>,
}

/// Who is on the other end of a stream.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub account: String,
    pub agent_id: String,
}

/// Resolves the agent's identity. The one place that decides which account
/// a stream speaks for: today the agent's own Hello (resolved by the agent
/// through STS), later its TLS client certificate.
pub fn resolve_identity<T>(_req: &Request<T>, hello: &Hello) -> Result<AgentIdentity, Status> {
    let account = hello.account_id.trim();
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(Status::invalid_argument(format!(
            "hello.account_id must be a 12-digit AWS account id, got {:?}",
            hello.account_id
        )));
    }
    if hello.regions.is_empty() {
        return Err(Status::invalid_argument("hello.regions is empty"));
    }
    Ok(AgentIdentity {
        account: account.to_string(),
        agent_id: if hello.agent_id.is_empty() {
            format!("agent-{account}")
        } else {
            hello.agent_id.clone()
        },
    })
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    type ConnectStream = ReceiverStream<Result<ControllerMessage, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request.remote_addr();
        // Read the Hello before anything else.
        let (meta, ext, mut inbound) = request.into_parts();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Err(_) => return Err(Status::deadline_exceeded("no hello within 10s")),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) => return Err(Status::cancelled("stream closed before hello")),
            Ok(Ok(Some(AgentMessage {
                msg: Some(agent_message::Msg::Hello(h)),
            }))) => h,
            Ok(Ok(Some(_))) => {
                return Err(Status::invalid_argument("the first message must be hello"))
            }
        };
        let identity = resolve_identity(&Request::from_parts(meta, ext, ()), &hello)?;
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let hub = self.hub.clone();
        let session = hub.register_session(&identity.account, &identity.agent_id, tx.clone());
        tracing::info!(account = %identity.account, agent = %identity.agent_id, ?peer,
            regions = ?hello.regions, version = %hello.version, "agent connected");
        let welcome = ControllerMessage {
            msg: Some(controller_message::Msg::Welcome(Welcome {
                controller_id: hub.controller_id.clone(),
                controllers: crate::fleet::replica_urls(hub.store.as_ref())
                    .await
                    .unwrap_or_default(),
            })),
        };
        let _ = tx.send(Ok(welcome)).await;
        // A fresh full collection rebuilds this replica's observed state.
        if let Err(e) = hub
            .request_collection(&identity.account, vec![], vec![])
            .await
        {
            tracing::warn!(error = %e, "cannot request the initial collection");
        }
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(AgentMessage { msg: Some(msg) })) => match msg {
                        agent_message::Msg::Partition(p) => {
                            hub.dispatch_partition(partition_from_wire(p, &identity.account))
                                .await
                        }
                        agent_message::Msg::RemediationResult(r) => {
                            hub.dispatch_result(&identity.account, r).await
                        }
                        agent_message::Msg::Hello(_) => {
                            tracing::warn!(account = %identity.account, "ignoring a second hello")
                        }
                    },
                    Ok(Some(AgentMessage { msg: None })) => {
                        tracing::warn!(account = %identity.account, "ignoring an empty agent message")
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(account = %identity.account, error = %e, "agent stream error");
                        break;
                    }
                }
            }
            hub.unregister_session(&identity.account, session);
            tracing::info!(account = %identity.account, agent = %identity.agent_id, "agent disconnected");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
