//! [`Store`] on etcd (v3 API through etcd-client).

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KvClient, LeaseClient, PutOptions, TxnOp,
    WatchClient, WatchOptions,
};
use tokio::sync::mpsc;

use super::{Condition, Event, LeaseId, Listing, Store, StoreError, Txn, Versioned, WatchStream};

/// Every call is bounded so an unreachable cluster surfaces as an error
/// instead of a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys per page when listing a prefix.
const PAGE: i64 = 500;

/// etcd-backed store.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    lease: LeaseClient,
    watch: WatchClient,
}

impl EtcdStore {
    /// Connects to the given endpoints, retrying until `wait` has passed.
    pub async fn connect(endpoints: &[String], wait: Duration) -> Result<EtcdStore, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = tokio::time::timeout(CALL_TIMEOUT, async {
                let mut client = Client::connect(endpoints, None).await?;
                // A cheap read proves the cluster answers, not only that a
                // socket opened.
                client.get("/holdfast/v1/ping", None).await?;
                Ok::<_, etcd_client::Error>(client)
            })
            .await;
            let err = match attempt {
                Ok(Ok(client)) => {
                    return Ok(EtcdStore {
                        kv: client.kv_client(),
                        lease: client.lease_client(),
                        watch: client.watch_client(),
                    })
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            if tokio::time::Instant::now() + delay > deadline {
                return Err(StoreError::Unavailable(format!(
                    "cannot reach etcd at {}: {err}",
                    endpoints.join(",")
                )));
            }
            tracing::warn!(error = %err, "etcd not reachable yet, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

fn map_err(e: etcd_client::Error) -> StoreError {
    match e {
        etcd_client::Error::GRpcStatus(s)
            if matches!(
                s.code(),
                tonic::Code::InvalidArgument
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::OutOfRange
                    | tonic::Code::ResourceExhausted
            ) =>
        {
            StoreError::Rejected(s.message().to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd did not answer within {CALL_TIMEOUT:?}"
        ))),
    }
}

/// A read that fails fast with a transient error (a leader election after a
/// member died answers "leader changed") is retried a few times; a read
/// that timed out is not, so an unreachable cluster still fails promptly.
/// Writes are never retried here: a conditional write whose outcome is
/// unknown must be re-decided by its caller.
async fn read<T, F, Fut>(mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        match tokio::time::timeout(CALL_TIMEOUT, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let e = map_err(e);
                attempts += 1;
                if !matches!(e, StoreError::Unavailable(_)) || attempts >= 5 {
                    return Err(e);
                }
                tracing::debug!(error = %e, "etcd read failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "etcd did not answer within {CALL_TIMEOUT:?}"
                )))
            }
        }
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let resp = read(|| {
            let mut kv = self.kv.clone();
            async move { kv.get(key, None).await }
        })
        .await?;
        Ok(resp.kvs().first().map(versioned))
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let kv = self.kv.clone();
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut out = Vec::new();
        let mut revision = 0;
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                // Later pages read at the first page's revision: one
                // consistent view however long the listing.
                opts = opts.with_revision(revision);
            }
            let resp = read(|| {
                let (mut kv, from, opts) = (kv.clone(), from.clone(), opts.clone());
                async move { kv.get(from, Some(opts)).await }
            })
            .await?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            for item in resp.kvs() {
                let key = String::from_utf8(item.key().to_vec())
                    .map_err(|_| StoreError::Rejected(format!("non-UTF-8 key under {prefix}")))?;
                out.push((key, versioned(item)));
            }
            match (resp.more(), resp.kvs().last()) {
                (true, Some(last)) => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => {
                    return Ok(Listing {
                        revision,
                        items: out,
                    })
                }
            }
        }
    }

    async fn commit(&self, txn: Txn) -> Result<bool, StoreError> {
        let mut kv = self.kv.clone();
        let compares: Vec<Compare> = txn
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Absent(k) => Compare::version(k.as_str(), CompareOp::Equal, 0),
                Condition::Revision(k, r) => {
                    Compare::mod_revision(k.as_str(), CompareOp::Equal, *r)
                }
            })
            .collect();
        let mut ops: Vec<TxnOp> = txn
            .puts
            .into_iter()
            .map(|p| {
                let opts = (p.lease != 0).then(|| PutOptions::new().with_lease(p.lease));
                TxnOp::put(p.key, p.value, opts)
            })
            .collect();
        ops.extend(txn.deletes.into_iter().map(|k| TxnOp::delete(k, None)));
        let t = etcd_client::Txn::new().when(compares).and_then(ops);
        let resp = bounded(kv.txn(t)).await?;
        Ok(resp.succeeded())
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let mut lease = self.lease.clone();
        let secs = ttl.as_secs().max(1) as i64;
        Ok(bounded(lease.grant(secs, None)).await?.id())
    }

    async fn keep_alive(&self, id: LeaseId) -> Result<bool, StoreError> {
        let mut lease = self.lease.clone();
        let attempt = async {
            let (mut keeper, mut stream) = bounded(lease.keep_alive(id)).await?;
            bounded(keeper.keep_alive()).await?;
            match bounded(stream.message()).await? {
                Some(resp) => Ok(resp.ttl() > 0),
                None => Err(StoreError::Unavailable(
                    "lease keep-alive stream closed".into(),
                )),
            }
        };
        match attempt.await {
            // etcd answers an expired lease with an error, not a zero TTL.
            Err(StoreError::Unavailable(m) | StoreError::Rejected(m))
                if m.contains("lease not found") =>
            {
                Ok(false)
            }
            other => other,
        }
    }

    async fn revoke_lease(&self, id: LeaseId) -> Result<(), StoreError> {
        let mut lease = self.lease.clone();
        match bounded(lease.revoke(id)).await {
            Ok(_) => Ok(()),
            // Already expired: its keys are gone, which is what was asked.
            Err(StoreError::Rejected(m)) if m.contains("not found") => Ok(()),
            Err(StoreError::Unavailable(m)) if m.contains("lease not found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        let mut client = self.watch.clone();
        let mut opts = WatchOptions::new().with_prefix();
        if from_revision > 0 {
            opts = opts.with_start_revision(from_revision);
        }
        let mut stream = bounded(client.watch(prefix, Some(opts))).await?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = tx.closed() => return,
                    m = stream.message() => m,
                };
                match msg {
                    Ok(Some(resp)) => {
                        if resp.compact_revision() > 0 {
                            let _ = tx
                                .send(Err(StoreError::Compacted {
                                    requested: from_revision,
                                    compacted: resp.compact_revision(),
                                }))
                                .await;
                            return;
                        }
                        if resp.canceled() {
                            let _ = tx
                                .send(Err(StoreError::Unavailable(format!(
                                    "watch cancelled: {}",
                                    resp.cancel_reason()
                                ))))
                                .await;
                            return;
                        }
                        for e in resp.events() {
                            let Some(kv) = e.kv() else { continue };
                            let key = String::from_utf8_lossy(kv.key()).into_owned();
                            let event = match e.event_type() {
                                EventType::Put => Event::Put {
                                    key,
                                    value: kv.value().to_vec(),
                                    mod_revision: kv.mod_revision(),
                                },
                                EventType::Delete => Event::Delete {
                                    key,
                                    mod_revision: kv.mod_revision(),
                                },
                            };
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => {
                        let _ = tx
                            .send(Err(StoreError::Unavailable("watch stream ended".into())))
                            .await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(map_err(e))).await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let mut kv = self.kv.clone();
        match bounded(kv.compact(revision, None)).await {
            Ok(_) => Ok(()),
            // Compacting to where it already is, or before, changes nothing.
            Err(StoreError::Rejected(m)) if m.contains("compacted") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn versioned(kv: &etcd_client::KeyValue) -> Versioned {
    Versioned {
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
        lease: kv.lease(),
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("ab"), b"ac".to_vec());
    }
}
