//! The store: a small key-value interface with conditional transactions.
//!
//! Everything the controller persists goes through [`Store`]. Conditions on
//! a transaction give compare-and-swap (the baseline pointer), create-only
//! writes (immutable baseline versions) and, later, lease fencing: a
//! decider's writes will carry one more condition that its lease is still
//! held. The etcd implementation is in [`etcd`]; an embedded single-file
//! implementation will pass the same conformance suite.

pub mod etcd;

use async_trait::async_trait;

/// A stored value and the store revision at which it last changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// A condition that must hold for a transaction to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The key does not exist.
    Absent(String),
    /// The key exists and last changed at this revision.
    Revision(String, i64),
}

/// An atomic group of writes, applied only if every condition holds.
#[derive(Clone, Debug, Default)]
pub struct Txn {
    pub conditions: Vec<Condition>,
    pub puts: Vec<(String, Vec<u8>)>,
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
        self.puts.push((key.into(), value));
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

/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store rejected the request: {0}")]
    Rejected(String),
}

/// The persistence interface of the controller.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;
    /// Every key under `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>, StoreError>;
    /// Applies `txn` if its conditions hold; returns whether it applied.
    async fn commit(&self, txn: Txn) -> Result<bool, StoreError>;
}
