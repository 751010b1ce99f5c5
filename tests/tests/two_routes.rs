//! Same configuration, two routes: real Terraform plans judged offline by
//! `holdfast scan`, and the live emulator state made from the same
//! configuration (by the AWS SDK, as `terraform apply` would make it)
//! judged by the controller's compliance scan. Every verdict the plan can
//! give (everything not unknown until apply) must be the live verdict.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, Tag, TagSpecification};
use holdfast_tests::*;
use serde_json::Value;

const ENV: &str = "live";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Fail,
    Pass,
}

/// The plan route: (rule, resource name) → verdict, and the rules each
/// resource type is judged by.
fn plan_verdicts(plan: &str, names: &BTreeMap<&str, &str>) -> BTreeMap<(String, String), Verdict> {
    let path = workspace_root().join("tests/fixtures/tfplan").join(plan);
    let out = cli(
        "http://127.0.0.1:1",
        &[
            "scan",
            path.to_str().unwrap(),
            "--format",
            "json",
            "--fail-on",
            "critical",
        ],
    );
    assert!(out.code == 0 || out.code == 1, "{plan}: {}", out.stderr);
    let v = out.json();
    let name_of = |address: &str| -> Option<String> {
        names.get(address).map(|n| n.to_string()).or_else(|| {
            v["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["address"] == address)
                .and_then(|r| r["name"].as_str())
                .filter(|n| *n != address)
                .map(String::from)
        })
    };
    let mut out = BTreeMap::new();
    for f in v["findings"].as_array().unwrap() {
        if let Some(n) = name_of(f["address"].as_str().unwrap()) {
            out.insert((f["rule"].as_str().unwrap().to_string(), n), Verdict::Fail);
        }
    }
    for p in v["passed"].as_array().unwrap() {
        if let Some(n) = name_of(p["address"].as_str().unwrap()) {
            out.insert((p["rule"].as_str().unwrap().to_string(), n), Verdict::Pass);
        }
    }
    out
}

fn world_all() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .from_port(0)
        .to_port(65535)
        .ip_ranges(
            IpRange::builder()
                .cidr_ip("0.0.0.0/0")
                .description("Allow all inbound traffic")
                .build(),
        )
        .build()
}

async fn group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
    rule: IpPermission,
    tags: &[(&str, &str)],
) -> String {
    let mut req = ec2
        .create_security_group()
        .group_name(name)
        .description("Managed by Terraform")
        .vpc_id(vpc);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        req = req.tag_specifications(spec.build());
    }
    let id = req.send().await.unwrap().group_id().unwrap().to_string();
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(rule)
        .send()
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_and_the_live_state_made_from_it_get_the_same_verdicts() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let s3 = s3_client(&stack.moto.url, REGION);
    let iam = iam_client(&stack.moto.url);

    // checkov-tf1.9: three module instances of an open-world group.
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for n in ["awful_example", "bad_example", "terrible_example"] {
        let id = group(&ec2, &vpc, n, world_all(), &[]).await;
        names.insert(id, n.to_string());
    }
    // trivy-tf1.0: a group open on 80, and a versioned, logged bucket
    // encrypted by a split SSE resource.
    let web = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(80)
        .to_port(80)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    let id = group(&ec2, &vpc, "sg", web, &[("Name", "blah")]).await;
    names.insert(id, "sg".to_string());
    s3.create_bucket()
        .bucket("tfsec-plan-testing")
        .send()
        .await
        .unwrap();
    // The log target (a data source in the plan, not judged there).
    s3.create_bucket()
        .bucket("iac-tfsec-dev")
        .acl(aws_sdk_s3::types::BucketCannedAcl::from(
            "log-delivery-write",
        ))
        .send()
        .await
        .unwrap();
    s3.put_bucket_versioning()
        .bucket("tfsec-plan-testing")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .mfa_delete(aws_sdk_s3::types::MfaDelete::Disabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_logging()
        .bucket("tfsec-plan-testing")
        .bucket_logging_status(
            aws_sdk_s3::types::BucketLoggingStatus::builder()
                .logging_enabled(
                    aws_sdk_s3::types::LoggingEnabled::builder()
                        .target_bucket("iac-tfsec-dev")
                        .target_prefix("")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_encryption()
        .bucket("tfsec-plan-testing")
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                                .build()
                                .unwrap(),
                        )
                        .bucket_key_enabled(true)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // checkov-tf1.1: a managed policy allowing s3:*, a Lambda role with an
    // inline iam:* policy, a user with an inline iam:* policy. The role's
    // name is generated by Terraform (unknown in the plan): it is
    // `lambda-example` here.
    iam.create_policy()
        .policy_name("policy_pass")
        .path("/")
        .policy_document(r#"{"Statement":[{"Action":"s3:*","Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("lambda-example")
        .path("/")
        .assume_role_policy_document(r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"}}],"Version":"2012-10-17"}"#)
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    let iam_star = r#"{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name("lambda-example")
        .policy_name("example")
        .policy_document(iam_star)
        .send()
        .await
        .unwrap();
    iam.create_user()
        .user_name("example")
        .path("/")
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("example")
        .policy_name("example")
        .policy_document(iam_star)
        .send()
        .await
        .unwrap();

    // The live route.
    stack.create_env(ENV);
    let scan = stack.json(&["compliance", "scan", ENV]);
    let rules: Vec<Value> = cli_json(&stack.controller.url, &["policy", "list"])
        .as_array()
        .cloned()
        .unwrap();
    let mut live: BTreeMap<(String, String), Verdict> = BTreeMap::new();
    let mut live_resources: BTreeSet<(String, String)> = BTreeSet::new();
    for part in scan["snapshot"].as_array().unwrap() {
        assert!(part["resources"].as_u64().is_some(), "{part}");
    }
    let failing: BTreeSet<(String, String)> = scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let id = f["resource"].as_str().unwrap();
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_string());
            live_resources.insert((
                f["resource_type"].as_str().unwrap().to_string(),
                name.clone(),
            ));
            (f["rule"].as_str().unwrap().to_string(), name)
        })
        .collect();

    // The plan route, with the names the plan cannot know.
    let generated: BTreeMap<&str, &str> = [("aws_iam_role.example", "lambda-example")].into();
    let mut planned: BTreeMap<(String, String), Verdict> = BTreeMap::new();
    for plan in [
        "checkov-tf1.9-sg-open-world-module-for-each.json",
        "trivy-tf1.0-s3-sse-split-and-sg.json",
        "checkov-tf1.1-iam-inline-and-managed-policies.json",
    ] {
        planned.extend(plan_verdicts(plan, &generated));
    }
    // Live verdicts for exactly the pairs the plan judged.
    for (rule, name) in planned.keys() {
        let applies = rules.iter().any(|r| r["id"] == rule.as_str());
        assert!(applies, "{rule}");
        live.insert(
            (rule.clone(), name.clone()),
            if failing.contains(&(rule.clone(), name.clone())) {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
        );
    }
    let differ: Vec<_> = planned
        .iter()
        .filter(|(k, v)| live.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: plan {v:?}, live {:?}", live.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "the routes disagree:\n{}",
        differ.join("\n")
    );

    // The comparison is not vacuous: every modelled type, failures and
    // passes, on every resource the plans create.
    let judged_names: BTreeSet<&str> = planned.keys().map(|(_, n)| n.as_str()).collect();
    for n in [
        "awful_example",
        "bad_example",
        "terrible_example",
        "sg",
        "tfsec-plan-testing",
        "policy_pass",
        "lambda-example",
        "example",
    ] {
        assert!(
            judged_names.contains(n),
            "{n} was not compared: {judged_names:?}"
        );
    }
    let fails = planned.values().filter(|v| **v == Verdict::Fail).count();
    let passes = planned.values().filter(|v| **v == Verdict::Pass).count();
    assert!(fails >= 20 && passes >= 20, "{fails} fail, {passes} pass");
    for (rule, name) in [
        ("SG-07", "bad_example"),
        ("SG-10", "sg"),
        ("S3-02", "tfsec-plan-testing"),
        ("IAM-12", "policy_pass"),
        ("IAM-03", "example"),
    ] {
        assert_eq!(
            planned[&(rule.to_string(), name.to_string())],
            Verdict::Fail,
            "{rule} {name}"
        );
    }
    for (rule, name) in [
        ("SG-01", "sg"),
        ("S3-01", "tfsec-plan-testing"),
        ("S3-06", "tfsec-plan-testing"),
        ("S3-08", "tfsec-plan-testing"),
    ] {
        assert_eq!(
            planned[&(rule.to_string(), name.to_string())],
            Verdict::Pass,
            "{rule} {name}"
        );
    }
    assert!(!live_resources.is_empty());
}
