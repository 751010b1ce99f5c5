//! Collection: every requested (region, type) partition, concurrently, each
//! sent as soon as it is done. A partition whose listing failed is sent as
//! failed with the error and no resources — never as a partial list.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::stream::{FuturesUnordered, StreamExt};
use holdfast_core::{Hash, Scope};
use holdfast_proto::agent::v1::{Partition, Resource};

use crate::drivers::Drivers;

/// The (region, type) pairs to collect: the request's, or all of ours.
pub fn partitions(
    drivers: &Drivers,
    default_regions: &[String],
    regions: &[String],
    types: &[String],
) -> Vec<(String, String)> {
    let regions = if regions.is_empty() {
        default_regions
    } else {
        regions
    };
    let types: Vec<String> = if types.is_empty() {
        drivers.types()
    } else {
        types
            .iter()
            .filter(|t| drivers.get(t).is_some())
            .cloned()
            .collect()
    };
    let mut out = Vec::new();
    for t in types {
        match holdfast_core::type_info(&t).map(|i| i.scope) {
            Some(Scope::Global) => out.push(("global".to_string(), t)),
            _ => out.extend(regions.iter().map(|r| (r.clone(), t.clone()))),
        }
    }
    out
}

/// Collects one partition.
pub async fn collect_partition(
    drivers: &Drivers,
    account: &str,
    collection_id: &str,
    region: &str,
    resource_type: &str,
) -> Partition {
    let started = std::time::Instant::now();
    let result = match drivers.get(resource_type) {
        Some(d) => d.collect(region).await.map_err(|e| e.to_string()),
        None => Err(format!("this agent has no driver for {resource_type}")),
    };
    let mut partition = Partition {
        collection_id: collection_id.to_string(),
        account_id: account.to_string(),
        region: region.to_string(),
        resource_type: resource_type.to_string(),
        complete: false,
        error: String::new(),
        resources: Vec::new(),
        collected_at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    match result {
        Ok(resources) => {
            partition.complete = true;
            partition.resources = resources
                .into_iter()
                .map(|(id, attrs)| Resource {
                    id,
                    hash: Hash::of(&attrs).0.to_vec(),
                    attributes_json: holdfast_core::canonical_bytes(&attrs),
                })
                .collect();
            tracing::debug!(
                region,
                resource_type,
                resources = partition.resources.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "partition collected"
            );
        }
        Err(e) => {
            tracing::warn!(region, resource_type, error = %e, "partition collection failed");
            partition.error = e;
        }
    }
    partition
}

/// Collects the given partitions concurrently and hands each to `send` as
/// soon as it is ready.
pub async fn collect_all<F, Fut>(
    drivers: &Drivers,
    account: &str,
    collection_id: &str,
    parts: Vec<(String, String)>,
    mut send: F,
) where
    F: FnMut(Partition) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut running: FuturesUnordered<_> = parts
        .iter()
        .map(|(r, t)| collect_partition(drivers, account, collection_id, r, t))
        .collect();
    while let Some(p) = running.next().await {
        if !send(p).await {
            return;
        }
    }
}
