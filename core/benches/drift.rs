#![allow(clippy::unwrap_used)]
//! Drift engine benchmark over synthetic canonical security groups.
//!
//! `cargo bench -p holdfast-core --bench drift [-- SIZE...]` (default sizes
//! 100000 and 1000000). For each size it diffs a baseline partition against
//! (a) an unchanged observation and (b) one with 1 % of the groups modified
//! (SSH opened), on one thread, and reports the best of 5 runs against the
//! targets: 1 M unchanged <= 100 ms, 1 M with 1 % modified <= 500 ms.
//! Building the synthetic data is not timed.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_core::sg::{Rule, SecurityGroup, Source};
use holdfast_core::{diff_partition, ObservedResource};

fn rule(port: i32, cidr: &str) -> Rule {
    Rule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        source: Source::Ipv4 { cidr: cidr.into() },
        description: None,
    }
}

fn group(i: usize) -> SecurityGroup {
    let mut ingress = BTreeMap::new();
    for r in [
        rule(443, "0.0.0.0/0"),
        rule(8000 + (i % 50) as i32, &format!("10.{}.0.0/16", i % 256)),
    ] {
        ingress.insert(r.key(), r);
    }
    let all = Rule {
        protocol: "all".into(),
        from_port: None,
        to_port: None,
        source: Source::Ipv4 {
            cidr: "0.0.0.0/0".into(),
        },
        description: None,
    };
    let mut egress = BTreeMap::new();
    egress.insert(all.key(), all);
    SecurityGroup {
        group_id: format!("sg-{i:017x}"),
        name: format!("group-{i}"),
        description: "synthetic".into(),
        vpc_id: Some(format!("vpc-{:08x}", i % 1000)),
        tags: BTreeMap::from([("team".to_string(), format!("t{}", i % 20))]),
        ingress,
        egress,
    }
}

fn best_of<F: FnMut() -> usize>(runs: usize, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = black_box(f());
        best = best.min(t.elapsed());
    }
    (best, n)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "{:>10}  {:>10}  {:>8}  {:>12}  {:>10}",
        "resources", "scenario", "drifts", "best of 5", "target"
    );
    for n in sizes {
        let built = Instant::now();
        let mut baseline: Vec<ObservedResource> = (0..n)
            .map(|i| {
                let g = group(i);
                ObservedResource::new(g.group_id.clone(), g.to_value())
            })
            .collect();
        holdfast_core::resource::sort_by_id(&mut baseline).expect("unique ids");
        // A separate observation: own ids and entries, same attribute bodies.
        let unchanged: Vec<ObservedResource> = baseline
            .iter()
            .map(|r| ObservedResource {
                id: r.id.clone(),
                hash: r.hash,
                attributes: Arc::clone(&r.attributes),
            })
            .collect();
        let modified: Vec<ObservedResource> = baseline
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i % 100 == 0 {
                    let mut g = SecurityGroup::from_value(&r.attributes).expect("canonical");
                    let ssh = rule(22, "0.0.0.0/0");
                    g.ingress.insert(ssh.key(), ssh);
                    ObservedResource::new(r.id.clone(), g.to_value())
                } else {
                    ObservedResource {
                        id: r.id.clone(),
                        hash: r.hash,
                        attributes: Arc::clone(&r.attributes),
                    }
                }
            })
            .collect();
        eprintln!("built {n} synthetic groups in {:.1?}", built.elapsed());

        let scale = n as f64 / 1_000_000.0;
        for (name, observed, target_ms) in [
            ("unchanged", &unchanged, 100.0),
            ("1% modified", &modified, 500.0),
        ] {
            let (t, drifts) = best_of(5, || diff_partition(&baseline, observed).len());
            let target = Duration::from_secs_f64(target_ms * scale / 1000.0);
            println!(
                "{n:>10}  {name:>10}  {drifts:>8}  {:>12}  {:>10}  {}",
                format!("{:.1?}", t),
                format!("{:.1?}", target),
                if t <= target { "ok" } else { "OVER TARGET" }
            );
        }
    }
}
