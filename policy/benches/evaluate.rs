#![allow(clippy::unwrap_used)]
//! Policy evaluation benchmark: every built-in rule over N synthetic
//! canonical resources (a mix of security groups, buckets, roles and
//! users, some of them failing rules), on one thread.
//!
//! `cargo bench -p holdfast-policy --bench evaluate [-- N...]` (default
//! 1000 and 10000). Reports loading the built-in rules and the best of 5
//! evaluations. Building the resources is not timed.

use std::time::{Duration, Instant};

use holdfast_policy::{Policies, Resource};
use serde_json::json;

fn resource(i: usize) -> Resource {
    let (t, attributes) = match i % 4 {
        0 => (
            "aws.ec2.security_group",
            json!({"group_id": format!("sg-{i}"), "name": format!("g{i}"), "description": "d", "vpc_id": "vpc-1", "tags": {},
                   "ingress": {format!("tcp:{}-{}:0.0.0.0/0", 8000 + i % 50, 8000 + i % 50): {"protocol": "tcp", "from_port": 8000 + i % 50, "to_port": 8000 + i % 50, "source": {"kind": "ipv4", "cidr": "0.0.0.0/0"}, "description": null}},
                   "egress": {"all:*:0.0.0.0/0": {"protocol": "all", "from_port": null, "to_port": null, "source": {"kind": "ipv4", "cidr": "0.0.0.0/0"}, "description": null}}}),
        ),
        1 => (
            "aws.s3.bucket",
            json!({"name": format!("b{i}"), "encryption": if i % 8 == 1 { json!("none") } else { json!({"algorithm": "AES256", "kms_key_id": null, "bucket_key": false}) },
                   "versioning": {"status": "enabled", "mfa_delete": false}, "public_access_block": "none", "policy": "none", "ownership_controls": "BucketOwnerEnforced",
                   "acl": {"owner": "o", "grants": {}}, "logging": "none", "tags": {}}),
        ),
        2 => (
            "aws.iam.role",
            json!({"name": format!("r{i}"), "path": "/", "description": "", "max_session_duration": 3600,
                   "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]},
                   "inline_policies": {"p": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}},
                   "attached_policies": {}, "permissions_boundary": "none", "tags": {}}),
        ),
        _ => (
            "aws.iam.user",
            json!({"name": format!("u{i}"), "path": "/", "inline_policies": {}, "attached_policies": {}, "groups": {"devs": true},
                   "console_login": i.is_multiple_of(3), "access_keys": {"AKIA": {"status": "Active", "created": "2026-01-01T00:00:00Z"}}, "mfa_devices": {}, "permissions_boundary": "none", "tags": {}}),
        ),
    };
    Resource {
        resource_type: t.into(),
        id: format!("r{i}"),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        attributes,
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000]
    } else {
        sizes
    };
    let start = Instant::now();
    let mut p = Policies::builtin().unwrap();
    println!(
        "loaded {} built-in rules in {:.1} ms",
        p.rules().len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    for n in sizes {
        let resources: Vec<Resource> = (0..n).map(resource).collect();
        let mut best = Duration::MAX;
        let mut findings = 0;
        for _ in 0..5 {
            let t = Instant::now();
            findings = p.evaluate(&resources).unwrap().len();
            best = best.min(t.elapsed());
        }
        println!(
            "{n:>7} resources: {:>8.1} ms (best of 5), {findings} findings",
            best.as_secs_f64() * 1e3
        );
    }
}
