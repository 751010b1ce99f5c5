//! Replicas sharing one store: membership, account ownership and the
//! desired-state watch.
//!
//! - **Membership.** Each replica holds one store lease, renewed every third
//!   of its TTL, and registers `replicas/{id}` (its advertised URL) under it.
//!   If the lease cannot be renewed for a whole TTL (the store is
//!   unreachable, the process was paused) the replica considers it lost:
//!   it stops deciding at once and grants itself a new lease when it can.
//! - **Ownership.** The replica holding an account's agent stream creates
//!   `owners/{account}` under its lease (create-only). Only the owner runs
//!   deciders for that account's environments, and every decider write is
//!   fenced on that key's revision, so a replica that lost its lease — or
//!   whose key another replica has since created — cannot write a decision
//!   or send a remediation. A dead owner's key disappears with its lease.
//! - **Desired state.** Environments and current-baseline pointers are
//!   watched (re-listed after compaction or an error), so an admin change on
//!   any replica reaches the owning decider within moments.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::records::{Environment, ROOT};
use crate::store::{Condition, Event, LeaseId, Store, Txn};

/// How often ownership is reconciled with the connected agents.
const RECONCILE_EVERY: Duration = Duration::from_millis(300);

/// A decider's right to write: the ownership key and the revision at which
/// this replica created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub revision: i64,
}

/// What a replica registers about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub id: String,
    pub url: String,
}

/// What the owner of an account records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnerInfo {
    pub replica: String,
    pub url: String,
}

pub fn owner_key(account: &str) -> String {
    format!("{ROOT}/owners/{account}")
}

fn replica_key(id: &str) -> String {
    format!("{ROOT}/replicas/{id}")
}

/// Keeps this replica's lease alive; publishes `Some(lease)` while it is
/// held and `None` while it is not.
pub async fn membership(
    store: Arc<dyn Store>,
    me: ReplicaInfo,
    ttl: Duration,
    lease_tx: watch::Sender<Option<LeaseId>>,
    token: CancellationToken,
) {
    let mut delay = Duration::from_millis(200);
    // A lease presumed lost while the store was unreachable may still hold
    // this replica's keys: revoke it as soon as the store answers, so the
    // accounts are free again without waiting out its TTL.
    let mut stale: Option<LeaseId> = None;
    loop {
        let lease = tokio::select! {
            _ = token.cancelled() => return,
            r = store.grant_lease(ttl) => r,
        };
        let lease = match lease {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot get a lease; not deciding until the store answers");
                tokio::select! { _ = token.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        delay = Duration::from_millis(200);
        if let Some(old) = stale.take() {
            if let Err(e) = store.revoke_lease(old).await {
                tracing::warn!(lease = old, error = %e, "cannot revoke the previous lease; it expires by itself");
            }
        }
        let info = serde_json::to_vec(&me).expect("replica info serializes");
        if let Err(e) = store
            .commit(Txn::new().put_with_lease(replica_key(&me.id), info, lease))
            .await
        {
            tracing::warn!(error = %e, "cannot register this replica");
        }
        tracing::info!(lease, replica = %me.id, "lease acquired");
        lease_tx.send_replace(Some(lease));
        let mut last_ok = Instant::now();
        let mut tick = tokio::time::interval(ttl / 3);
        loop {
            tokio::select! {
                _ = token.cancelled() => {
                    lease_tx.send_replace(None);
                    // Hand accounts over at once rather than after the TTL.
                    let _ = store.revoke_lease(lease).await;
                    return;
                }
                _ = tick.tick() => {}
            }
            // A renewal the store accepts means the lease never lapsed, so
            // keys under it (and fences on them) were never released.
            match store.keep_alive(lease).await {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease, "lease expired; stopped deciding");
                    lease_tx.send_replace(None);
                    break;
                }
                Err(e) => {
                    tracing::warn!(lease, error = %e, "cannot renew the lease");
                    if last_ok.elapsed() >= ttl {
                        tracing::warn!(lease, "lease presumed lost; stopped deciding");
                        lease_tx.send_replace(None);
                        stale = Some(lease);
                        break;
                    }
                }
            }
        }
    }
}

/// Acquires and releases account ownership to match the connected agents,
/// and starts or stops deciders to match ownership.
pub async fn ownership(
    hub: Arc<Hub>,
    mut lease_rx: watch::Receiver<Option<LeaseId>>,
    token: CancellationToken,
) {
    let mut owned: BTreeMap<String, (Fence, LeaseId)> = BTreeMap::new();
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => {
                hub.set_owned(&BTreeMap::new());
                return;
            }
            _ = tick.tick() => {}
            _ = lease_rx.changed() => {}
            _ = hub.sessions_changed() => {}
        }
        let lease = *lease_rx.borrow_and_update();
        // Anything owned under another (lost) lease is no longer ours.
        owned.retain(|_, (_, l)| Some(*l) == lease);
        if let Some(lease) = lease {
            let connected = hub.connected_accounts();
            for account in &connected {
                if owned.contains_key(account) {
                    continue;
                }
                match acquire(&hub, account, lease).await {
                    Ok(Some(fence)) => {
                        tracing::info!(
                            account,
                            revision = fence.revision,
                            "account owned; deciding for it"
                        );
                        owned.insert(account.clone(), (fence, lease));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(account, error = %e, "cannot acquire account ownership")
                    }
                }
            }
            let gone: Vec<String> = owned
                .keys()
                .filter(|a| !connected.contains(*a))
                .cloned()
                .collect();
            for account in gone {
                if let Some((fence, _)) = owned.remove(&account) {
                    let txn = Txn::new()
                        .when(Condition::Revision(fence.key.clone(), fence.revision))
                        .delete(fence.key);
                    match hub.store.commit(txn).await {
                        Ok(_) => tracing::info!(account = %account, "agent gone; account released"),
                        Err(e) => {
                            tracing::warn!(account = %account, error = %e, "cannot release account; it expires with the lease")
                        }
                    }
                }
            }
        }
        let fences: BTreeMap<String, Fence> = owned
            .iter()
            .map(|(a, (f, _))| (a.clone(), f.clone()))
            .collect();
        hub.set_owned(&fences);
    }
}

async fn acquire(
    hub: &Hub,
    account: &str,
    lease: LeaseId,
) -> Result<Option<Fence>, crate::error::Error> {
    let key = owner_key(account);
    let info = OwnerInfo {
        replica: hub.controller_id.clone(),
        url: hub.advertise_url.clone(),
    };
    let value = serde_json::to_vec(&info).expect("owner info serializes");
    let created = hub
        .store
        .commit(
            Txn::new()
                .when(Condition::Absent(key.clone()))
                .put_with_lease(&key, value, lease),
        )
        .await?;
    let Some(current) = hub.store.get(&key).await? else {
        return Ok(None);
    };
    // Ours if we just created it, or if it is already under our live lease
    // (e.g. the agent reconnected to this same replica).
    if created || current.lease == lease {
        return Ok(Some(Fence {
            key,
            revision: current.mod_revision,
        }));
    }
    Ok(None)
}

/// Which replica owns an account, if any.
pub async fn owner_of(
    store: &dyn Store,
    account: &str,
) -> Result<Option<OwnerInfo>, crate::error::Error> {
    match store.get(&owner_key(account)).await? {
        Some(v) => Ok(serde_json::from_slice(&v.value).ok()),
        None => Ok(None),
    }
}

/// The URLs of every live replica.
pub async fn replica_urls(store: &dyn Store) -> Result<Vec<String>, crate::error::Error> {
    Ok(store
        .list(&format!("{ROOT}/replicas/"))
        .await?
        .items
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<ReplicaInfo>(&v.value).ok())
        .map(|r| r.url)
        .collect())
}

/// Follows environments and current-baseline pointers in the store and
/// tells the hub.
pub async fn desired_state(hub: Arc<Hub>, token: CancellationToken) {
    let envs_prefix = format!("{ROOT}/envs/");
    let current_prefix = format!("{ROOT}/baseline-current/");
    let mut delay = Duration::from_millis(200);
    loop {
        if token.is_cancelled() {
            return;
        }
        let round = async {
            let envs = hub.store.list(&envs_prefix).await?;
            let mut all = Vec::new();
            for (key, v) in &envs.items {
                match serde_json::from_slice::<Environment>(&v.value) {
                    Ok(e) => all.push(e),
                    Err(e) => {
                        tracing::error!(%key, error = %e, "ignoring a corrupt environment record")
                    }
                }
            }
            hub.replace_envs(all);
            let from = envs.revision + 1;
            let mut env_watch = hub.store.watch(&envs_prefix, from).await?;
            let mut current_watch = hub.store.watch(&current_prefix, from).await?;
            loop {
                let event = tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    e = env_watch.recv() => e,
                    e = current_watch.recv() => e,
                };
                match event {
                    None => {
                        return Err(crate::store::StoreError::Unavailable("watch closed".into()))
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Event::Put { key, value, .. })) if key.starts_with(&envs_prefix) => {
                        match serde_json::from_slice::<Environment>(&value) {
                            Ok(env) => hub.upsert_env(env).await,
                            Err(e) => {
                                tracing::error!(%key, error = %e, "ignoring a corrupt environment record")
                            }
                        }
                    }
                    Some(Ok(Event::Delete { key, .. })) if key.starts_with(&envs_prefix) => {
                        hub.remove_env(&key[envs_prefix.len()..]);
                    }
                    Some(Ok(e)) => {
                        let name = &e.key()[current_prefix.len().min(e.key().len())..];
                        hub.baseline_changed(name).await;
                    }
                }
            }
        };
        match round.await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "desired-state watch ended; re-listing");
                tokio::select! { _ = token.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
