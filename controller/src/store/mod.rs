//! The store: a small key-value interface with conditional transactions,
//! leases and watches — the subset of etcd's model holdfast relies on.
//!
//! Everything the controller persists goes through [`Store`]. Conditions on
//! a transaction give compare-and-swap (the baseline pointer), create-only
//! writes (immutable baseline versions) and lease fencing: a decider's
//! writes carry the condition that its ownership key — attached to its
//! replica's lease — is still the one it created. Two implementations pass
//! one conformance suite ([`conformance`]): [`etcd::EtcdStore`] (production,
//! replicated) and [`embedded::EmbeddedStore`] (one file, one process).

pub mod conformance;
pub mod embedded;
pub mod etcd;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// A lease: keys attached to it are deleted when it expires or is revoked.
pub type LeaseId = i64;

/// A stored value and the store revisions at which it was created and last
/// changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
    /// 0 when not attached to a lease.
    pub lease: LeaseId,
}

/// The result of listing a prefix: the items and the store revision they
/// were read at (watch from `revision + 1` to follow on without a gap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub revision: i64,
    pub items: Vec<(String, Versioned)>,
}

/// A condition that must hold for a transaction to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The key does not exist.
    Absent(String),
    /// The key exists and last changed at this revision.
    Revision(String, i64),
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    pub key: String,
    pub value: Vec<u8>,
    /// Attach the key to this lease (0: none).
    pub lease: LeaseId,
}

/// An atomic group of writes, applied only if every condition holds.
#[derive(Clone, Debug, Default)]
pub struct Txn {
    pub conditions: Vec<Condition>,
    pub puts: Vec<Put>,
    pub deletes: Vec<String>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }
    pub fn when(mut self, c: Condition) -> Txn {
        self.conditions.push(c);
        self
    }
    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Txn {
        self.puts.push(Put {
            key: key.into(),
            value,
            lease: 0,
        });
        self
    }
    pub fn put_with_lease(mut self, key: impl Into<String>, value: Vec<u8>, lease: LeaseId) -> Txn {
        self.puts.push(Put {
            key: key.into(),
            value,
            lease,
        });
        self
    }
    pub fn delete(mut self, key: impl Into<String>) -> Txn {
        self.deletes.push(key.into());
        self
    }
    /// Number of operations (etcd limits one transaction to 128 by default).
    pub fn ops(&self) -> usize {
        self.conditions.len() + self.puts.len() + self.deletes.len()
    }
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Put {
        key: String,
        value: Vec<u8>,
        mod_revision: i64,
    },
    Delete {
        key: String,
        mod_revision: i64,
    },
}

impl Event {
    pub fn key(&self) -> &str {
        match self {
            Event::Put { key, .. } | Event::Delete { key, .. } => key,
        }
    }
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put { mod_revision, .. } | Event::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// What went wrong talking to the store.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store rejected the request: {0}")]
    Rejected(String),
    /// A watch asked for history the store no longer keeps: re-list, then
    /// watch from the listing's revision.
    #[error("revision {requested} is compacted (oldest kept: {compacted})")]
    Compacted { requested: i64, compacted: i64 },
}

/// Events of a watch, in revision order. The channel closes when the watch
/// ends; an `Err` is the last item.
pub type WatchStream = mpsc::Receiver<Result<Event, StoreError>>;

/// The persistence interface of the controller.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;
    /// Every key under `prefix`, in key order, at one revision.
    async fn list(&self, prefix: &str) -> Result<Listing, StoreError>;
    /// Applies `txn` if its conditions hold; returns whether it applied.
    async fn commit(&self, txn: Txn) -> Result<bool, StoreError>;
    /// A new lease that expires `ttl` after its last keep-alive.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;
    /// Renews a lease; `false` if it already expired (its keys are gone).
    async fn keep_alive(&self, lease: LeaseId) -> Result<bool, StoreError>;
    /// Ends a lease now, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Changes under `prefix` from `from_revision` on (0: from now).
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError>;
    /// Discards history before `revision` (watches from before it fail with
    /// [`StoreError::Compacted`]).
    async fn compact(&self, revision: i64) -> Result<(), StoreError>;
}
