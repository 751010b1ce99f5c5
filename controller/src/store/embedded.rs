//! [`Store`] in one local file (redb), for a single controller process —
//! the default when no `--etcd` is given, the way k3s defaults to an
//! embedded datastore.
//!
//! It keeps etcd's model: one store revision per applied transaction, each
//! key's create and modify revisions, leases, and watches that can resume
//! from a past revision while it is still in the in-memory history.
//! Leases live in memory: they belong to this process, so keys attached to a
//! lease are deleted when the file is opened again.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc;

use super::{Condition, Event, LeaseId, Listing, Store, StoreError, Txn, Versioned, WatchStream};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Events kept for watches that resume from a past revision.
const HISTORY: usize = 10_000;
/// Buffered events per watch; a watch that falls further behind is closed
/// (its reader re-lists and watches again).
const WATCH_BUFFER: usize = 4096;

/// Embedded single-file store.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    state: Mutex<State>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Result<Event, StoreError>>,
}

struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

struct State {
    revision: i64,
    /// Watches may start at this revision or later.
    oldest_watchable: i64,
    history: VecDeque<Event>,
    watchers: Vec<Watcher>,
    leases: HashMap<LeaseId, Lease>,
    next_lease: LeaseId,
}

fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

fn encode(v: &Versioned) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + v.value.len());
    out.extend_from_slice(&v.mod_revision.to_le_bytes());
    out.extend_from_slice(&v.create_revision.to_le_bytes());
    out.extend_from_slice(&v.lease.to_le_bytes());
    out.extend_from_slice(&v.value);
    out
}

fn decode(bytes: &[u8]) -> Result<Versioned, StoreError> {
    if bytes.len() < 24 {
        return Err(StoreError::Rejected(
            "embedded store: corrupt record header".into(),
        ));
    }
    let word = |i: usize| i64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok(Versioned {
        mod_revision: word(0),
        create_revision: word(1),
        lease: word(2),
        value: bytes[24..].to_vec(),
    })
}

impl EmbeddedStore {
    /// Opens (or creates) the store file. Keys left attached to leases by a
    /// previous process are deleted.
    pub async fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let path = path.to_path_buf();
        let inner = tokio::task::spawn_blocking(move || Inner::open(&path))
            .await
            .map_err(storage)??;
        let inner = Arc::new(inner);
        tokio::spawn(expire_leases(Arc::downgrade(&inner)));
        Ok(EmbeddedStore { inner })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(storage)?
    }
}

impl Inner {
    fn open(path: &Path) -> Result<Inner, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| storage(format!("{}: {e}", dir.display())))?;
            }
        }
        let db = Database::create(path).map_err(|e| storage(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(storage)?;
        let revision;
        {
            let mut kv = tx.open_table(KV).map_err(storage)?;
            let mut meta = tx.open_table(META).map_err(storage)?;
            let mut rev = meta
                .get("revision")
                .map_err(storage)?
                .map_or(0, |v| v.value());
            let mut leased = Vec::new();
            for item in kv.iter().map_err(storage)? {
                let (k, v) = item.map_err(storage)?;
                if decode(v.value())?.lease != 0 {
                    leased.push(k.value().to_string());
                }
            }
            if !leased.is_empty() {
                rev += 1;
                for k in &leased {
                    kv.remove(k.as_str()).map_err(storage)?;
                }
                meta.insert("revision", rev).map_err(storage)?;
            }
            revision = rev;
        }
        tx.commit().map_err(storage)?;
        Ok(Inner {
            db,
            state: Mutex::new(State {
                revision,
                oldest_watchable: revision + 1,
                history: VecDeque::new(),
                watchers: Vec::new(),
                leases: HashMap::new(),
                next_lease: 1,
            }),
        })
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let kv = tx.open_table(KV).map_err(storage)?;
        match kv.get(key).map_err(storage)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        // The state lock orders this read after every committed write, so
        // the revision matches the items.
        let state = self.state.lock().expect("store state lock");
        let tx = self.db.begin_read().map_err(storage)?;
        let revision = state.revision;
        drop(state);
        let kv = tx.open_table(KV).map_err(storage)?;
        let mut items = Vec::new();
        for item in kv.range(prefix..).map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            items.push((key.to_string(), decode(v.value())?));
        }
        Ok(Listing { revision, items })
    }

    /// Applies a transaction under the state lock so revisions, history and
    /// watch events stay in one order.
    fn commit(&self, txn: Txn) -> Result<bool, StoreError> {
        let mut state = self.state.lock().expect("store state lock");
        for p in &txn.puts {
            if p.lease != 0 && !state.leases.contains_key(&p.lease) {
                return Err(StoreError::Rejected(format!("lease {} not found", p.lease)));
            }
        }
        let tx = self.db.begin_write().map_err(storage)?;
        let revision = state.revision + 1;
        let mut events = Vec::new();
        let mut lease_moves: Vec<(String, LeaseId, LeaseId)> = Vec::new();
        {
            let mut kv = tx.open_table(KV).map_err(storage)?;
            for c in &txn.conditions {
                let holds = match c {
                    Condition::Absent(k) => kv.get(k.as_str()).map_err(storage)?.is_none(),
                    Condition::Revision(k, r) => match kv.get(k.as_str()).map_err(storage)? {
                        Some(v) => decode(v.value())?.mod_revision == *r,
                        None => false,
                    },
                };
                if !holds {
                    return Ok(false);
                }
            }
            for p in &txn.puts {
                let old = kv
                    .get(p.key.as_str())
                    .map_err(storage)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                let create_revision = old.as_ref().map_or(revision, |o| o.create_revision);
                let record = Versioned {
                    value: p.value.clone(),
                    mod_revision: revision,
                    create_revision,
                    lease: p.lease,
                };
                kv.insert(p.key.as_str(), encode(&record).as_slice())
                    .map_err(storage)?;
                lease_moves.push((p.key.clone(), old.map_or(0, |o| o.lease), p.lease));
                events.push(Event::Put {
                    key: p.key.clone(),
                    value: p.value.clone(),
                    mod_revision: revision,
                });
            }
            for k in &txn.deletes {
                if let Some(old) = kv.remove(k.as_str()).map_err(storage)? {
                    let old = decode(old.value())?;
                    lease_moves.push((k.clone(), old.lease, 0));
                    events.push(Event::Delete {
                        key: k.clone(),
                        mod_revision: revision,
                    });
                }
            }
        }
        if events.is_empty() {
            // Nothing changed (deletes of absent keys): no new revision.
            return Ok(true);
        }
        {
            let mut meta = tx.open_table(META).map_err(storage)?;
            meta.insert("revision", revision).map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        state.revision = revision;
        for (key, from, to) in lease_moves {
            if from != 0 {
                if let Some(l) = state.leases.get_mut(&from) {
                    l.keys.remove(&key);
                }
            }
            if to != 0 {
                if let Some(l) = state.leases.get_mut(&to) {
                    l.keys.insert(key);
                }
            }
        }
        state.publish(events);
        Ok(true)
    }
}

impl State {
    fn publish(&mut self, events: Vec<Event>) {
        for e in events {
            self.watchers.retain(|w| {
                if !e.key().starts_with(&w.prefix) {
                    return !w.tx.is_closed();
                }
                // A full buffer closes the watch: its reader re-lists.
                w.tx.try_send(Ok(e.clone())).is_ok()
            });
            self.history.push_back(e);
        }
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.oldest_watchable = old.revision() + 1;
            }
        }
        // Never keep part of a revision.
        while self
            .history
            .front()
            .is_some_and(|e| e.revision() < self.oldest_watchable)
        {
            self.history.pop_front();
        }
    }
}

/// Deletes the keys of expired leases.
async fn expire_leases(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let expired: Vec<LeaseId> = {
            let state = inner.state.lock().expect("store state lock");
            let now = Instant::now();
            state
                .leases
                .iter()
                .filter(|(_, l)| l.deadline <= now)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in expired {
            let inner = inner.clone();
            let r = tokio::task::spawn_blocking(move || revoke(&inner, id)).await;
            if let Ok(Err(e)) | Err(e) = r.map_err(storage) {
                tracing::error!(lease = id, error = %e, "cannot expire lease");
            }
        }
    }
}

fn revoke(inner: &Inner, id: LeaseId) -> Result<(), StoreError> {
    let keys: Vec<String> = {
        let mut state = inner.state.lock().expect("store state lock");
        match state.leases.remove(&id) {
            Some(l) => l.keys.into_iter().collect(),
            None => return Ok(()),
        }
    };
    if keys.is_empty() {
        return Ok(());
    }
    let mut txn = Txn::new();
    for k in keys {
        txn = txn.delete(k);
    }
    inner.commit(txn).map(|_| ())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let key = key.to_string();
        self.blocking(move |i| i.get(&key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |i| i.list(&prefix)).await
    }

    async fn commit(&self, txn: Txn) -> Result<bool, StoreError> {
        self.blocking(move |i| i.commit(txn)).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl < Duration::from_secs(1) {
            return Err(StoreError::Rejected(format!(
                "lease TTL {ttl:?} is below 1s"
            )));
        }
        let mut state = self.inner.state.lock().expect("store state lock");
        let id = state.next_lease;
        state.next_lease += 1;
        state.leases.insert(
            id,
            Lease {
                ttl,
                deadline: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<bool, StoreError> {
        let mut state = self.inner.state.lock().expect("store state lock");
        match state.leases.get_mut(&lease) {
            Some(l) if l.deadline > Instant::now() => {
                l.deadline = Instant::now() + l.ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.blocking(move |i| revoke(i, lease)).await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let mut state = self.inner.state.lock().expect("store state lock");
        if from_revision > 0 {
            if from_revision < state.oldest_watchable {
                return Err(StoreError::Compacted {
                    requested: from_revision,
                    compacted: state.oldest_watchable - 1,
                });
            }
            for e in state
                .history
                .iter()
                .filter(|e| e.revision() >= from_revision && e.key().starts_with(prefix))
            {
                if tx.try_send(Ok(e.clone())).is_err() {
                    return Err(StoreError::Compacted {
                        requested: from_revision,
                        compacted: from_revision,
                    });
                }
            }
        }
        state.watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
        });
        Ok(rx)
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let mut state = self.inner.state.lock().expect("store state lock");
        if revision > state.revision {
            return Err(StoreError::Rejected(format!(
                "cannot compact to revision {revision}: the store is at {}",
                state.revision
            )));
        }
        state.oldest_watchable = state.oldest_watchable.max(revision);
        let oldest = state.oldest_watchable;
        while state.history.front().is_some_and(|e| e.revision() < oldest) {
            state.history.pop_front();
        }
        Ok(())
    }
}
