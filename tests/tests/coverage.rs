//! S3 buckets and IAM roles, policies and users, end to end: for every
//! attribute, an independent client (the AWS SDK in this test, not
//! holdfast's code) changes it after the baseline; exactly one drift
//! records the change; enforcement restores it with the matching call; the
//! independent client reads the restored value back. Also: several changes
//! at once, unenforceable transitions, two regions, and one throttled
//! service.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, BucketLoggingStatus, BucketVersioningStatus, Grant,
    Grantee, LoggingEnabled, ObjectOwnership, Owner, OwnershipControls, OwnershipControlsRule,
    Permission, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, Type, VersioningConfiguration,
};
use holdfast_tests::*;
use serde_json::{json, Value};

const ENV: &str = "prod";
const BUCKET: &str = "aws.s3.bucket";
const ROLE: &str = "aws.iam.role";
const POLICY: &str = "aws.iam.policy";
const USER: &str = "aws.iam.user";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

fn policy_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/{name}")
}

fn doc(statement: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

fn allow(action: &str) -> String {
    doc(json!({"Effect": "Allow", "Action": action, "Resource": "*"}))
}

fn trust(service: &str) -> String {
    doc(json!({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}))
}

fn tls_only(bucket: &str) -> String {
    doc(json!({
        "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    }))
}

/// The canonical form of a document, for comparing what the API returns.
fn canonical(text: &str) -> Value {
    holdfast_core::policy_doc::parse(text).unwrap()
}

struct World {
    stack: Stack,
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
}

impl World {
    fn start(interval: &str, regions: &[&str], proxied: bool) -> World {
        let stack = Stack::start_with(interval, regions, proxied).expect("stack");
        let s3 = s3_client(&stack.moto.url, REGION);
        let iam = iam_client(&stack.moto.url);
        World { stack, s3, iam }
    }

    fn proxy(&self) -> &FaultProxy {
        self.stack.proxy.as_ref().expect("started with a proxy")
    }

    fn json(&self, args: &[&str]) -> Value {
        self.stack.json(args)
    }

    fn env(&self, regions: &str) {
        self.json(&[
            "env",
            "create",
            ENV,
            "--account",
            ACCOUNT,
            "--regions",
            regions,
        ]);
        // These tests change one resource many times on purpose: the
        // flapping breaker (tests/tests/enforcement.rs) would rightly stop
        // enforcing it.
        self.json(&["env", "set", ENV, "--flap-threshold", "0"]);
        wait_for("the agent to connect", Duration::from_secs(30), || {
            self.json(&["env", "show", ENV])["agent_connected"]
                .as_bool()
                .unwrap_or(false)
                .then_some(())
        });
    }

    fn drift_of(&self, ty: &str, id: &str) -> Vec<Value> {
        self.stack
            .drift(ENV, true)
            .into_iter()
            .filter(|d| d["resource"]["type"] == ty && d["resource"]["id"] == id)
            .collect()
    }

    fn remediations(&self) -> Vec<Value> {
        self.stack.remediations(ENV)
    }

    /// Runs one mutation and checks what a user must see: exactly one new
    /// drift for the resource, with exactly the expected change paths,
    /// healed by one applied remediation making exactly the expected calls.
    /// Returns the drift.
    async fn drifts_and_heals(
        &self,
        ty: &str,
        id: &str,
        mutate: impl Future<Output = ()>,
        paths: &[&str],
        calls: &[&str],
    ) -> Value {
        let before: BTreeSet<String> = self
            .drift_of(ty, id)
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        mutate.await;
        let what = format!("{ty} {id} to drift at {paths:?} and heal");
        let drift = wait_for(&what, Duration::from_secs(60), || {
            let new: Vec<Value> = self
                .drift_of(ty, id)
                .into_iter()
                .filter(|d| !before.contains(d["id"].as_str().unwrap()))
                .collect();
            new.iter()
                .all(|d| d["status"] == "healed")
                .then_some(new)
                .filter(|n| !n.is_empty())
        });
        assert_eq!(drift.len(), 1, "exactly one drift for {id}: {drift:#?}");
        let drift = drift.into_iter().next().unwrap();
        let got: Vec<&str> = drift["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap())
            .collect();
        assert_eq!(got, paths, "change paths of {id}: {drift:#}");
        assert_eq!(drift["kind"], "modified");
        let rems: Vec<Value> = self
            .remediations()
            .into_iter()
            .filter(|r| r["drift_id"] == drift["id"])
            .collect();
        let applied: Vec<&Value> = rems.iter().filter(|r| r["status"] == "applied").collect();
        assert_eq!(
            applied.len(),
            1,
            "one applied remediation for {id}: {rems:#?}"
        );
        assert_eq!(applied[0]["actions"], json!(calls), "calls for {id}");
        drift
    }
}

fn change<'a>(drift: &'a Value, path: &str) -> &'a Value {
    drift["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("no change at {path}: {drift:#}"))
}

fn s3_tags(pairs: &[(&str, &str)]) -> Tagging {
    Tagging::builder()
        .set_tag_set(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap()
}

fn aes256() -> ServerSideEncryptionConfiguration {
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap()
}

fn all_blocked() -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

fn ownership(o: ObjectOwnership) -> OwnershipControls {
    OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(o)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Versioning status through the S3 REST API directly (the SDK itself
/// cannot decode the emulator's reply; see agent/src/compat.rs).
fn versioning(moto_port: u16, bucket: &str) -> String {
    let (code, body) = http_get(moto_port, &format!("/{bucket}?versioning")).unwrap();
    assert_eq!(code, 200, "{body}");
    body.split("<Status>")
        .nth(1)
        .and_then(|s| s.split("</Status>").next())
        .unwrap_or("")
        .to_string()
}

async fn set_versioning(s3: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap();
}

/// A bucket with every setting configured.
async fn hardened_bucket(s3: &aws_sdk_s3::Client, name: &str, logs: &str) {
    s3.create_bucket().bucket(name).send().await.unwrap();
    s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(aes256())
        .send()
        .await
        .unwrap();
    set_versioning(s3, name, BucketVersioningStatus::Enabled).await;
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(all_blocked())
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket(name)
        .policy(tls_only(name))
        .send()
        .await
        .unwrap();
    s3.put_bucket_ownership_controls()
        .bucket(name)
        .ownership_controls(ownership(ObjectOwnership::BucketOwnerPreferred))
        .send()
        .await
        .unwrap();
    s3.put_bucket_logging()
        .bucket(name)
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .logging_enabled(
                    LoggingEnabled::builder()
                        .target_bucket(logs)
                        .target_prefix(format!("{name}/"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket(name)
        .tagging(s3_tags(&[("team", "data")]))
        .send()
        .await
        .unwrap();
}

async fn log_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket().bucket(name).send().await.unwrap();
    s3.put_bucket_acl()
        .bucket(name)
        .acl(BucketCannedAcl::from("log-delivery-write"))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bucket_attribute_drifts_once_and_is_restored() {
    let w = World::start("1s", &[REGION], false);
    let (s3, b) = (&w.s3, "vault");
    log_bucket(s3, "audit-logs").await;
    hardened_bucket(s3, b, "audit-logs").await;
    w.env(REGION);
    w.json(&["baseline", "create", ENV]);
    w.json(&["enforcement", "set", ENV, "enforce"]);
    let owner = s3
        .get_bucket_acl()
        .bucket(b)
        .send()
        .await
        .unwrap()
        .owner()
        .unwrap()
        .id()
        .unwrap()
        .to_string();

    // Default encryption removed.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                s3.delete_bucket_encryption()
                    .bucket(b)
                    .send()
                    .await
                    .unwrap();
            },
            &["encryption"],
            &["PutBucketEncryption AES256"],
        )
        .await;
    assert_eq!(change(&d, "encryption")["old"]["algorithm"], "AES256");
    assert_eq!(change(&d, "encryption")["new"], "none");
    let enc = s3.get_bucket_encryption().bucket(b).send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm(),
        &ServerSideEncryption::Aes256
    );

    // Versioning suspended.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                set_versioning(s3, b, BucketVersioningStatus::Suspended).await;
            },
            &["versioning.status"],
            &["PutBucketVersioning Enabled"],
        )
        .await;
    assert_eq!(change(&d, "versioning.status")["old"], "enabled");
    assert_eq!(change(&d, "versioning.status")["new"], "suspended");
    assert_eq!(versioning(w.stack.moto.port, b), "Enabled");

    // Public access block removed.
    let d = w
        .drifts_and_heals(BUCKET, b, async {
            s3.delete_public_access_block().bucket(b).send().await.unwrap();
        }, &["public_access_block"], &["PutPublicAccessBlock BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true"])
        .await;
    assert_eq!(change(&d, "public_access_block")["new"], "none");
    let pab = s3.get_public_access_block().bucket(b).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );

    // Bucket policy deleted.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                s3.delete_bucket_policy().bucket(b).send().await.unwrap();
            },
            &["policy"],
            &["PutBucketPolicy (baseline document)"],
        )
        .await;
    assert_eq!(change(&d, "policy")["old"], canonical(&tls_only(b)));
    assert_eq!(change(&d, "policy")["new"], "none");
    let policy = s3.get_bucket_policy().bucket(b).send().await.unwrap();
    assert_eq!(canonical(policy.policy().unwrap()), canonical(&tls_only(b)));

    // Object ownership changed.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                s3.put_bucket_ownership_controls()
                    .bucket(b)
                    .ownership_controls(ownership(ObjectOwnership::ObjectWriter))
                    .send()
                    .await
                    .unwrap();
            },
            &["ownership_controls"],
            &["PutBucketOwnershipControls BucketOwnerPreferred"],
        )
        .await;
    assert_eq!(change(&d, "ownership_controls")["new"], "ObjectWriter");
    let own = s3
        .get_bucket_ownership_controls()
        .bucket(b)
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.ownership_controls().unwrap().rules()[0].object_ownership(),
        &ObjectOwnership::BucketOwnerPreferred
    );

    // An ACL grant added (the log-delivery group may read the bucket).
    let grant_key = "group:s3/LogDelivery:READ";
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                let owner_grant = Grant::builder()
                    .grantee(
                        Grantee::builder()
                            .r#type(Type::CanonicalUser)
                            .id(&owner)
                            .build()
                            .unwrap(),
                    )
                    .permission(Permission::FullControl)
                    .build();
                let read = Grant::builder()
                    .grantee(
                        Grantee::builder()
                            .r#type(Type::Group)
                            .uri(LOG_DELIVERY)
                            .build()
                            .unwrap(),
                    )
                    .permission(Permission::Read)
                    .build();
                s3.put_bucket_acl()
                    .bucket(b)
                    .access_control_policy(
                        AccessControlPolicy::builder()
                            .owner(Owner::builder().id(&owner).build())
                            .grants(owner_grant)
                            .grants(read)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            },
            &[&format!("acl.grants[\"{grant_key}\"]")],
            &[&format!("PutBucketAcl user:{owner}:FULL_CONTROL")],
        )
        .await;
    let c = change(&d, &format!("acl.grants[\"{grant_key}\"]"));
    assert_eq!(c["old"], Value::Null);
    assert_eq!(
        c["new"],
        json!({"grantee_type": "group", "grantee": LOG_DELIVERY, "permission": "READ"})
    );
    let acl = s3.get_bucket_acl().bucket(b).send().await.unwrap();
    let grantees: Vec<Option<&str>> = acl
        .grants()
        .iter()
        .map(|g| g.grantee().and_then(|g| g.uri()))
        .collect();
    assert_eq!(
        grantees,
        vec![None],
        "only the owner's grant is left: {acl:?}"
    );

    // Access logging switched off.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                s3.put_bucket_logging()
                    .bucket(b)
                    .bucket_logging_status(BucketLoggingStatus::builder().build())
                    .send()
                    .await
                    .unwrap();
            },
            &["logging"],
            &["PutBucketLogging s3://audit-logs/vault/"],
        )
        .await;
    assert_eq!(
        change(&d, "logging")["old"],
        json!({"target_bucket": "audit-logs", "target_prefix": "vault/"})
    );
    let log = s3.get_bucket_logging().bucket(b).send().await.unwrap();
    assert_eq!(log.logging_enabled().unwrap().target_bucket(), "audit-logs");

    // A tag changed.
    let d = w
        .drifts_and_heals(
            BUCKET,
            b,
            async {
                s3.put_bucket_tagging()
                    .bucket(b)
                    .tagging(s3_tags(&[("team", "other")]))
                    .send()
                    .await
                    .unwrap();
            },
            &["tags.team"],
            &["PutBucketTagging team=data"],
        )
        .await;
    assert_eq!(
        (
            &change(&d, "tags.team")["old"],
            &change(&d, "tags.team")["new"]
        ),
        (&json!("data"), &json!("other"))
    );
    let tags = s3.get_bucket_tagging().bucket(b).send().await.unwrap();
    assert_eq!(tags.tag_set()[0].value(), "data");
}

async fn iam_fixture(iam: &aws_sdk_iam::Client) -> String {
    for (name, action) in [("deploy", "ec2:Describe*"), ("boundary", "s3:*")] {
        iam.create_policy()
            .policy_name(name)
            .policy_document(allow(action))
            .send()
            .await
            .unwrap();
    }
    // Three more (non-default) versions, so a fifth one fills the policy's
    // version limit and the remediation must prune.
    for action in [
        "ec2:DescribeInstances",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
    ] {
        iam.create_policy_version()
            .policy_arn(policy_arn("deploy"))
            .policy_document(allow(action))
            .set_as_default(false)
            .send()
            .await
            .unwrap();
    }
    iam.create_role()
        .role_name("app")
        .description("app role")
        .max_session_duration(3600)
        .assume_role_policy_document(trust("ec2.amazonaws.com"))
        .permissions_boundary(policy_arn("boundary"))
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("core")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app")
        .policy_name("read")
        .policy_document(allow("s3:GetObject"))
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("app")
        .policy_arn(policy_arn("deploy"))
        .send()
        .await
        .unwrap();
    iam.create_group().group_name("devs").send().await.unwrap();
    iam.create_user().user_name("alice").send().await.unwrap();
    iam.add_user_to_group()
        .group_name("devs")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    iam.attach_user_policy()
        .user_name("alice")
        .policy_arn(READ_ONLY)
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    key.access_key().unwrap().access_key_id().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iam_attribute_drifts_once_and_is_restored() {
    let w = World::start("1s", &[REGION], false);
    let iam = &w.iam;
    let key = iam_fixture(iam).await;
    w.env(REGION);
    w.json(&["baseline", "create", ENV]);
    w.json(&["enforcement", "set", ENV, "enforce"]);

    // ---- role
    let d = w
        .drifts_and_heals(
            ROLE,
            "app",
            async {
                iam.update_assume_role_policy()
                    .role_name("app")
                    .policy_document(trust("lambda.amazonaws.com"))
                    .send()
                    .await
                    .unwrap();
            },
            &["trust_policy.Statement"],
            &["UpdateAssumeRolePolicy (baseline document)"],
        )
        .await;
    assert_eq!(
        change(&d, "trust_policy.Statement")["new"][0]["Principal"]["Service"],
        json!(["lambda.amazonaws.com"])
    );
    let role = iam.get_role().role_name("app").send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(
        canonical(role.assume_role_policy_document().unwrap()),
        canonical(&trust("ec2.amazonaws.com"))
    );

    w.drifts_and_heals(
        ROLE,
        "app",
        async {
            iam.put_role_policy()
                .role_name("app")
                .policy_name("read")
                .policy_document(allow("s3:*"))
                .send()
                .await
                .unwrap();
        },
        &["inline_policies.read.Statement"],
        &["PutRolePolicy read"],
    )
    .await;
    let inline = iam
        .get_role_policy()
        .role_name("app")
        .policy_name("read")
        .send()
        .await
        .unwrap();
    assert_eq!(
        canonical(inline.policy_document()),
        canonical(&allow("s3:GetObject"))
    );

    let d = w
        .drifts_and_heals(
            ROLE,
            "app",
            async {
                iam.attach_role_policy()
                    .role_name("app")
                    .policy_arn(ADMIN)
                    .send()
                    .await
                    .unwrap();
            },
            &[&format!("attached_policies[\"{ADMIN}\"]")],
            &[&format!("DetachRolePolicy {ADMIN}")],
        )
        .await;
    assert_eq!(
        change(&d, &format!("attached_policies[\"{ADMIN}\"]"))["new"],
        true
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("app")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|a| a.policy_arn())
        .collect();
    assert_eq!(arns, vec![policy_arn("deploy").as_str()]);

    let d = w
        .drifts_and_heals(
            ROLE,
            "app",
            async {
                iam.delete_role_permissions_boundary()
                    .role_name("app")
                    .send()
                    .await
                    .unwrap();
            },
            &["permissions_boundary"],
            &[&format!(
                "PutRolePermissionsBoundary {}",
                policy_arn("boundary")
            )],
        )
        .await;
    assert_eq!(change(&d, "permissions_boundary")["new"], "none");
    let role = iam.get_role().role_name("app").send().await.unwrap();
    assert_eq!(
        role.role()
            .unwrap()
            .permissions_boundary()
            .unwrap()
            .permissions_boundary_arn(),
        Some(policy_arn("boundary").as_str())
    );

    let restore = "UpdateRole description=\"app role\" max_session_duration=3600";
    // Both fields in each call: the emulator's UpdateRole clears the ones
    // left out (AWS keeps them).
    w.drifts_and_heals(
        ROLE,
        "app",
        async {
            iam.update_role()
                .role_name("app")
                .description("app role")
                .max_session_duration(7200)
                .send()
                .await
                .unwrap();
        },
        &["max_session_duration"],
        &[restore],
    )
    .await;
    w.drifts_and_heals(
        ROLE,
        "app",
        async {
            iam.update_role()
                .role_name("app")
                .description("who knows")
                .max_session_duration(3600)
                .send()
                .await
                .unwrap();
        },
        &["description"],
        &[restore],
    )
    .await;
    let role = iam.get_role().role_name("app").send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(
        (role.description(), role.max_session_duration()),
        (Some("app role"), Some(3600))
    );

    w.drifts_and_heals(
        ROLE,
        "app",
        async {
            iam.tag_role()
                .role_name("app")
                .tags(
                    aws_sdk_iam::types::Tag::builder()
                        .key("owner")
                        .value("mallory")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        },
        &["tags.owner"],
        &["UntagRole owner"],
    )
    .await;
    let tags = iam.list_role_tags().role_name("app").send().await.unwrap();
    let keys: Vec<&str> = tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, vec!["team"]);

    // ---- customer-managed policy: a fifth version made default
    let arn = policy_arn("deploy");
    w.drifts_and_heals(
        POLICY,
        "deploy",
        async {
            iam.create_policy_version()
                .policy_arn(&arn)
                .policy_document(allow("*"))
                .set_as_default(true)
                .send()
                .await
                .unwrap();
        },
        &["document.Statement"],
        &["CreatePolicyVersion (baseline document, as default)"],
    )
    .await;
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        5,
        "the oldest non-default version was pruned"
    );
    let default = versions
        .versions()
        .iter()
        .find(|v| v.is_default_version())
        .unwrap();
    let v = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(default.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        canonical(v.policy_version().unwrap().document().unwrap()),
        canonical(&allow("ec2:Describe*"))
    );

    // ---- user
    w.drifts_and_heals(
        USER,
        "alice",
        async {
            iam.put_user_policy()
                .user_name("alice")
                .policy_name("sneaky")
                .policy_document(allow("*"))
                .send()
                .await
                .unwrap();
        },
        &["inline_policies.sneaky"],
        &["DeleteUserPolicy sneaky"],
    )
    .await;
    assert!(iam
        .list_user_policies()
        .user_name("alice")
        .send()
        .await
        .unwrap()
        .policy_names()
        .is_empty());

    w.drifts_and_heals(
        USER,
        "alice",
        async {
            iam.detach_user_policy()
                .user_name("alice")
                .policy_arn(READ_ONLY)
                .send()
                .await
                .unwrap();
        },
        &[&format!("attached_policies[\"{READ_ONLY}\"]")],
        &[&format!("AttachUserPolicy {READ_ONLY}")],
    )
    .await;
    let attached = iam
        .list_attached_user_policies()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some(READ_ONLY)
    );

    w.drifts_and_heals(
        USER,
        "alice",
        async {
            iam.remove_user_from_group()
                .group_name("devs")
                .user_name("alice")
                .send()
                .await
                .unwrap();
        },
        &["groups.devs"],
        &["AddUserToGroup devs"],
    )
    .await;
    let groups = iam
        .list_groups_for_user()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.groups()[0].group_name(), "devs");

    let d = w
        .drifts_and_heals(
            USER,
            "alice",
            async {
                iam.create_login_profile()
                    .user_name("alice")
                    .password("Hunter2-Hunter2!")
                    .send()
                    .await
                    .unwrap();
            },
            &["console_login"],
            &["DeleteLoginProfile"],
        )
        .await;
    assert_eq!(
        (
            &change(&d, "console_login")["old"],
            &change(&d, "console_login")["new"]
        ),
        (&json!(false), &json!(true))
    );
    assert!(
        iam.get_login_profile()
            .user_name("alice")
            .send()
            .await
            .is_err(),
        "the console password is gone"
    );

    let path = format!("access_keys.{key}.status");
    w.drifts_and_heals(
        USER,
        "alice",
        async {
            iam.update_access_key()
                .user_name("alice")
                .access_key_id(&key)
                .status(aws_sdk_iam::types::StatusType::Inactive)
                .send()
                .await
                .unwrap();
        },
        &[&path],
        &[&format!("UpdateAccessKey {key} Active")],
    )
    .await;
    let keys = iam
        .list_access_keys()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.access_key_metadata()[0].status(),
        Some(&aws_sdk_iam::types::StatusType::Active)
    );

    // (A user's permissions boundary is modelled and planned too, but the
    // emulator implements neither Put- nor DeleteUserPermissionsBoundary;
    // the planner's unit tests cover it.)

    w.drifts_and_heals(
        USER,
        "alice",
        async {
            iam.tag_user()
                .user_name("alice")
                .tags(
                    aws_sdk_iam::types::Tag::builder()
                        .key("k")
                        .value("v")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        },
        &["tags.k"],
        &["UntagUser k"],
    )
    .await;
    assert!(iam
        .list_user_tags()
        .user_name("alice")
        .send()
        .await
        .unwrap()
        .tags()
        .is_empty());
}

/// The time now as the controller formats it, for comparing timestamps.
fn now_rfc3339() -> String {
    holdfast_controller::records::now()
}

/// Several attributes of one resource changed at once: one drift with all
/// the changes and one remediation making all the calls. Then transitions
/// that cannot be undone by API: reported as unenforceable, shown by the
/// CLI, and no call is made (counted at a proxy in front of the emulator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_changes_make_one_drift_and_unenforceable_ones_make_no_call() {
    let w = World::start("1s", &[REGION], true);
    let (s3, iam) = (&w.s3, &w.iam);
    s3.create_bucket().bucket("multi").send().await.unwrap();
    s3.put_bucket_encryption()
        .bucket("multi")
        .server_side_encryption_configuration(aes256())
        .send()
        .await
        .unwrap();
    s3.put_public_access_block()
        .bucket("multi")
        .public_access_block_configuration(all_blocked())
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("multi")
        .tagging(s3_tags(&[("team", "data")]))
        .send()
        .await
        .unwrap();
    s3.create_bucket()
        .bucket("never-versioned")
        .send()
        .await
        .unwrap();
    iam.create_user().user_name("bob").send().await.unwrap();
    iam.create_login_profile()
        .user_name("bob")
        .password("Hunter2-Hunter2!")
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap().access_key_id().to_string();
    iam.create_user().user_name("dave").send().await.unwrap();
    w.env(REGION);
    w.json(&["baseline", "create", ENV]);

    // Notify mode: three changes to one bucket, one drift carrying them all.
    s3.delete_bucket_encryption()
        .bucket("multi")
        .send()
        .await
        .unwrap();
    s3.delete_public_access_block()
        .bucket("multi")
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("multi")
        .tagging(s3_tags(&[("team", "data"), ("owner", "mallory")]))
        .send()
        .await
        .unwrap();
    let drift = wait_for(
        "one drift with three changes",
        Duration::from_secs(30),
        || {
            let d = w.drift_of(BUCKET, "multi");
            (d.len() == 1 && d[0]["changes"].as_array().unwrap().len() == 3).then(|| d[0].clone())
        },
    );
    let paths: Vec<&str> = drift["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["encryption", "public_access_block", "tags.owner"]
    );
    // The compliance consequence: the bucket newly fails encryption and
    // public-access rules; KMS (S3-02) failed before and after.
    let failing: Vec<&str> = drift["compliance"]["newly_failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(failing, vec!["S3-01", "S3-03"], "{drift:#}");
    assert_eq!(
        drift["compliance"]["newly_failing"][0]["severity"],
        "medium"
    );
    assert_eq!(drift["compliance"]["newly_passing"], json!([]));
    w.json(&["enforcement", "set", ENV, "enforce"]);
    wait_for("the heal", Duration::from_secs(30), || {
        let d = w.drift_of(BUCKET, "multi");
        (d.len() == 1 && d[0]["status"] == "healed").then_some(())
    });
    let rems: Vec<Value> = w
        .remediations()
        .into_iter()
        .filter(|r| r["drift_id"] == drift["id"])
        .collect();
    assert_eq!(rems.len(), 1, "{rems:#?}");
    assert_eq!(
        rems[0]["actions"],
        json!([
            "PutBucketEncryption AES256",
            "PutPublicAccessBlock BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true",
            "PutBucketTagging team=data"
        ])
    );
    assert!(s3
        .get_bucket_encryption()
        .bucket("multi")
        .send()
        .await
        .is_ok());

    // Unenforceable: versioning enabled on a never-versioned bucket, a
    // console password removed, an access key deleted.
    let proxy = w.proxy();
    let puts_before = proxy.count("s3", "PUT ?versioning");
    set_versioning(s3, "never-versioned", BucketVersioningStatus::Enabled).await;
    iam.delete_login_profile()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    iam.delete_access_key()
        .user_name("bob")
        .access_key_id(&key)
        .send()
        .await
        .unwrap();
    // An MFA device enrolled outside the baseline.
    let device = iam
        .create_virtual_mfa_device()
        .virtual_mfa_device_name("dave-phone")
        .send()
        .await
        .unwrap();
    let serial = device
        .virtual_mfa_device()
        .unwrap()
        .serial_number()
        .to_string();
    iam.enable_mfa_device()
        .user_name("dave")
        .serial_number(&serial)
        .authentication_code1("123456")
        .authentication_code2("654321")
        .send()
        .await
        .unwrap();
    let notes = wait_for(
        "the drifts marked unenforceable",
        Duration::from_secs(30),
        || {
            let note = |d: Vec<Value>| d.first().and_then(|d| d["note"].as_str()).map(String::from);
            match (
                note(w.drift_of(BUCKET, "never-versioned")),
                note(w.drift_of(USER, "bob")),
                note(w.drift_of(USER, "dave")),
            ) {
                (Some(b), Some(u), Some(m)) => Some((b, u, m)),
                _ => None,
            }
        },
    );
    let versioned = &w.drift_of(BUCKET, "never-versioned")[0];
    assert_eq!(
        versioned["compliance"]["newly_passing"],
        json!(["S3-06"]),
        "enabling versioning passes S3-06"
    );
    assert!(
        notes.0.starts_with("unenforceable:") && notes.0.contains("never-enabled"),
        "{}",
        notes.0
    );
    assert!(notes.1.starts_with("unenforceable:"), "{}", notes.1);
    assert!(
        notes.2.starts_with("unenforceable:") && notes.2.contains("MFA"),
        "{}",
        notes.2
    );
    let mfa = &w.drift_of(USER, "dave")[0];
    assert_eq!(
        mfa["changes"][0]["path"],
        format!("mfa_devices[{}]", serde_json::to_string(&serial).unwrap())
    );
    // Several more collections: still no remediation and no call.
    std::thread::sleep(Duration::from_secs(4));
    let attempted: Vec<Value> = w
        .remediations()
        .into_iter()
        .filter(|r| {
            ["never-versioned", "bob", "dave"]
                .iter()
                .any(|id| r["resource"]["id"] == *id)
        })
        .collect();
    assert!(attempted.is_empty(), "{attempted:#?}");
    assert_eq!(
        proxy.count("s3", "PUT ?versioning"),
        puts_before,
        "no versioning call"
    );
    for action in [
        "CreateLoginProfile",
        "CreateAccessKey",
        "UpdateAccessKey",
        "UpdateLoginProfile",
        "DeactivateMFADevice",
        "EnableMFADevice",
    ] {
        assert_eq!(proxy.count("iam", action), 0, "no {action} call");
    }
    assert_eq!(versioning(w.stack.moto.port, "never-versioned"), "Enabled");
    let table = w.stack.cli(&["drift", "list", ENV]);
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.contains("unenforceable"),
        "the CLI shows it:\n{}",
        table.stdout
    );
}

/// Two regions: each bucket in its own region's partition and healed there;
/// IAM is collected once per account (one GetAccountAuthorizationDetails
/// per IAM type and collection), security groups once per region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_with_iam_collected_once_per_account() {
    let regions = [REGION, "eu-west-1"];
    // Collections only when the controller asks, so they can be counted.
    let mut w = World::start("1h", &regions, true);
    let west = s3_client(&w.stack.moto.url, "eu-west-1");
    w.s3.create_bucket()
        .bucket("east-data")
        .send()
        .await
        .unwrap();
    west.create_bucket()
        .bucket("west-data")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    west.put_bucket_tagging()
        .bucket("west-data")
        .tagging(s3_tags(&[("team", "eu")]))
        .send()
        .await
        .unwrap();
    w.iam
        .create_role()
        .role_name("app")
        .assume_role_policy_document(trust("ec2.amazonaws.com"))
        .send()
        .await
        .unwrap();
    w.env("us-east-1,eu-west-1");
    w.json(&["baseline", "create", ENV]);

    let base = w.json(&["baseline", "show", ENV]);
    let place = |id: &str| {
        base["resources_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"]["id"] == id)
            .map(|r| {
                (
                    r["resource"]["type"].as_str().unwrap().to_string(),
                    r["resource"]["region"].as_str().unwrap().to_string(),
                )
            })
    };
    assert_eq!(
        place("east-data"),
        Some((BUCKET.into(), "us-east-1".into()))
    );
    assert_eq!(
        place("west-data"),
        Some((BUCKET.into(), "eu-west-1".into()))
    );
    assert_eq!(place("app"), Some((ROLE.into(), "global".into())));

    let env = w.json(&["env", "show", ENV]);
    let mut parts: Vec<(String, String)> = env["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["region"].as_str().unwrap().to_string(),
                p["resource_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    parts.sort();
    let expect: Vec<(String, String)> = [
        ("eu-west-1", "aws.ec2.security_group"),
        ("eu-west-1", BUCKET),
        ("global", "aws.iam.password_policy"),
        ("global", POLICY),
        ("global", ROLE),
        ("global", USER),
        ("us-east-1", "aws.ec2.security_group"),
        ("us-east-1", BUCKET),
    ]
    .iter()
    .map(|(r, t)| (r.to_string(), t.to_string()))
    .collect();
    assert_eq!(
        parts, expect,
        "one IAM partition per type for the account, one S3 and SG partition per region"
    );

    // Every collection read security groups once per region and each IAM
    // type once for the account (counted once no collection is running).
    let counts = || {
        (
            w.proxy().count("ec2", "DescribeSecurityGroups"),
            w.proxy().count("iam", "GetAccountAuthorizationDetails"),
        )
    };
    let (sg_reads, iam_reads) = wait_for("collections to settle", Duration::from_secs(20), || {
        let a = counts();
        std::thread::sleep(Duration::from_secs(1));
        (a == counts() && a.0 % 2 == 0).then_some(a)
    });
    let collections = sg_reads / 2;
    assert!(
        collections >= 2,
        "the initial and the baseline's collection at least: {sg_reads}"
    );
    assert_eq!(
        iam_reads,
        collections * 3,
        "IAM once per collection ({iam_reads} reads, {collections} collections)"
    );

    // A drift in eu-west-1 is healed through that region. The agent
    // collects hourly here, so restart it: a new stream gets a full
    // collection.
    w.json(&["enforcement", "set", ENV, "enforce"]);
    west.put_bucket_tagging()
        .bucket("west-data")
        .tagging(s3_tags(&[("team", "us")]))
        .send()
        .await
        .unwrap();
    w.stack.start_agent(&regions, "1h").unwrap();
    wait_for("the heal in eu-west-1", Duration::from_secs(30), || {
        let d = w.drift_of(BUCKET, "west-data");
        (d.len() == 1 && d[0]["status"] == "healed" && d[0]["resource"]["region"] == "eu-west-1")
            .then_some(())
    });
    let tags = west
        .get_bucket_tagging()
        .bucket("west-data")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set()[0].value(), "eu");
}

/// IAM is throttled (every call answered with `Throttling`): only the IAM
/// partitions fail, with the error; S3 and EC2 keep collecting; nothing is
/// read as removed. When IAM answers again, its partitions complete and no
/// drift appears. Then the same for S3 (`SlowDown`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_service_fails_only_its_own_partitions() {
    let w = World::start("1s", &[REGION], true);
    w.s3.create_bucket().bucket("steady").send().await.unwrap();
    w.iam.create_user().user_name("carol").send().await.unwrap();
    w.env(REGION);
    w.json(&["baseline", "create", ENV]);
    w.json(&["enforcement", "set", ENV, "enforce"]);
    let all_drift = || w.stack.drift(ENV, true);

    for (service, failing, healthy) in [
        (
            "iam",
            vec![POLICY, ROLE, USER],
            vec![BUCKET, "aws.ec2.security_group"],
        ),
        (
            "s3",
            vec![BUCKET],
            vec![POLICY, ROLE, USER, "aws.ec2.security_group"],
        ),
    ] {
        w.proxy().throttle(Some(service));
        let started = now_rfc3339();
        let env = wait_for(
            &format!("{service} partitions to fail"),
            Duration::from_secs(60),
            || {
                let env = w.json(&["env", "show", ENV]);
                let parts = env["partitions"].as_array().unwrap().clone();
                let fresh = |t: &str| {
                    parts
                        .iter()
                        .find(|p| p["resource_type"] == t)
                        .filter(|p| p["collected_at"].as_str().unwrap() > started.as_str())
                        .cloned()
                };
                let all_failed = failing
                    .iter()
                    .all(|t| fresh(t).is_some_and(|p| p["complete"] == false));
                let others_ok = healthy
                    .iter()
                    .all(|t| fresh(t).is_some_and(|p| p["complete"] == true));
                (all_failed && others_ok).then_some(env)
            },
        );
        for p in env["partitions"].as_array().unwrap() {
            if failing.iter().any(|t| p["resource_type"] == *t) {
                let e = p["error"].as_str().unwrap();
                assert!(e.contains("Throttling") || e.contains("SlowDown"), "{e}");
            }
        }
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            all_drift().is_empty(),
            "a throttled read is never a deletion: {:#?}",
            all_drift()
        );
        assert!(w.remediations().is_empty());
        w.proxy().throttle(None);
        let resumed = now_rfc3339();
        wait_for(
            &format!("{service} partitions to recover"),
            Duration::from_secs(60),
            || {
                let env = w.json(&["env", "show", ENV]);
                env["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| {
                        p["complete"] == true
                            && p["collected_at"].as_str().unwrap() > resumed.as_str()
                    })
                    .then_some(())
            },
        );
        assert!(
            all_drift().is_empty(),
            "nothing spurious after {service} recovered"
        );
    }
}

async fn strict_password_policy(iam: &aws_sdk_iam::Client) {
    iam.update_account_password_policy()
        .minimum_password_length(14)
        .require_symbols(true)
        .require_numbers(true)
        .require_uppercase_characters(true)
        .require_lowercase_characters(true)
        .allow_users_to_change_password(true)
        .max_password_age(90)
        .password_reuse_prevention(24)
        .send()
        .await
        .unwrap();
}

/// The account password policy: weakened, then deleted, each is one drift
/// healed by one call, read back by the SDK; and its compliance consequence
/// names the ACCT rules it newly fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_password_policy_drifts_and_is_restored() {
    let w = World::start("1s", &[REGION], false);
    strict_password_policy(&w.iam).await;
    w.env(REGION);
    let ty = "aws.iam.password_policy";
    let b = w.json(&["baseline", "create", ENV]);
    assert_eq!(b["version"], 1);
    w.json(&["enforcement", "set", ENV, "enforce"]);

    let weakened = w
        .drifts_and_heals(
            ty,
            "account",
            async {
                w.iam
                    .update_account_password_policy()
                    .minimum_password_length(8)
                    .require_symbols(false)
                    .require_numbers(true)
                    .require_uppercase_characters(true)
                    .require_lowercase_characters(true)
                    .allow_users_to_change_password(true)
                    .max_password_age(90)
                    .password_reuse_prevention(24)
                    .send()
                    .await
                    .unwrap();
            },
            &["policy.minimum_password_length", "policy.require_symbols"],
            &["UpdateAccountPasswordPolicy min 14 symbols true numbers true upper true lower true change true max-age 90 reuse 24 hard-expiry false"],
        )
        .await;
    assert_eq!(
        change(&weakened, "policy.minimum_password_length")["old"],
        14
    );
    assert_eq!(
        change(&weakened, "policy.minimum_password_length")["new"],
        8
    );
    let failing: Vec<&str> = weakened["compliance"]["newly_failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in ["ACCT-01", "ACCT-03", "ACCT-05"] {
        assert!(failing.contains(&rule), "{rule} in {failing:?}");
    }
    let p = w.iam.get_account_password_policy().send().await.unwrap();
    let p = p.password_policy().unwrap();
    assert_eq!(p.minimum_password_length(), Some(14));
    assert!(p.require_symbols());

    let deleted = w
        .drifts_and_heals(
            ty,
            "account",
            async {
                w.iam.delete_account_password_policy().send().await.unwrap();
            },
            &["policy"],
            &["UpdateAccountPasswordPolicy min 14 symbols true numbers true upper true lower true change true max-age 90 reuse 24 hard-expiry false"],
        )
        .await;
    assert_eq!(change(&deleted, "policy")["new"], "none");
    let p = w.iam.get_account_password_policy().send().await.unwrap();
    assert_eq!(
        p.password_policy().unwrap().password_reuse_prevention(),
        Some(24)
    );
}
