//! The store conformance suite: the behaviour holdfast relies on, checked
//! against every [`Store`] implementation (see
//! `tests/tests/store_conformance.rs`). Each check works under its own key
//! prefix, so all of them can share one store. A failed check panics with
//! the check's name.

// A test suite: a failed step panics with its message, like any test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Condition, Event, Store, StoreError, Txn};

type Check = (
    &'static str,
    fn(Arc<dyn Store>, String) -> futures::future::BoxFuture<'static, ()>,
);

/// Every check, by name.
pub fn checks() -> Vec<Check> {
    vec![
        ("get_put_and_revisions", |s, p| {
            Box::pin(get_put_and_revisions(s, p))
        }),
        ("create_only_is_atomic", |s, p| {
            Box::pin(create_only_is_atomic(s, p))
        }),
        ("compare_and_swap", |s, p| Box::pin(compare_and_swap(s, p))),
        ("list_is_ordered_complete_and_prefix_bound", |s, p| {
            Box::pin(list_is_ordered_complete(s, p))
        }),
        ("deletes", |s, p| Box::pin(deletes(s, p))),
        ("leases_expire_renew_and_revoke", |s, p| {
            Box::pin(leases(s, p))
        }),
        ("lease_fencing", |s, p| Box::pin(lease_fencing(s, p))),
        ("watch_sees_changes_in_order_and_resumes", |s, p| {
            Box::pin(watch_in_order(s, p))
        }),
        ("watch_from_compacted_revision_fails", |s, p| {
            Box::pin(watch_compacted(s, p))
        }),
    ]
}

/// Runs every check against `store`, each under `root/<check>/`.
pub async fn run_all(store: Arc<dyn Store>, root: &str) {
    for (name, check) in checks() {
        eprintln!("store conformance: {name}");
        let started = Instant::now();
        check(store.clone(), format!("{root}/{name}/")).await;
        eprintln!("store conformance: {name} ok in {:?}", started.elapsed());
    }
}

async fn get_put_and_revisions(s: Arc<dyn Store>, p: String) {
    let k = format!("{p}a");
    assert_eq!(s.get(&k).await.unwrap(), None, "missing key reads as None");
    assert!(s.commit(Txn::new().put(&k, b"1".to_vec())).await.unwrap());
    let v1 = s.get(&k).await.unwrap().expect("written key");
    assert_eq!(v1.value, b"1");
    assert!(v1.mod_revision > 0);
    assert_eq!(v1.create_revision, v1.mod_revision);
    assert!(s.commit(Txn::new().put(&k, b"2".to_vec())).await.unwrap());
    let v2 = s.get(&k).await.unwrap().expect("written key");
    assert_eq!(v2.value, b"2");
    assert!(
        v2.mod_revision > v1.mod_revision,
        "a write moves the revision on"
    );
    assert_eq!(
        v2.create_revision, v1.create_revision,
        "an update keeps the create revision"
    );
    assert_eq!(v2.lease, 0);
}

async fn create_only_is_atomic(s: Arc<dyn Store>, p: String) {
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let txn = || {
        Txn::new()
            .when(Condition::Absent(a.clone()))
            .put(&a, b"x".to_vec())
            .put(&b, b"y".to_vec())
    };
    assert!(s.commit(txn()).await.unwrap(), "first create applies");
    assert!(s.commit(Txn::new().delete(&b)).await.unwrap());
    assert!(!s.commit(txn()).await.unwrap(), "second create is refused");
    assert_eq!(
        s.get(&b).await.unwrap(),
        None,
        "a refused transaction writes nothing"
    );
}

async fn compare_and_swap(s: Arc<dyn Store>, p: String) {
    let k = format!("{p}ptr");
    assert!(s.commit(Txn::new().put(&k, b"1".to_vec())).await.unwrap());
    let rev = s.get(&k).await.unwrap().unwrap().mod_revision;
    assert!(s
        .commit(
            Txn::new()
                .when(Condition::Revision(k.clone(), rev))
                .put(&k, b"2".to_vec())
        )
        .await
        .unwrap());
    assert!(
        !s.commit(
            Txn::new()
                .when(Condition::Revision(k.clone(), rev))
                .put(&k, b"3".to_vec())
        )
        .await
        .unwrap(),
        "a stale revision is refused"
    );
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, b"2");
    assert!(
        !s.commit(
            Txn::new()
                .when(Condition::Revision(format!("{p}missing"), rev))
                .put(&k, b"4".to_vec())
        )
        .await
        .unwrap(),
        "a revision condition on a missing key is refused"
    );
}

async fn list_is_ordered_complete(s: Arc<dyn Store>, p: String) {
    // More keys than one etcd page (500), written in several transactions.
    let n = 1_205;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut t = Txn::new();
        for i in chunk {
            t = t.put(format!("{p}items/{i:05}"), i.to_string().into_bytes());
        }
        assert!(s.commit(t).await.unwrap());
    }
    assert!(s
        .commit(Txn::new().put(format!("{p}itemsX"), b"outside".to_vec()))
        .await
        .unwrap());
    let listing = s.list(&format!("{p}items/")).await.unwrap();
    assert_eq!(
        listing.items.len(),
        n,
        "every key under the prefix, and only those"
    );
    for (i, (k, v)) in listing.items.iter().enumerate() {
        assert_eq!(k, &format!("{p}items/{i:05}"), "key order");
        assert_eq!(v.value, i.to_string().into_bytes());
    }
    let last_write = listing
        .items
        .iter()
        .map(|(_, v)| v.mod_revision)
        .max()
        .unwrap();
    assert!(
        listing.revision >= last_write,
        "the listing's revision covers what it read"
    );
    assert!(s
        .list(&format!("{p}nothing/"))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn deletes(s: Arc<dyn Store>, p: String) {
    let k = format!("{p}gone");
    assert!(s.commit(Txn::new().put(&k, b"1".to_vec())).await.unwrap());
    assert!(s.commit(Txn::new().delete(&k)).await.unwrap());
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert!(
        s.commit(Txn::new().delete(&k)).await.unwrap(),
        "deleting a missing key is not an error"
    );
    assert!(s
        .commit(
            Txn::new()
                .when(Condition::Absent(k.clone()))
                .put(&k, b"again".to_vec())
        )
        .await
        .unwrap());
}

async fn wait_gone(s: &Arc<dyn Store>, k: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while s.get(k).await.unwrap().is_some() {
        assert!(
            started.elapsed() < within,
            "{k} still present after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

async fn leases(s: Arc<dyn Store>, p: String) {
    let ttl = Duration::from_secs(2);
    // Expiry without keep-alive.
    let lease = s.grant_lease(ttl).await.unwrap();
    let k = format!("{p}expires");
    assert!(s
        .commit(Txn::new().put_with_lease(&k, b"1".to_vec(), lease))
        .await
        .unwrap());
    assert_eq!(s.get(&k).await.unwrap().unwrap().lease, lease);
    let gone_after = wait_gone(&s, &k, ttl * 4).await;
    assert!(
        gone_after + Duration::from_millis(500) >= ttl,
        "not before the TTL ({gone_after:?})"
    );
    assert!(
        !s.keep_alive(lease).await.unwrap(),
        "an expired lease cannot be renewed"
    );

    // Keep-alives keep the key past several TTLs.
    let lease = s.grant_lease(ttl).await.unwrap();
    let k = format!("{p}renewed");
    assert!(s
        .commit(Txn::new().put_with_lease(&k, b"1".to_vec(), lease))
        .await
        .unwrap());
    let until = Instant::now() + ttl * 2;
    while Instant::now() < until {
        assert!(s.keep_alive(lease).await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        s.get(&k).await.unwrap().is_some(),
        "a renewed lease keeps its keys"
    );

    // Revoke deletes at once.
    s.revoke_lease(lease).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), None);

    // A put on an unknown lease is refused.
    let r = s
        .commit(Txn::new().put_with_lease(format!("{p}bad"), b"1".to_vec(), 987_654_321))
        .await;
    assert!(r.is_err(), "unknown lease: {r:?}");
}

/// The decider pattern: writes conditioned on the ownership key it created
/// under its lease stop applying once that lease is gone, even if another
/// owner has taken the key since.
async fn lease_fencing(s: Arc<dyn Store>, p: String) {
    let owner = format!("{p}owner");
    let a = s.grant_lease(Duration::from_secs(2)).await.unwrap();
    assert!(s
        .commit(
            Txn::new()
                .when(Condition::Absent(owner.clone()))
                .put_with_lease(&owner, b"A".to_vec(), a)
        )
        .await
        .unwrap());
    let a_rev = s.get(&owner).await.unwrap().unwrap().mod_revision;
    let fenced = |v: &'static [u8], rev: i64| {
        Txn::new()
            .when(Condition::Revision(owner.clone(), rev))
            .put(format!("{p}decision"), v.to_vec())
    };
    assert!(
        s.commit(fenced(b"by A", a_rev)).await.unwrap(),
        "the owner writes"
    );
    s.revoke_lease(a).await.unwrap();
    assert!(
        !s.commit(fenced(b"late A", a_rev)).await.unwrap(),
        "no write after the lease is gone"
    );
    let b = s.grant_lease(Duration::from_secs(5)).await.unwrap();
    assert!(s
        .commit(
            Txn::new()
                .when(Condition::Absent(owner.clone()))
                .put_with_lease(&owner, b"B".to_vec(), b)
        )
        .await
        .unwrap());
    assert!(
        !s.commit(fenced(b"late A again", a_rev)).await.unwrap(),
        "no write once another owner holds it"
    );
    assert_eq!(
        s.get(&format!("{p}decision")).await.unwrap().unwrap().value,
        b"by A"
    );
    s.revoke_lease(b).await.unwrap();
}

async fn next_event(w: &mut super::WatchStream) -> Event {
    match tokio::time::timeout(Duration::from_secs(5), w.recv()).await {
        Ok(Some(Ok(e))) => e,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

async fn watch_in_order(s: Arc<dyn Store>, p: String) {
    let mut w = s.watch(&p, 0).await.unwrap();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    assert!(s.commit(Txn::new().put(&a, b"1".to_vec())).await.unwrap());
    assert!(s
        .commit(Txn::new().put(format!("{p}X").replace(&p, "/elsewhere/"), b"no".to_vec()))
        .await
        .unwrap());
    assert!(s.commit(Txn::new().put(&b, b"2".to_vec())).await.unwrap());
    assert!(s.commit(Txn::new().delete(&a)).await.unwrap());
    let e1 = next_event(&mut w).await;
    let e2 = next_event(&mut w).await;
    let e3 = next_event(&mut w).await;
    assert!(
        matches!(&e1, Event::Put { key, value, .. } if *key == a && value == b"1"),
        "{e1:?}"
    );
    assert!(matches!(&e2, Event::Put { key, .. } if *key == b), "{e2:?}");
    assert!(
        matches!(&e3, Event::Delete { key, .. } if *key == a),
        "{e3:?}"
    );
    assert!(e1.revision() < e2.revision() && e2.revision() < e3.revision());

    // Resume from a past revision: the same events again, in order.
    let mut again = s.watch(&p, e2.revision()).await.unwrap();
    assert_eq!(next_event(&mut again).await, e2);
    assert_eq!(next_event(&mut again).await, e3);

    // A listing's revision + 1 follows on without a gap.
    let listing = s.list(&p).await.unwrap();
    let mut follow = s.watch(&p, listing.revision + 1).await.unwrap();
    assert!(s.commit(Txn::new().put(&a, b"3".to_vec())).await.unwrap());
    let e4 = next_event(&mut follow).await;
    assert!(
        matches!(&e4, Event::Put { key, value, .. } if *key == a && value == b"3"),
        "{e4:?}"
    );
}

async fn watch_compacted(s: Arc<dyn Store>, p: String) {
    let k = format!("{p}k");
    assert!(s.commit(Txn::new().put(&k, b"1".to_vec())).await.unwrap());
    let first = s.get(&k).await.unwrap().unwrap().mod_revision;
    assert!(s.commit(Txn::new().put(&k, b"2".to_vec())).await.unwrap());
    let latest = s.get(&k).await.unwrap().unwrap().mod_revision;
    s.compact(latest).await.unwrap();
    let result = match s.watch(&p, first).await {
        Err(e) => Err(e),
        Ok(mut w) => match tokio::time::timeout(Duration::from_secs(5), w.recv()).await {
            Ok(Some(Err(e))) => Err(e),
            other => Ok(format!("{other:?}")),
        },
    };
    assert!(
        matches!(result, Err(StoreError::Compacted { .. })),
        "watching compacted history: {result:?}"
    );
    // From the compaction point on, watching works.
    let mut w = s.watch(&p, latest).await.unwrap();
    assert!(matches!(next_event(&mut w).await, Event::Put { value, .. } if value == b"2"));
}
