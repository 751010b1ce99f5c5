//! Enforcement that never fights the deploy pipeline: pauses with an
//! expiry (also across a controller restart), scoped pauses, the deploy
//! wrapper, and the baseline lifecycle (candidate, approve, diff,
//! rollback). Real etcd, emulator, controller, agent and CLI.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use holdfast_tests::*;
use serde_json::{json, Value};

const ENV: &str = "prod";
const SG: &str = "aws.ec2.security_group";

fn open_drift_of(stack: &Stack, id: &str) -> Vec<Value> {
    stack
        .drift(ENV, false)
        .into_iter()
        .filter(|d| d["resource"]["id"] == id)
        .collect()
}

fn baselines(stack: &Stack) -> Vec<Value> {
    stack
        .json(&["baseline", "list", ENV])
        .as_array()
        .cloned()
        .unwrap()
}

fn current(stack: &Stack) -> u64 {
    stack.json(&["env", "show", ENV])["current_baseline"]
        .as_u64()
        .unwrap_or(0)
}

/// The group's rules in the baseline version, as "tcp:PORT" keys.
fn baseline_rules(stack: &Stack, version: u64, sg: &str) -> Vec<String> {
    let b = stack.json(&["baseline", "show", ENV, &version.to_string()]);
    let r = b["resources_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["id"] == sg)
        .unwrap()
        .clone();
    r["attributes"]["ingress"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The deploy wrapper: a successful deployment that changes a group (with
/// an independent client) becomes the new approved baseline and is never
/// reverted; a failing one leaves the baseline alone and the pause on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_rebaselines_a_successful_change_and_keeps_the_pause_on_failure() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let client = root.join("deploy/dev/aws_client.py");
    let out = stack.cli(&[
        "--actor",
        "ci-pipeline",
        "deploy",
        ENV,
        "--for",
        "10m",
        "--approve",
        "--reason",
        "release 42",
        "--",
        python.to_str().unwrap(),
        client.to_str().unwrap(),
        &stack.moto.url,
        "break",
        &sg,
    ]);
    assert_eq!(out.code, 0, "deploy failed: {}", out.stderr);
    assert!(out.stderr.contains("paused until"), "{}", out.stderr);
    assert!(
        out.stdout.contains("tcp:22-22:0.0.0.0/0"),
        "the diff is shown: {}",
        out.stdout
    );

    // The new approved baseline holds the deployed change.
    assert_eq!(current(&stack), 2);
    assert_eq!(baseline_rules(&stack, 2, &sg), vec!["tcp:22-22:0.0.0.0/0"]);
    let v2 = baselines(&stack)
        .into_iter()
        .find(|b| b["version"] == 2)
        .unwrap();
    assert_eq!(v2["status"], "approved");
    assert_eq!(v2["created_by"], "ci-pipeline");
    assert!(
        v2["reason"].as_str().unwrap().contains("release 42"),
        "{v2}"
    );
    // The pause is over, nothing was reverted, no remediation ran.
    assert_eq!(stack.json(&["env", "show", ENV])["pauses"], json!([]));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 22, 22, "0.0.0.0/0".into())]
    );
    assert!(
        stack.remediations(ENV).is_empty(),
        "{:#?}",
        stack.remediations(ENV)
    );
    assert!(
        stack.drift(ENV, false).is_empty(),
        "{:#?}",
        stack.drift(ENV, false)
    );

    // For scripts: one JSON document with the new baseline and its diff.
    // The change made by the deployment command itself (boto3), so
    // enforcement cannot revert it before the pause.
    let tag = format!(
        "import boto3; boto3.client('ec2', endpoint_url='{}', region_name='{REGION}', aws_access_key_id='testing', aws_secret_access_key='testing').create_tags(Resources=['{sg}'], Tags=[{{'Key': 'release', 'Value': '43'}}])",
        stack.moto.url
    );
    let out = stack.cli(&[
        "deploy",
        ENV,
        "--approve",
        "--output",
        "json",
        "--",
        python.to_str().unwrap(),
        "-c",
        &tag,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["baseline"]["version"], 3);
    assert_eq!(doc["previous"], 2);
    assert_eq!(doc["diff"][0]["changes"][0]["path"], "tags.release");

    // A failing deployment: its exit code, no new baseline, pause kept.
    let out = stack.cli(&[
        "deploy",
        ENV,
        "--for",
        "10m",
        "--approve",
        "--",
        "sh",
        "-c",
        "echo deploying; exit 3",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stdout.contains("deploying"),
        "the command's output is streamed: {}",
        out.stdout
    );
    assert!(out.stderr.contains("baseline unchanged"), "{}", out.stderr);
    assert_eq!(baselines(&stack).len(), 3, "no candidate was created");
    assert_eq!(current(&stack), 3);
    let env = stack.json(&["env", "show", ENV]);
    let pauses = env["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 1, "{env:#}");
    assert!(pauses[0]["reason"].as_str().unwrap().contains("exit 3"));
    // While paused, drift is recorded but not healed.
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3389, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    let d = wait_for("the paused drift", Duration::from_secs(30), || {
        open_drift_of(&stack, &sg).into_iter().find(|d| {
            d["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("paused until"))
        })
    });
    assert_eq!(
        d["changes"][0]["path"],
        "ingress[\"tcp:3389-3389:0.0.0.0/0\"]"
    );
    assert!(stack.remediations(ENV).is_empty());
    // Resuming heals it.
    stack.json(&["enforcement", "resume", ENV]);
    wait_for("the heal after resume", Duration::from_secs(30), || {
        open_drift_of(&stack, &sg).is_empty().then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 22, 22, "0.0.0.0/0".into())]
    );
}

/// A pause ends by itself at its expiry, also when the controller was
/// restarted in between: the drift it held back is healed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_expiry_resumes_enforcement_across_a_controller_restart() {
    let mut stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    let env = stack.json(&[
        "--actor",
        "alice",
        "enforcement",
        "pause",
        ENV,
        "--for",
        "12s",
        "--reason",
        "maintenance",
    ]);
    let pause = env["pauses"][0].clone();
    assert_eq!(
        (pause["by"].as_str(), pause["reason"].as_str()),
        (Some("alice"), Some("maintenance"))
    );
    let until = pause["until"].as_str().unwrap().to_string();
    let shown = stack.cli(&["env", "show", ENV]);
    assert!(
        shown.stdout.contains(&format!(
            "paused:       everything until {until} by alice: maintenance"
        )),
        "{}",
        shown.stdout
    );

    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the paused drift", Duration::from_secs(30), || {
        open_drift_of(&stack, &sg)
            .first()
            .and_then(|d| d["note"].as_str().map(String::from))
            .filter(|n| n.starts_with("paused until"))
    });
    stack.controller.restart().unwrap();
    assert_eq!(
        stack.json(&["env", "show", ENV])["pauses"][0]["until"],
        until.as_str(),
        "the pause survived the restart"
    );
    assert!(
        stack.remediations(ENV).is_empty(),
        "nothing enforced while paused"
    );

    let healed = wait_for(
        "the heal after the pause expired",
        Duration::from_secs(60),
        || {
            stack
                .drift(ENV, true)
                .into_iter()
                .find(|d| d["resource"]["id"] == sg.as_str() && d["status"] == "healed")
        },
    );
    assert!(
        healed["healed_at"].as_str().unwrap() > until.as_str(),
        "healed only after {until}: {healed:#}"
    );
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    assert_eq!(
        stack.json(&["env", "show", ENV])["pauses"],
        json!([]),
        "an expired pause is not shown"
    );
}

/// A pause of one resource type: drift of that type is not reverted, drift
/// of another type is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_pause_holds_back_only_its_types() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    let s3 = s3_client(&stack.moto.url, REGION);
    s3.create_bucket().bucket("assets").send().await.unwrap();
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    stack.json(&[
        "enforcement",
        "pause",
        ENV,
        "--for",
        "10m",
        "--reason",
        "bucket migration",
        "--types",
        "aws.s3.bucket",
    ]);

    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(
            aws_sdk_s3::types::Tag::builder()
                .key("migrating")
                .value("yes")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("assets")
        .tagging(tags)
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();

    wait_for("the group to heal", Duration::from_secs(30), || {
        stack
            .drift(ENV, true)
            .iter()
            .any(|d| d["resource"]["type"] == SG && d["status"] == "healed")
            .then_some(())
    });
    let bucket = wait_for(
        "the bucket drift held back",
        Duration::from_secs(30),
        || {
            open_drift_of(&stack, "assets").into_iter().find(|d| {
                d["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("bucket migration"))
            })
        },
    );
    assert_eq!(bucket["changes"][0]["path"], "tags.migrating");
    std::thread::sleep(Duration::from_secs(3));
    let tagged = s3
        .get_bucket_tagging()
        .bucket("assets")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tagged.tag_set().len(),
        1,
        "the paused bucket is not reverted"
    );
    assert!(stack
        .remediations(ENV)
        .iter()
        .all(|r| r["resource"]["type"] == SG));

    let bad = stack.cli(&[
        "enforcement",
        "pause",
        ENV,
        "--for",
        "1m",
        "--reason",
        "x",
        "--types",
        "aws.ec2.instance",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("aws.ec2.instance"), "{}", bad.stderr);
    let bad = stack.cli(&["enforcement", "pause", ENV, "--for", "1m", "--reason", ""]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("reason"), "{}", bad.stderr);
}

/// Two-step approval, diff and rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_approve_diff_and_rollback() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV, "--reason", "first"]);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(8443, "10.0.0.0/8"))
        .send()
        .await
        .unwrap();
    wait_for("the drift", Duration::from_secs(30), || {
        (open_drift_of(&stack, &sg).len() == 1).then_some(())
    });

    let cand = stack.json(&[
        "baseline",
        "create",
        ENV,
        "--candidate",
        "--reason",
        "adds 8443",
    ]);
    assert_eq!(
        (
            cand["version"].as_u64(),
            cand["status"].as_str(),
            cand["current"].as_bool()
        ),
        (Some(2), Some("candidate"), Some(false))
    );
    assert_eq!(current(&stack), 1, "a candidate does not take effect");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        open_drift_of(&stack, &sg).len(),
        1,
        "the drift stays open against v1"
    );

    let diff = stack.json(&["baseline", "diff", ENV, "1", "2"]);
    assert_eq!(diff.as_array().unwrap().len(), 1, "{diff:#}");
    assert_eq!(diff[0]["resource"]["id"], sg.as_str());
    assert_eq!(diff[0]["kind"], "modified");
    assert_eq!(
        diff[0]["changes"][0]["path"],
        "ingress[\"tcp:8443-8443:10.0.0.0/8\"]"
    );
    assert_eq!(diff[0]["changes"][0]["old"], Value::Null);
    let same = stack.cli(&["baseline", "diff", ENV, "1", "1"]);
    assert!(same.stdout.contains("identical"), "{}", same.stdout);

    let approved = stack.json(&["--actor", "bob", "baseline", "approve", ENV, "2"]);
    assert_eq!(
        (
            approved["status"].as_str(),
            approved["approved_by"].as_str()
        ),
        (Some("approved"), Some("bob"))
    );
    assert_eq!(current(&stack), 2);
    wait_for(
        "the drift to heal against v2",
        Duration::from_secs(30),
        || open_drift_of(&stack, &sg).is_empty().then_some(()),
    );

    let again = stack.cli(&["baseline", "approve", ENV, "2"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already approved"),
        "{}",
        again.stderr
    );
    let missing = stack.cli(&["baseline", "approve", ENV, "99"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no baseline version 99"),
        "{}",
        missing.stderr
    );
    let zero = stack.cli(&["baseline", "rollback", ENV, "0"]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);

    let rolled = stack.json(&[
        "baseline",
        "rollback",
        ENV,
        "1",
        "--reason",
        "8443 was a mistake",
    ]);
    assert_eq!(
        (
            rolled["version"].as_u64(),
            rolled["rolled_back_from"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(current(&stack), 3);
    assert_eq!(
        baseline_rules(&stack, 3, &sg),
        baseline_rules(&stack, 1, &sg)
    );
    let list = baselines(&stack);
    let versions: Vec<(u64, &str, bool)> = list
        .iter()
        .map(|b| {
            (
                b["version"].as_u64().unwrap(),
                b["status"].as_str().unwrap(),
                b["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (1, "approved", false),
            (2, "approved", false),
            (3, "approved", true)
        ],
        "history intact"
    );
    // Against the restored v1 the live 8443 rule is drift again.
    wait_for("the drift against v3", Duration::from_secs(30), || {
        (open_drift_of(&stack, &sg).len() == 1).then_some(())
    });
    let same = stack.cli(&["baseline", "rollback", ENV, "3"]);
    assert_eq!(same.code, 1);
    assert!(same.stderr.contains("already current"), "{}", same.stderr);
}

fn applied(stack: &Stack) -> usize {
    stack
        .remediations(ENV)
        .iter()
        .filter(|r| r["status"] == "applied")
        .count()
}

/// Someone keeps opening SSH: after K reverts within the window the
/// resource is flapping and no longer enforced; the drift says why, and
/// the dry run shows it held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_resource_trips_the_breaker() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    let env = stack.json(&[
        "env",
        "set",
        ENV,
        "--flap-threshold",
        "2",
        "--flap-window",
        "10m",
    ]);
    assert_eq!(env["safety"]["flap_threshold"], 2);
    assert_eq!(env["safety"]["flap_window_seconds"], 600);
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    for revert in 1..=2 {
        ec2.authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(tcp(22, "0.0.0.0/0"))
            .send()
            .await
            .unwrap();
        wait_for(&format!("revert {revert}"), Duration::from_secs(30), || {
            (applied(&stack) == revert && open_drift_of(&stack, &sg).is_empty()).then_some(())
        });
    }
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    let d = wait_for("the breaker", Duration::from_secs(30), || {
        open_drift_of(&stack, &sg).into_iter().find(|d| {
            d["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("flapping"))
        })
    });
    assert!(
        d["note"]
            .as_str()
            .unwrap()
            .contains("reverted 2 times within 10m"),
        "{d:#}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(applied(&stack), 2, "no third revert");
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![
            ("tcp".into(), 22, 22, "0.0.0.0/0".into()),
            ("tcp".into(), 443, 443, "0.0.0.0/0".into())
        ]
    );
    let plan = stack.json(&["enforcement", "plan", ENV]);
    assert_eq!(
        plan[0]["actions"],
        json!(["RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"])
    );
    assert!(
        plan[0]["held"].as_str().unwrap().starts_with("flapping"),
        "{plan:#}"
    );
}

/// Beyond the rate budget remediations wait, and the wait is visible on
/// the drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediations_beyond_the_rate_budget_wait_visibly() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let a = create_group(&ec2, "a", vec![tcp(443, "0.0.0.0/0")]).await;
    let b = create_group(&ec2, "b", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["env", "set", ENV, "--max-remediations-per-minute", "1"]);
    let bad = stack.cli(&["env", "set", ENV, "--max-remediations-per-minute", "0"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    for sg in [&a, &b] {
        ec2.authorize_security_group_ingress()
            .group_id(sg)
            .ip_permissions(tcp(22, "0.0.0.0/0"))
            .send()
            .await
            .unwrap();
    }
    let waiting = wait_for("one healed, one waiting", Duration::from_secs(30), || {
        let open = stack.drift(ENV, false);
        (applied(&stack) == 1
            && open.len() == 1
            && open[0]["note"]
                .as_str()
                .is_some_and(|n| n.contains("rate budget")))
        .then(|| open[0].clone())
    });
    assert!(
        waiting["note"]
            .as_str()
            .unwrap()
            .contains("1 remediation(s) per minute"),
        "{waiting:#}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        applied(&stack),
        1,
        "still within the minute: the second one waits"
    );
}

/// The dry run lists what would be done, and does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_plan_is_a_dry_run() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    assert_eq!(
        stack.cli(&["enforcement", "plan", ENV]).stdout.trim(),
        "no open drift: nothing to do"
    );
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    ec2.revoke_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(443, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the drift", Duration::from_secs(30), || {
        open_drift_of(&stack, &sg)
            .into_iter()
            .find(|d| d["changes"].as_array().unwrap().len() == 2)
    });
    let plan = stack.json(&["enforcement", "plan", ENV]);
    assert_eq!(plan.as_array().unwrap().len(), 1, "{plan:#}");
    assert_eq!(plan[0]["resource"]["id"], sg.as_str());
    assert_eq!(
        plan[0]["actions"],
        json!([
            "AuthorizeSecurityGroupIngress tcp 443-443 0.0.0.0/0",
            "RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"
        ])
    );
    assert_eq!(
        plan[0]["held"],
        "enforcement mode is notify: nothing is changed"
    );
    let table = stack.cli(&["enforcement", "plan", ENV]);
    assert!(
        table.stdout.contains("AuthorizeSecurityGroupIngress"),
        "{}",
        table.stdout
    );
    // Planned in enforce mode too, while paused: still nothing changes.
    stack.json(&[
        "enforcement",
        "pause",
        ENV,
        "--for",
        "10m",
        "--reason",
        "look first",
    ]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    let plan = stack.json(&["enforcement", "plan", ENV]);
    assert!(
        plan[0]["held"]
            .as_str()
            .unwrap()
            .starts_with("paused until"),
        "{plan:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(stack.remediations(ENV).is_empty());
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 22, 22, "0.0.0.0/0".into())]
    );
}

/// Every admin action, baseline, drift and remediation is in the
/// environment's hash chain, with who and why; `audit verify` passes, and
/// finds a drift record altered directly in the store, and an entry
/// deleted from the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_record_is_complete_and_tamper_evident() {
    use holdfast_controller::store::{etcd::EtcdStore, Store, Txn};

    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.json(&[
        "--actor",
        "alice",
        "env",
        "create",
        ENV,
        "--account",
        ACCOUNT,
        "--regions",
        REGION,
    ]);
    wait_for("the agent", Duration::from_secs(30), || {
        stack.json(&["env", "show", ENV])["agent_connected"]
            .as_bool()
            .unwrap_or(false)
            .then_some(())
    });
    stack.json(&[
        "--actor", "alice", "baseline", "create", ENV, "--reason", "initial",
    ]);
    stack.json(&["--actor", "bob", "enforcement", "set", ENV, "enforce"]);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the heal", Duration::from_secs(30), || {
        stack
            .drift(ENV, true)
            .iter()
            .any(|d| d["status"] == "healed")
            .then_some(())
    });

    let audit = stack.json(&["audit", "list", ENV]);
    let entries = audit.as_array().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit:#}"))
    };
    assert_eq!(find("env.create")["actor"], "alice");
    assert_eq!(find("baseline.create")["actor"], "alice");
    assert_eq!(find("baseline.create")["detail"]["reason"], "initial");
    assert_eq!(find("enforcement.set")["actor"], "bob");
    assert_eq!(find("enforcement.set")["detail"]["to"], "enforce");
    for action in [
        "drift detected",
        "remediation pending",
        "remediation sent",
        "remediation applied",
        "drift healed",
    ] {
        assert!(find(action)["actor"]
            .as_str()
            .unwrap()
            .starts_with("controller:"));
    }
    let ok = stack.cli(&["audit", "verify"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.starts_with("verified:"), "{}", ok.stdout);

    // Someone with store access rewrites history: the drift never happened.
    let store = EtcdStore::connect(
        std::slice::from_ref(&stack.etcd.url),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let drift_key = find("drift detected")["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let mut record: Value =
        serde_json::from_slice(&store.get(&drift_key).await.unwrap().unwrap().value).unwrap();
    record["changes"] = json!([]);
    store
        .commit(Txn::new().put(drift_key.clone(), serde_json::to_vec(&record).unwrap()))
        .await
        .unwrap();
    let bad = stack.cli(&["audit", "verify", ENV]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(
        bad.stdout
            .contains(&format!("{drift_key}: record was altered")),
        "{}",
        bad.stdout
    );
    assert!(bad.stderr.contains("does not verify"), "{}", bad.stderr);

    // And removes an entry from the chain.
    let key = format!("/holdfast/v1/audit/{ENV}/{:020}", 2);
    store.commit(Txn::new().delete(key)).await.unwrap();
    let bad = stack.cli(&["audit", "verify", ENV]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("entry 2 is missing"), "{}", bad.stdout);
}

/// A webhook receiver that is down for a while, across a controller
/// restart, then up: every notice arrives exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_a_receiver_outage_and_a_restart_exactly_once_in_order() {
    let mut stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    let mut receiver = Receiver::start(free_port()).unwrap();
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let env = stack.json(&["notify", "add", ENV, "--url", &url]);
    assert_eq!(env["webhooks"][0]["url"], url.as_str());
    let bad = stack.cli(&["notify", "add", ENV, "--url", "ftp://example.invalid"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    receiver.stop();

    // While the receiver is down: a drift healed, a pause and a resume.
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the first heal", Duration::from_secs(30), || {
        stack
            .drift(ENV, true)
            .iter()
            .any(|d| d["status"] == "healed")
            .then_some(())
    });
    stack.json(&[
        "--actor",
        "carol",
        "enforcement",
        "pause",
        ENV,
        "--for",
        "5m",
        "--reason",
        "window",
    ]);
    stack.json(&["enforcement", "resume", ENV]);
    // A restart, and a second drift, still with the receiver down.
    stack.controller.restart().unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3389, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the second heal", Duration::from_secs(40), || {
        (stack
            .drift(ENV, true)
            .iter()
            .filter(|d| d["status"] == "healed")
            .count()
            == 2)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(receiver.bodies().is_empty());

    // What the receiver must get: one notice per audited drift, outcome,
    // pause and resume after the webhook was added.
    let audit = stack.json(&["audit", "list", ENV]);
    let added = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "notify.add")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let expected: Vec<u64> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() > added)
        .filter(|e| {
            let a = e["action"].as_str().unwrap();
            matches!(
                a,
                "drift detected"
                    | "drift changed"
                    | "compliance.regression"
                    | "enforcement.pause"
                    | "enforcement.resume"
            ) || ["applied", "conflict", "failed", "noop", "abandoned"]
                .iter()
                .any(|s| a == format!("remediation {s}"))
        })
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(expected.len() >= 6, "{audit:#}");

    receiver.restart().unwrap();
    wait_for("every notice", Duration::from_secs(60), || {
        (receiver.bodies().len() >= expected.len()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let bodies = receiver.bodies();
    let seqs: Vec<u64> = bodies.iter().map(|b| b["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs, expected,
        "every notice exactly once, in order: {bodies:#?}"
    );
    let kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "drift").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "remediation").count(),
        2,
        "{kinds:?}"
    );
    let drift = bodies.iter().find(|b| b["kind"] == "drift").unwrap();
    assert_eq!(drift["resource"], format!("{SG}/{REGION}/{sg}"));
    assert!(
        drift["text"]
            .as_str()
            .unwrap()
            .contains("ingress[\"tcp:22-22:0.0.0.0/0\"]"),
        "{drift:#}"
    );
    assert!(drift["data"]["compliance"]["newly_failing"]
        .as_array()
        .is_some_and(|f| !f.is_empty()));
    // The compliance regression the drift caused is a notice of its own,
    // right after the drift's.
    let regression = bodies
        .iter()
        .find(|b| b["kind"] == "compliance")
        .unwrap_or_else(|| panic!("a compliance notice: {kinds:?}"));
    assert_eq!(regression["resource"], drift["resource"]);
    assert_eq!(regression["data"]["drift_id"], drift["data"]["drift_id"]);
    assert_eq!(regression["seq"], drift["seq"].as_u64().unwrap() + 1);
    assert!(
        regression["text"]
            .as_str()
            .unwrap()
            .contains("newly fails SG-01 (high)"),
        "{regression:#}"
    );
    let pause = bodies.iter().find(|b| b["kind"] == "pause").unwrap();
    assert!(
        pause["text"].as_str().unwrap().contains("paused by carol"),
        "{pause:#}"
    );
}

/// Per-environment settings: ignored attribute paths are neither drift nor
/// restored; types outside `--enforce-types` are reported, not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_paths_and_unenforced_types() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    let s3 = s3_client(&stack.moto.url, REGION);
    s3.create_bucket().bucket("assets").send().await.unwrap();
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    let env = stack.json(&[
        "env",
        "set",
        ENV,
        "--ignore-paths",
        "tags.CostCenter",
        "--enforce-types",
        SG,
    ]);
    assert_eq!(env["safety"]["ignore_paths"], json!(["tags.CostCenter"]));
    assert_eq!(env["safety"]["enforce_types"], json!([SG]));
    for (args, needle) in [
        (
            vec!["--enforce-types", "aws.ec2.instance"],
            "aws.ec2.instance",
        ),
        (vec!["--ignore-paths", "tags..x"], "empty segment"),
    ] {
        let mut full = vec!["env", "set", ENV];
        full.extend(args);
        let bad = stack.cli(&full);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        assert!(bad.stderr.contains(needle), "{}", bad.stderr);
    }
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    ec2.create_tags()
        .resources(&sg)
        .tags(tag("CostCenter", "42"))
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        stack.drift(ENV, true).is_empty(),
        "an ignored attribute is not drift: {:#?}",
        stack.drift(ENV, true)
    );

    ec2.create_tags()
        .resources(&sg)
        .tags(tag("Owner", "mallory"))
        .tags(tag("CostCenter", "43"))
        .send()
        .await
        .unwrap();
    let healed = wait_for("the heal", Duration::from_secs(30), || {
        stack
            .drift(ENV, true)
            .into_iter()
            .find(|d| d["resource"]["id"] == sg.as_str() && d["status"] == "healed")
    });
    assert_eq!(healed["changes"].as_array().unwrap().len(), 1, "{healed:#}");
    assert_eq!(healed["changes"][0]["path"], "tags.Owner");
    let rem = &stack.remediations(ENV)[0];
    assert_eq!(rem["actions"], json!(["DeleteTags Owner"]));
    let out = ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = out.security_groups()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(
        tags,
        vec![("CostCenter".to_string(), "43".to_string())],
        "the ignored tag is left as it is"
    );

    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(
            aws_sdk_s3::types::Tag::builder()
                .key("x")
                .value("y")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("assets")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    let d = wait_for("the bucket drift", Duration::from_secs(30), || {
        open_drift_of(&stack, "assets")
            .into_iter()
            .find(|d| d["note"].as_str().is_some())
    });
    assert_eq!(
        d["note"],
        format!("not enforced: this environment enforces only {SG}")
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(stack
        .remediations(ENV)
        .iter()
        .all(|r| r["resource"]["type"] == SG));
}

/// Whole resources: by default an `added` resource is only reported and a
/// `removed` one too; with `--delete-added` / `--recreate-removed` the
/// decider deletes the first (never a bucket that holds objects) and
/// recreates the second from the baseline, attributes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_and_removed_resources_are_deleted_and_recreated_only_when_allowed() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let s3 = s3_client(&stack.moto.url, REGION);
    let iam = iam_client(&stack.moto.url);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let read = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let web = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    let vpc = ec2
        .describe_security_groups()
        .group_ids(&web)
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    s3.create_bucket().bucket("keep-me").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("keep-me")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("app-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app-role")
        .policy_name("read")
        .policy_document(read)
        .send()
        .await
        .unwrap();
    stack.create_env(ENV);
    stack.json(&["env", "set", ENV, "--flap-threshold", "0"]);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    // Outside holdfast: three new resources, two deleted.
    let rogue = ec2
        .create_security_group()
        .group_name("rogue")
        .description("made by hand")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    for b in ["rogue-empty", "rogue-data"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_object()
        .bucket("rogue-data")
        .key("precious.csv")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a,b\n"))
        .send()
        .await
        .unwrap();
    // keep-me's versions go too (it must be empty to be deleted).
    s3.delete_bucket().bucket("keep-me").send().await.unwrap();
    iam.delete_role_policy()
        .role_name("app-role")
        .policy_name("read")
        .send()
        .await
        .unwrap();
    iam.delete_role()
        .role_name("app-role")
        .send()
        .await
        .unwrap();

    let kinds = |stack: &Stack| -> Vec<(String, String)> {
        let mut k: Vec<(String, String)> = stack
            .drift(ENV, false)
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap().to_string(),
                    d["resource"]["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        k.sort();
        k
    };
    let expected: Vec<(String, String)> = vec![
        ("added".into(), "rogue-data".into()),
        ("added".into(), "rogue-empty".into()),
        ("added".into(), rogue.clone()),
        ("removed".into(), "app-role".into()),
        ("removed".into(), "keep-me".into()),
    ];
    let mut sorted = expected.clone();
    sorted.sort();
    wait_for(
        "five whole-resource drifts",
        Duration::from_secs(30),
        || (kinds(&stack) == sorted).then_some(()),
    );
    // Off by default: reported, nothing done, and the dry run says why.
    std::thread::sleep(Duration::from_secs(3));
    assert!(stack.remediations(ENV).is_empty());
    let plan = stack.json(&["enforcement", "plan", ENV]);
    for item in plan.as_array().unwrap() {
        let held = item["held"].as_str().unwrap();
        assert!(
            held.contains("--delete-added true") || held.contains("--recreate-removed true"),
            "{item}"
        );
    }
    assert_eq!(kinds(&stack), sorted);

    // Allowed: deleted and recreated, and the dry run showed how first.
    let env = stack.json(&[
        "env",
        "set",
        ENV,
        "--delete-added",
        "true",
        "--recreate-removed",
        "true",
    ]);
    assert_eq!(env["safety"]["delete_added"], true);
    wait_for(
        "added resources deleted and removed ones recreated",
        Duration::from_secs(60),
        || {
            let open = kinds(&stack);
            (open == vec![("added".to_string(), "rogue-data".to_string())]).then_some(())
        },
    );
    let gone = ec2
        .describe_security_groups()
        .group_ids(&rogue)
        .send()
        .await;
    assert!(gone.is_err(), "the rogue group is deleted: {gone:?}");
    assert!(s3.head_bucket().bucket("rogue-empty").send().await.is_err());
    // Data is never deleted: the bucket and its object stay, and the
    // remediation says why.
    let obj = s3
        .get_object()
        .bucket("rogue-data")
        .key("precious.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(obj.content_length(), Some(4));
    let rems = stack.remediations(ENV);
    let data = rems
        .iter()
        .find(|r| r["resource"]["id"] == "rogue-data")
        .unwrap();
    assert_eq!(data["status"], "failed", "{data:#}");
    assert!(
        data["journal"].to_string().contains("holds objects"),
        "{data:#}"
    );
    // Recreated with what the baseline holds (moto's versioning reply is
    // one the SDK rejects, so the baseline and the agent's verified re-read
    // stand in for reading it here).
    let b = stack.json(&["baseline", "show", ENV, "1"]);
    let keep_me = b["resources_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"]["id"] == "keep-me")
        .unwrap();
    assert_eq!(keep_me["attributes"]["versioning"]["status"], "enabled");
    let role = iam.get_role().role_name("app-role").send().await.unwrap();
    assert!(role.role().is_some());
    let inline = iam
        .get_role_policy()
        .role_name("app-role")
        .policy_name("read")
        .send()
        .await
        .unwrap();
    assert!(
        inline.policy_document().contains("s3%3AGetObject")
            || inline.policy_document().contains("s3:GetObject")
    );
    for id in ["keep-me", "app-role", "rogue-empty", rogue.as_str()] {
        let r = rems
            .iter()
            .find(|r| r["resource"]["id"] == id)
            .unwrap_or_else(|| panic!("a remediation of {id}: {rems:#?}"));
        assert_eq!(r["status"], "applied", "{r:#}");
        let steps: Vec<&str> = r["journal"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["step"].as_str().unwrap())
            .collect();
        assert!(steps.contains(&"verified"), "{id}: {steps:?}");
    }
    let keep = rems
        .iter()
        .find(|r| r["resource"]["id"] == "keep-me")
        .unwrap();
    assert!(
        keep["actions"].to_string().contains("CreateBucket keep-me"),
        "{keep:#}"
    );
    assert!(
        keep["actions"].to_string().contains("PutBucketVersioning"),
        "{keep:#}"
    );
}
