//! The tamper-evident record: one hash chain per environment.
//!
//! Every write that a user may later need to trust — an admin action
//! (environment changes, enforcement mode, pauses, safety settings,
//! baselines created, approved or rolled back) and every change of a drift
//! or remediation record — appends an [`Entry`] in the same store
//! transaction as the write itself, so a record never exists without its
//! entry. An entry carries who, when, what and why, the SHA-256 of the
//! record's stored bytes, and the hash of the previous entry; its own hash
//! covers all of that. [`verify`] recomputes the chain and compares each
//! record in the store with the digest of its latest entry, so an altered,
//! deleted or inserted record — or an altered or deleted entry — is found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: String,
    /// Who: the admin caller's actor, or `controller:<replica>` for a
    /// decider's own decision.
    pub actor: String,
    /// What, e.g. `enforcement.pause`, `baseline.approve`, `drift detected`.
    pub action: String,
    /// The store key of the record written, or the environment name.
    pub subject: String,
    /// Why and with which values (reason, mode, version…).
    pub detail: Value,
    /// SHA-256 (hex) of the record's stored bytes; empty for a deletion.
    pub digest: String,
    /// Hash of the previous entry; empty for the first.
    pub prev: String,
    pub hash: String,
}

/// The newest entry of a chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// An entry before it is linked into the chain.
#[derive(Clone, Debug)]
pub struct Draft {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: Value,
    /// The stored bytes of the record written (None: nothing stored).
    pub record: Option<Vec<u8>>,
}

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of an entry: over its canonical JSON without the hash itself.
pub fn entry_hash(e: &Entry) -> String {
    let mut v = serde_json::to_value(e).expect("an entry always serializes");
    if let Value::Object(m) = &mut v {
        m.remove("hash");
    }
    digest(&holdfast_core::canonical_bytes(&v))
}

impl Draft {
    /// Links the draft after `head`.
    pub fn seal(self, head: Option<&Head>, at: String) -> Entry {
        let mut e = Entry {
            seq: head.map_or(1, |h| h.seq + 1),
            at,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            detail: self.detail,
            digest: self.record.as_deref().map(digest).unwrap_or_default(),
            prev: head.map(|h| h.hash.clone()).unwrap_or_default(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        e
    }
}

/// What [`verify`] found wrong.
pub type Problems = Vec<String>;

/// Checks one chain: `entries` as stored (key → bytes, in key order),
/// `head` as stored, and `records`: every audited record of the
/// environment now in the store (key → bytes).
pub fn verify(
    env: &str,
    entries: &[(String, Vec<u8>)],
    head: Option<&[u8]>,
    records: &BTreeMap<String, Vec<u8>>,
) -> (usize, Problems) {
    let mut problems = Vec::new();
    let mut prev = String::new();
    let mut expected_seq = 1u64;
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for (key, bytes) in entries {
        let e: Entry = match serde_json::from_slice(bytes) {
            Ok(e) => e,
            Err(err) => {
                problems.push(format!("{key}: not an audit entry ({err})"));
                continue;
            }
        };
        if e.seq != expected_seq {
            problems.push(format!(
                "{env}: entry {expected_seq} is missing (found {} next)",
                e.seq
            ));
        }
        if entry_hash(&e) != e.hash {
            problems.push(format!(
                "{env}: entry {} ({} {}) was altered: its hash does not match its content",
                e.seq, e.action, e.subject
            ));
        }
        if e.prev != prev {
            problems.push(format!(
                "{env}: entry {} does not follow the entry before it (an entry was altered or removed)",
                e.seq
            ));
        }
        prev = e.hash.clone();
        expected_seq = e.seq + 1;
        if e.subject.contains('/') {
            latest.insert(e.subject.clone(), e.digest.clone());
        }
    }
    match head.map(serde_json::from_slice::<Head>) {
        Some(Ok(h)) if h.seq + 1 != expected_seq || h.hash != prev => {
            problems.push(format!(
                "{env}: the chain ends at entry {} but its head names entry {} (entries were removed from the end)",
                expected_seq - 1,
                h.seq
            ));
        }
        Some(Ok(_)) => {}
        Some(Err(err)) => problems.push(format!("{env}: the chain head is corrupt ({err})")),
        None if !entries.is_empty() => problems.push(format!("{env}: the chain head is missing")),
        None => {}
    }
    for (key, bytes) in records {
        match latest.get(key) {
            None => problems.push(format!(
                "{key}: record has no audit entry (inserted outside holdfast)"
            )),
            Some(d) if *d != digest(bytes) => problems.push(format!(
                "{key}: record was altered: it does not match its latest audit entry"
            )),
            Some(_) => {}
        }
    }
    for (key, d) in &latest {
        if !d.is_empty() && !records.contains_key(key) {
            problems.push(format!("{key}: record was deleted"));
        }
    }
    (entries.len(), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Chain = (Vec<(String, Vec<u8>)>, Vec<u8>, BTreeMap<String, Vec<u8>>);

    fn chain(n: usize) -> Chain {
        let mut head: Option<Head> = None;
        let mut entries = Vec::new();
        let mut records = BTreeMap::new();
        for i in 0..n {
            let key = format!("/holdfast/v1/drift/prod/{i}");
            let record = format!("{{\"n\":{i}}}").into_bytes();
            let e = Draft {
                actor: "alice".into(),
                action: "drift detected".into(),
                subject: key.clone(),
                detail: json!({}),
                record: Some(record.clone()),
            }
            .seal(head.as_ref(), format!("2026-11-24T00:00:0{i}.000Z"));
            head = Some(Head {
                seq: e.seq,
                hash: e.hash.clone(),
            });
            entries.push((
                format!("/audit/{:020}", e.seq),
                serde_json::to_vec(&e).unwrap(),
            ));
            records.insert(key, record);
        }
        (
            entries,
            serde_json::to_vec(&head.unwrap()).unwrap(),
            records,
        )
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (entries, head, records) = chain(4);
        let (n, problems) = verify("prod", &entries, Some(&head), &records);
        assert_eq!((n, problems), (4, vec![]));
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let (entries, head, records) = chain(4);
        let found = |e: &[(String, Vec<u8>)], h: &[u8], r: &BTreeMap<String, Vec<u8>>| {
            verify("prod", e, Some(h), r).1.join("\n")
        };

        let mut altered = records.clone();
        altered.insert("/holdfast/v1/drift/prod/1".into(), b"{\"n\":99}".to_vec());
        assert!(found(&entries, &head, &altered).contains("drift/prod/1: record was altered"));

        let mut deleted = records.clone();
        deleted.remove("/holdfast/v1/drift/prod/2");
        assert!(found(&entries, &head, &deleted).contains("drift/prod/2: record was deleted"));

        let mut inserted = records.clone();
        inserted.insert("/holdfast/v1/drift/prod/x".into(), b"{}".to_vec());
        assert!(found(&entries, &head, &inserted).contains("no audit entry"));

        let mut gap = entries.clone();
        gap.remove(1);
        assert!(found(&gap, &head, &records).contains("entry 2 is missing"));

        let mut edited = entries.clone();
        let mut e: Entry = serde_json::from_slice(&edited[2].1).unwrap();
        e.actor = "mallory".into();
        edited[2].1 = serde_json::to_vec(&e).unwrap();
        assert!(found(&edited, &head, &records).contains("entry 3 (drift detected"));

        let truncated = entries[..3].to_vec();
        let mut recs = records.clone();
        recs.remove("/holdfast/v1/drift/prod/3");
        assert!(found(&truncated, &head, &recs).contains("removed from the end"));
    }
}
