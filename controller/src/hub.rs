//! The hub: what one controller replica holds in memory and shares between
//! its services — connected agent sessions, one decider task per
//! environment, and waiters for requested collections.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use holdfast_core::ObservedResource;
use holdfast_proto::agent::v1::{
    controller_message, CollectRequest, ControllerMessage, RemediationResult,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decider::{Decider, EnvEvent};
use crate::error::Error;
use crate::records::{Environment, Records};

/// One partition as received from an agent and validated.
#[derive(Clone, Debug)]
pub struct PartitionData {
    pub collection_id: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub complete: bool,
    pub error: String,
    /// Sorted by id, no duplicates.
    pub resources: Arc<Vec<ObservedResource>>,
    pub collected_at: String,
}

/// The latest collection of one partition, for `env show`.
#[derive(Clone, Debug, Default)]
pub struct PartitionView {
    pub complete: bool,
    pub error: String,
    pub resources: u32,
    pub collected_at: String,
}

/// What a decider publishes about its environment.
#[derive(Clone, Debug, Default)]
pub struct EnvView {
    pub open_drift: u32,
    pub partitions: BTreeMap<(String, String), PartitionView>,
}

type AgentTx = mpsc::Sender<Result<ControllerMessage, tonic::Status>>;

struct Session {
    id: u64,
    agent_id: String,
    tx: AgentTx,
}

struct EnvHandle {
    env: Environment,
    tx: mpsc::Sender<EnvEvent>,
    view: Arc<Mutex<EnvView>>,
}

/// Shared state of one controller replica.
pub struct Hub {
    pub records: Records,
    pub controller_id: String,
    sessions: Mutex<HashMap<String, Session>>,
    envs: RwLock<HashMap<String, EnvHandle>>,
    waiters: Mutex<HashMap<String, mpsc::Sender<Arc<PartitionData>>>>,
    next_session: AtomicU64,
    shutdown: CancellationToken,
    /// Deciders' join handles, awaited at shutdown.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Queue depth of a decider; a full queue applies backpressure to the agent
/// stream rather than dropping partitions.
const ENV_QUEUE: usize = 256;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

impl Hub {
    pub fn new(records: Records, controller_id: String, shutdown: CancellationToken) -> Arc<Hub> {
        Arc::new(Hub {
            records,
            controller_id,
            sessions: Mutex::new(HashMap::new()),
            envs: RwLock::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts a decider for every stored environment.
    pub async fn start(self: &Arc<Hub>) -> Result<(), Error> {
        for env in self.records.list_envs().await? {
            self.add_env(env);
        }
        Ok(())
    }

    /// Starts the decider of a new environment.
    pub fn add_env(self: &Arc<Hub>, env: Environment) {
        let (tx, rx) = mpsc::channel(ENV_QUEUE);
        let view = Arc::new(Mutex::new(EnvView::default()));
        let decider = Decider::new(env.clone(), self.clone(), view.clone());
        let token = self.shutdown.child_token();
        let name = env.name.clone();
        let handle = tokio::spawn(async move {
            decider.run(rx, token).await;
            tracing::debug!(env = %name, "decider stopped");
        });
        self.tasks.lock().expect("tasks lock").push(handle);
        self.envs
            .write()
            .expect("envs lock")
            .insert(env.name.clone(), EnvHandle { env, tx, view });
    }

    /// Tells an environment's decider that its settings or baseline changed.
    pub async fn env_changed(&self, env: Environment) {
        let tx = {
            let mut envs = self.envs.write().expect("envs lock");
            match envs.get_mut(&env.name) {
                Some(h) => {
                    h.env = env.clone();
                    h.tx.clone()
                }
                None => return,
            }
        };
        let _ = tx.send(EnvEvent::Reload).await;
    }

    pub fn env_view(&self, name: &str) -> EnvView {
        self.envs
            .read()
            .expect("envs lock")
            .get(name)
            .map(|h| h.view.lock().expect("view lock").clone())
            .unwrap_or_default()
    }

    pub fn agent_connected(&self, account: &str) -> bool {
        self.sessions
            .lock()
            .expect("sessions lock")
            .contains_key(account)
    }

    /// Registers an agent stream; a newer stream for the same account
    /// replaces the older one.
    pub fn register_session(&self, account: &str, agent_id: &str, tx: AgentTx) -> u64 {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let old = self.sessions.lock().expect("sessions lock").insert(
            account.to_string(),
            Session {
                id,
                agent_id: agent_id.to_string(),
                tx,
            },
        );
        if let Some(old) = old {
            tracing::info!(account, old_agent = %old.agent_id, "agent stream replaced by a newer one");
        }
        id
    }

    /// Drops every agent stream's sender, ending the streams (at shutdown).
    pub fn close_sessions(&self) {
        self.sessions.lock().expect("sessions lock").clear();
    }

    pub fn unregister_session(&self, account: &str, id: u64) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.get(account).is_some_and(|s| s.id == id) {
            sessions.remove(account);
        }
    }

    /// Sends a message to the account's agent.
    pub async fn send_to_agent(
        &self,
        account: &str,
        msg: controller_message::Msg,
    ) -> Result<(), Error> {
        let tx = self
            .sessions
            .lock()
            .expect("sessions lock")
            .get(account)
            .map(|s| s.tx.clone())
            .ok_or_else(|| {
                Error::FailedPrecondition(format!("no agent is connected for account {account}"))
            })?;
        tx.send_timeout(Ok(ControllerMessage { msg: Some(msg) }), SEND_TIMEOUT)
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "the agent of account {account} is not reading its stream"
                ))
            })
    }

    /// Asks the account's agent to collect now; returns the collection id.
    pub async fn request_collection(
        &self,
        account: &str,
        regions: Vec<String>,
        resource_types: Vec<String>,
    ) -> Result<String, Error> {
        let collection_id = crate::records::new_id();
        self.send_to_agent(
            account,
            controller_message::Msg::Collect(CollectRequest {
                collection_id: collection_id.clone(),
                regions,
                resource_types,
            }),
        )
        .await?;
        Ok(collection_id)
    }

    /// Asks for a collection and returns its id and a receiver of its
    /// partitions (registered before the request goes out, so none is
    /// missed). Call [`Hub::stop_waiting`] when done.
    pub async fn start_collection(
        &self,
        account: &str,
        regions: Vec<String>,
        resource_types: Vec<String>,
    ) -> Result<(String, mpsc::Receiver<Arc<PartitionData>>), Error> {
        let collection_id = crate::records::new_id();
        let (tx, rx) = mpsc::channel(64);
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(collection_id.clone(), tx);
        let sent = self
            .send_to_agent(
                account,
                controller_message::Msg::Collect(CollectRequest {
                    collection_id: collection_id.clone(),
                    regions,
                    resource_types,
                }),
            )
            .await;
        if let Err(e) = sent {
            self.stop_waiting(&collection_id);
            return Err(e);
        }
        Ok((collection_id, rx))
    }

    pub fn stop_waiting(&self, collection_id: &str) {
        self.waiters
            .lock()
            .expect("waiters lock")
            .remove(collection_id);
    }

    /// Routes a partition to its collection's waiter and to every
    /// environment that covers it.
    pub async fn dispatch_partition(&self, data: PartitionData) {
        let data = Arc::new(data);
        if !data.collection_id.is_empty() {
            let waiter = self
                .waiters
                .lock()
                .expect("waiters lock")
                .get(&data.collection_id)
                .cloned();
            if let Some(w) = waiter {
                let _ = w.send(data.clone()).await;
            }
        }
        for tx in self.deciders_for(|e| e.covers(&data.account, &data.region, &data.resource_type))
        {
            let _ = tx.send(EnvEvent::Partition(data.clone())).await;
        }
    }

    /// Routes a remediation outcome to the account's environments; the one
    /// that owns the remediation id takes it.
    pub async fn dispatch_result(&self, account: &str, result: RemediationResult) {
        let result = Arc::new(result);
        for tx in self.deciders_for(|e| e.account == account) {
            let _ = tx.send(EnvEvent::RemediationResult(result.clone())).await;
        }
    }

    fn deciders_for(&self, pred: impl Fn(&Environment) -> bool) -> Vec<mpsc::Sender<EnvEvent>> {
        self.envs
            .read()
            .expect("envs lock")
            .values()
            .filter(|h| pred(&h.env))
            .map(|h| h.tx.clone())
            .collect()
    }

    /// Waits for every decider to finish (after the shutdown token fired).
    pub async fn join(&self, deadline: Duration) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("deciders did not stop within {deadline:?}");
        }
    }
}
