#![allow(clippy::unwrap_used)]
//! One conformance suite, two stores: etcd (a real server) and the embedded
//! single-file store.

use std::sync::Arc;
use std::time::Duration;

use holdfast_controller::store::{
    conformance, embedded::EmbeddedStore, etcd::EtcdStore, Store, Txn,
};
use holdfast_tests::Etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_the_conformance_suite() {
    let etcd = Etcd::start().expect("etcd");
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.url), Duration::from_secs(10))
        .await
        .expect("connect");
    conformance::run_all(Arc::new(store), "/conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("holdfast.redb"))
        .await
        .expect("open");
    conformance::run_all(Arc::new(store), "/conformance").await;
}

async fn open_retrying(path: &std::path::Path) -> EmbeddedStore {
    // The previous handle's background task may hold the file a moment longer.
    for _ in 0..50 {
        if let Ok(s) = EmbeddedStore::open(path).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    EmbeddedStore::open(path).await.expect("reopen")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_keeps_data_across_reopen_but_not_leased_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/holdfast.redb");
    let revision = {
        let store = EmbeddedStore::open(&path).await.expect("open");
        let lease = store.grant_lease(Duration::from_secs(60)).await.unwrap();
        assert!(store
            .commit(
                Txn::new()
                    .put("/k/durable", b"kept".to_vec())
                    .put_with_lease("/k/owned", b"mine".to_vec(), lease)
            )
            .await
            .unwrap());
        store.get("/k/durable").await.unwrap().unwrap().mod_revision
    };
    let store = open_retrying(&path).await;
    let kept = store
        .get("/k/durable")
        .await
        .unwrap()
        .expect("durable key survives");
    assert_eq!(kept.value, b"kept");
    assert_eq!(kept.mod_revision, revision);
    assert_eq!(
        store.get("/k/owned").await.unwrap(),
        None,
        "a previous process's lease does not survive it"
    );
    assert!(store
        .commit(Txn::new().put("/k/next", b"1".to_vec()))
        .await
        .unwrap());
    assert!(
        store.get("/k/next").await.unwrap().unwrap().mod_revision > revision,
        "revisions keep growing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_reports_an_unusable_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = EmbeddedStore::open(&file.join("store.redb"))
        .await
        .err()
        .expect("a file is not a directory");
    assert!(err.to_string().contains("file"), "{err}");
}
