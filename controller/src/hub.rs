//! The hub: what one controller replica holds in memory and shares between
//! its services — connected agent sessions, the environments (followed from
//! the store), the accounts this replica owns, one decider task per owned
//! environment, and waiters for requested collections.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use holdfast_core::ObservedResource;
use holdfast_proto::agent::v1::{
    controller_message, CollectRequest, ControllerMessage, RemediationResult,
};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::decider::{Decider, EnvEvent};
use crate::error::Error;
use crate::fleet::Fence;
use crate::records::{Environment, Records};
use crate::store::Store;

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

/// A remediation outcome with the moment it arrived.
type RecentResult = (std::time::Instant, Arc<RemediationResult>);

type AgentTx = mpsc::Sender<Result<ControllerMessage, tonic::Status>>;

struct Session {
    id: u64,
    agent_id: String,
    tx: AgentTx,
}

struct DeciderHandle {
    account: String,
    fence: Fence,
    tx: mpsc::Sender<EnvEvent>,
    view: Arc<Mutex<EnvView>>,
    token: CancellationToken,
}

/// Shared state of one controller replica.
pub struct Hub {
    pub records: Records,
    /// The policy rules (built-in and `--policies`), for the compliance
    /// consequence of each drift.
    pub policies: Mutex<holdfast_policy::Policies>,
    pub store: Arc<dyn Store>,
    pub controller_id: String,
    pub advertise_url: String,
    sessions: Mutex<HashMap<String, Session>>,
    sessions_notify: Notify,
    envs: RwLock<BTreeMap<String, Environment>>,
    owned: Mutex<BTreeMap<String, Fence>>,
    deciders: Mutex<HashMap<String, DeciderHandle>>,
    waiters: Mutex<HashMap<String, mpsc::Sender<Arc<PartitionData>>>>,
    /// Every outcome received recently, per account, handed to each new
    /// decider of the account when it starts: one that arrived while no
    /// decider ran (re-sent by an agent right after a takeover), or whose
    /// journal write was lost with a decider that stopped (the store became
    /// unreachable), is still recorded.
    recent_results: Mutex<HashMap<String, Vec<RecentResult>>>,
    next_session: AtomicU64,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Queue depth of a decider; a full queue applies backpressure to the agent
/// stream rather than dropping partitions.
const ENV_QUEUE: usize = 256;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const RECENT_RESULTS_FOR: Duration = Duration::from_secs(120);

impl Hub {
    pub fn new(
        store: Arc<dyn Store>,
        controller_id: String,
        advertise_url: String,
        policies: holdfast_policy::Policies,
        shutdown: CancellationToken,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            records: Records::new(store.clone()),
            policies: Mutex::new(policies),
            store,
            controller_id,
            advertise_url,
            sessions: Mutex::new(HashMap::new()),
            sessions_notify: Notify::new(),
            envs: RwLock::new(BTreeMap::new()),
            owned: Mutex::new(BTreeMap::new()),
            deciders: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            recent_results: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        })
    }

    // ---- environments (followed from the store) ----

    /// Replaces the known environments (after a full listing).
    pub fn replace_envs(self: &Arc<Hub>, envs: Vec<Environment>) {
        *self.envs.write().expect("envs lock") =
            envs.into_iter().map(|e| (e.name.clone(), e)).collect();
        self.reconcile_deciders();
        let names: Vec<String> = self
            .deciders
            .lock()
            .expect("deciders lock")
            .keys()
            .cloned()
            .collect();
        for name in names {
            self.notify_decider(&name, EnvEvent::Reload);
        }
    }

    /// An environment was created or changed.
    pub async fn upsert_env(self: &Arc<Hub>, env: Environment) {
        let name = env.name.clone();
        self.envs
            .write()
            .expect("envs lock")
            .insert(name.clone(), env);
        self.reconcile_deciders();
        self.notify_decider(&name, EnvEvent::Reload);
    }

    pub fn remove_env(self: &Arc<Hub>, name: &str) {
        self.envs.write().expect("envs lock").remove(name);
        self.reconcile_deciders();
    }

    /// An environment's current baseline moved.
    pub async fn baseline_changed(self: &Arc<Hub>, name: &str) {
        self.notify_decider(name, EnvEvent::Reload);
    }

    fn notify_decider(&self, name: &str, event: EnvEvent) {
        let tx = self
            .deciders
            .lock()
            .expect("deciders lock")
            .get(name)
            .map(|d| d.tx.clone());
        if let Some(tx) = tx {
            if tx.try_send(event).is_err() {
                tracing::warn!(
                    env = name,
                    "decider queue full; the change is picked up by its next reload"
                );
            }
        }
    }

    // ---- ownership ----

    /// Sets the accounts this replica owns and starts or stops deciders.
    pub fn set_owned(self: &Arc<Hub>, fences: &BTreeMap<String, Fence>) {
        *self.owned.lock().expect("owned lock") = fences.clone();
        self.reconcile_deciders();
    }

    pub fn owns(&self, account: &str) -> bool {
        self.owned.lock().expect("owned lock").contains_key(account)
    }

    /// Runs exactly one decider per environment whose account this replica
    /// owns, each with the current fence.
    fn reconcile_deciders(self: &Arc<Hub>) {
        let envs = self.envs.read().expect("envs lock").clone();
        let owned = self.owned.lock().expect("owned lock").clone();
        let mut deciders = self.deciders.lock().expect("deciders lock");
        deciders.retain(|name, d| {
            let keep = envs
                .get(name)
                .is_some_and(|e| owned.get(&e.account) == Some(&d.fence) && e.account == d.account);
            if !keep {
                tracing::info!(env = %name, "decider stopped (no longer owned here)");
                d.token.cancel();
            }
            keep
        });
        for (name, env) in &envs {
            let Some(fence) = owned.get(&env.account) else {
                continue;
            };
            if deciders.contains_key(name) {
                continue;
            }
            let (tx, rx) = mpsc::channel(ENV_QUEUE);
            let view = Arc::new(Mutex::new(EnvView::default()));
            let token = self.shutdown.child_token();
            let decider = Decider::new(env.clone(), self.clone(), view.clone(), fence.clone());
            let t = token.clone();
            let env_name = name.clone();
            let handle = tokio::spawn(async move {
                decider.run(rx, t).await;
                tracing::debug!(env = %env_name, "decider task ended");
            });
            self.tasks.lock().expect("tasks lock").push(handle);
            tracing::info!(env = %name, account = %env.account, "decider started");
            deciders.insert(
                name.clone(),
                DeciderHandle {
                    account: env.account.clone(),
                    fence: fence.clone(),
                    tx,
                    view,
                    token,
                },
            );
        }
    }

    /// An environment as last seen through the store's watch.
    pub fn environment(&self, name: &str) -> Option<Environment> {
        self.envs.read().expect("envs lock").get(name).cloned()
    }

    /// Asks this replica's decider of `name` for a scan now. None when no
    /// decider for it runs here (another replica owns the account).
    pub async fn scan(
        &self,
        name: &str,
        by: &str,
    ) -> Option<Result<holdfast_policy::report::Scan, tonic::Status>> {
        let tx = self
            .deciders
            .lock()
            .expect("deciders lock")
            .get(name)
            .map(|d| d.tx.clone())?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let event = EnvEvent::Scan {
            by: by.to_string(),
            reply,
        };
        if tx.send_timeout(event, SEND_TIMEOUT).await.is_err() {
            return Some(Err(tonic::Status::unavailable(format!(
                "the decider of {name:?} is not taking requests; try again"
            ))));
        }
        Some(
            match tokio::time::timeout(Duration::from_secs(300), answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(tonic::Status::unavailable(format!(
                    "the decider of {name:?} stopped before scanning (ownership moved?); try again"
                ))),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "the scan of {name:?} did not finish within 300s"
                ))),
            },
        )
    }

    pub fn env_view(&self, name: &str) -> Option<EnvView> {
        self.deciders
            .lock()
            .expect("deciders lock")
            .get(name)
            .map(|d| d.view.lock().expect("view lock").clone())
    }

    // ---- agent sessions ----

    pub fn agent_connected(&self, account: &str) -> bool {
        self.sessions
            .lock()
            .expect("sessions lock")
            .contains_key(account)
    }

    pub fn connected_accounts(&self) -> BTreeSet<String> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Resolves when an agent session is added or removed.
    pub async fn sessions_changed(&self) {
        self.sessions_notify.notified().await
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
        self.sessions_notify.notify_waiters();
        id
    }

    /// Drops every agent stream's sender, ending the streams (at shutdown).
    pub fn close_sessions(&self) {
        self.sessions.lock().expect("sessions lock").clear();
        self.sessions_notify.notify_waiters();
    }

    pub fn unregister_session(&self, account: &str, id: u64) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.get(account).is_some_and(|s| s.id == id) {
            sessions.remove(account);
            self.sessions_notify.notify_waiters();
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

    /// Routes a partition to its collection's waiter and to the deciders of
    /// every environment that covers it.
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

    /// Routes a remediation outcome to the account's deciders; the one whose
    /// environment journaled the remediation takes it.
    pub async fn dispatch_result(&self, account: &str, result: RemediationResult) {
        let result = Arc::new(result);
        {
            let mut recent = self.recent_results.lock().expect("recent results lock");
            let list = recent.entry(account.to_string()).or_default();
            list.retain(|(at, _)| at.elapsed() < RECENT_RESULTS_FOR);
            list.push((std::time::Instant::now(), result.clone()));
        }
        for tx in self.deciders_for(|e| e.account == account) {
            let _ = tx.send(EnvEvent::RemediationResult(result.clone())).await;
        }
    }

    /// Outcomes received for `account` in the last two minutes.
    pub fn recent_results(&self, account: &str) -> Vec<Arc<RemediationResult>> {
        let recent = self.recent_results.lock().expect("recent results lock");
        recent
            .get(account)
            .map(|l| {
                l.iter()
                    .filter(|(at, _)| at.elapsed() < RECENT_RESULTS_FOR)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn deciders_for(&self, pred: impl Fn(&Environment) -> bool) -> Vec<mpsc::Sender<EnvEvent>> {
        let envs = self.envs.read().expect("envs lock");
        self.deciders
            .lock()
            .expect("deciders lock")
            .iter()
            .filter(|(name, _)| envs.get(*name).is_some_and(&pred))
            .map(|(_, d)| d.tx.clone())
            .collect()
    }

    /// Waits for every decider to finish (after the shutdown token fired).
    pub async fn join(&self, deadline: Duration) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        if tokio::time::timeout(deadline, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("deciders did not stop within {deadline:?}");
        }
    }
}
