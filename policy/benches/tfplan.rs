#![allow(clippy::unwrap_used)]
//! Plan scanning benchmark: a synthetic `terraform show -json` plan with N
//! resource changes (security groups with inline rules, buckets with split
//! encryption and public-access-block resources joined by reference, roles
//! with split inline policies, users), read and judged by every built-in
//! rule on one thread — what `holdfast scan` does after loading the rules.
//!
//! `cargo bench -p holdfast-policy --bench tfplan [-- N...]` (default 1000
//! and 10000). Reports loading the rules once, and the best of 5 of
//! parse + join + judge. Generating the plan text is not timed. With
//! `HOLDFAST_BENCH_PLANS=DIR` the plans are also written to
//! `DIR/plan-N.json`, to time `holdfast scan` on them end to end.

use std::time::{Duration, Instant};

use holdfast_policy::{tfplan, Policies};
use serde_json::{json, Value};

fn change(address: &str, ty: &str, name: &str, after: Value, unknown: Value) -> Value {
    json!({"address": address, "mode": "managed", "type": ty, "name": name,
           "provider_name": "registry.terraform.io/hashicorp/aws",
           "change": {"actions": ["create"], "before": null, "after": after, "after_unknown": unknown}})
}

fn plan(n: usize) -> String {
    let mut changes = Vec::new();
    let mut config = Vec::new();
    let mut i = 0;
    while changes.len() < n {
        match i % 4 {
            0 => changes.push(change(
                &format!("aws_security_group.g{i}"),
                "aws_security_group",
                &format!("g{i}"),
                json!({"name": format!("g{i}"), "description": "d", "tags": null,
                       "ingress": [{"protocol": "tcp", "from_port": 8000 + i % 50, "to_port": 8000 + i % 50, "cidr_blocks": ["0.0.0.0/0"],
                                    "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": [], "self": false, "description": ""}],
                       "egress": [{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"],
                                   "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": [], "self": false, "description": ""}]}),
                json!({"id": true, "arn": true}),
            )),
            1 => {
                let b = format!("b{i}");
                changes.push(change(
                    &format!("aws_s3_bucket.{b}"),
                    "aws_s3_bucket",
                    &b,
                    json!({"bucket": format!("bucket-{i}"), "tags": null}),
                    json!({"acl": true, "policy": true, "server_side_encryption_configuration": true, "versioning": true, "logging": true, "id": true}),
                ));
                changes.push(change(
                    &format!("aws_s3_bucket_server_side_encryption_configuration.{b}"),
                    "aws_s3_bucket_server_side_encryption_configuration",
                    &b,
                    json!({"rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "aws:kms", "kms_master_key_id": ""}], "bucket_key_enabled": true}]}),
                    json!({"bucket": true, "id": true}),
                ));
                changes.push(change(
                    &format!("aws_s3_bucket_public_access_block.{b}"),
                    "aws_s3_bucket_public_access_block",
                    &b,
                    json!({"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": i % 8 != 1, "restrict_public_buckets": true}),
                    json!({"bucket": true, "id": true}),
                ));
                for t in ["aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_public_access_block"] {
                    config.push(json!({"address": format!("{t}.{b}"), "type": t, "name": b,
                        "expressions": {"bucket": {"references": [format!("aws_s3_bucket.{b}.id"), format!("aws_s3_bucket.{b}")]}}}));
                }
            }
            2 => {
                let r = format!("r{i}");
                changes.push(change(
                    &format!("aws_iam_role.{r}"),
                    "aws_iam_role",
                    &r,
                    json!({"name": r, "path": "/", "max_session_duration": 3600, "permissions_boundary": null, "description": null, "tags": null,
                           "assume_role_policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"}),
                    json!({"arn": true, "id": true, "inline_policy": true, "managed_policy_arns": true}),
                ));
                changes.push(change(
                    &format!("aws_iam_role_policy.{r}"),
                    "aws_iam_role_policy",
                    &r,
                    json!({"name": "p", "policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}"}),
                    json!({"role": true, "id": true}),
                ));
                config.push(json!({"address": format!("aws_iam_role_policy.{r}"), "type": "aws_iam_role_policy", "name": r,
                    "expressions": {"role": {"references": [format!("aws_iam_role.{r}.id"), format!("aws_iam_role.{r}")]}}}));
            }
            _ => changes.push(change(
                &format!("aws_iam_user.u{i}"),
                "aws_iam_user",
                &format!("u{i}"),
                json!({"name": format!("u{i}"), "path": "/", "permissions_boundary": null, "tags": null}),
                json!({"arn": true, "id": true}),
            )),
        }
        i += 1;
    }
    changes.truncate(n);
    json!({"format_version": "1.2", "terraform_version": "1.9.5",
           "resource_changes": changes,
           "configuration": {"root_module": {"resources": config}}})
    .to_string()
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
    let started = Instant::now();
    let mut policies = Policies::builtin().unwrap();
    println!(
        "load {} built-in rules: {:.1} ms",
        policies.rules().len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    for n in sizes {
        let text = plan(n);
        if let Ok(dir) = std::env::var("HOLDFAST_BENCH_PLANS") {
            std::fs::write(format!("{dir}/plan-{n}.json"), &text).unwrap();
        }
        let mut best = Duration::MAX;
        let mut last = None;
        for _ in 0..5 {
            let t = Instant::now();
            let p = tfplan::parse(&text).unwrap();
            let v = tfplan::judge(&mut policies, &p).unwrap();
            best = best.min(t.elapsed());
            last = Some((
                p.resources.len(),
                v.findings.len(),
                v.undecided.len(),
                p.notes.len(),
            ));
        }
        let (resources, findings, unknown, notes) = last.unwrap();
        assert_eq!(notes, 0, "every split resource joins");
        println!(
            "{n} resource changes ({} KiB of plan, {resources} judged resources): best of 5 {:.1} ms ({findings} findings, {unknown} unknown)",
            text.len() / 1024,
            best.as_secs_f64() * 1000.0
        );
    }
}
