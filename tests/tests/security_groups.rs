#![allow(clippy::unwrap_used)]
//! End to end, with real etcd, the AWS emulator, the controller, an agent
//! and the CLI as separate processes on loopback.

use std::time::Duration;

use holdfast_tests::*;
use serde_json::{json, Value};

const ENV: &str = "prod";

fn paths(drift: &Value) -> Vec<String> {
    drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["path"].as_str().expect("path").to_string())
        .collect()
}

fn steps(rem: &Value) -> Vec<String> {
    rem["journal"]
        .as_array()
        .expect("journal")
        .iter()
        .map(|j| j["step"].as_str().unwrap().to_string())
        .collect()
}

/// The demo: a web group (443 open) is baselined; SSH is opened and HTTPS
/// closed by an independent client; one drift carries both changes; with
/// enforcement on, the group is healed (read back through the AWS API), the
/// drift marked healed, and the journal records every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_detects_one_drift_and_heals_it() {
    let stack = Stack::start("2s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    let b = stack.json(&["baseline", "create", ENV, "--reason", "initial"]);
    assert_eq!(b["version"], 1);
    let base = stack.json(&["baseline", "show", ENV]);
    assert!(base["resources_list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resource"]["id"] == sg.as_str()));

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

    let drift = wait_for("the drift", Duration::from_secs(30), || {
        let d = stack.drift(ENV, false);
        (d.len() == 1 && d[0]["changes"].as_array().map_or(0, |c| c.len()) == 2)
            .then(|| d[0].clone())
    });
    assert_eq!(drift["kind"], "modified");
    assert_eq!(drift["status"], "open");
    assert_eq!(
        drift["resource"],
        json!({"type": "aws.ec2.security_group", "id": sg, "account": ACCOUNT, "region": REGION})
    );
    assert_eq!(
        paths(&drift),
        vec![
            r#"ingress["tcp:22-22:0.0.0.0/0"]"#,
            r#"ingress["tcp:443-443:0.0.0.0/0"]"#
        ]
    );
    let ssh = &drift["changes"][0];
    assert_eq!(ssh["old"], Value::Null);
    assert_eq!(ssh["new"]["from_port"], 22);
    assert_eq!(
        ssh["new"]["source"],
        json!({"kind": "ipv4", "cidr": "0.0.0.0/0"})
    );
    let https = &drift["changes"][1];
    assert_eq!(https["old"]["from_port"], 443);
    assert_eq!(https["new"], Value::Null);
    assert!(drift["detected_at"].as_str().unwrap().ends_with('Z'));
    assert!(drift.get("healed_at").is_none());

    // In notify mode nothing is changed, however many collections pass.
    std::thread::sleep(Duration::from_secs(5));
    assert!(stack.remediations(ENV).is_empty());
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 22, 22, "0.0.0.0/0".into())]
    );
    assert_eq!(
        stack.drift(ENV, true).len(),
        1,
        "the same drift is recorded once"
    );

    let env = stack.json(&["enforcement", "set", ENV, "enforce"]);
    assert_eq!(env["enforcement"], "enforce");
    let healed = wait_for("the drift to heal", Duration::from_secs(30), || {
        let d = stack.drift(ENV, true);
        (d.len() == 1 && d[0]["status"] == "healed").then(|| d[0].clone())
    });
    assert_eq!(healed["id"], drift["id"]);
    assert!(healed["healed_at"].as_str().unwrap() >= healed["detected_at"].as_str().unwrap());
    assert!(stack.drift(ENV, false).is_empty());

    // Read back with the independent client: HTTPS open again, SSH closed.
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );

    let rems = stack.remediations(ENV);
    assert_eq!(rems.len(), 1, "exactly one remediation: {rems:#?}");
    let r = &rems[0];
    assert_eq!(r["status"], "applied");
    assert_eq!(r["drift_id"], drift["id"]);
    assert_eq!(steps(r), vec!["decided", "sent", "applied", "verified"]);
    assert_eq!(
        r["actions"],
        json!([
            "AuthorizeSecurityGroupIngress tcp 443-443 0.0.0.0/0",
            "RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"
        ])
    );
}

/// Unchanged groups, listed in a different rule order each time by nobody
/// in particular, over many collections: zero drift records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_groups_yield_no_drift_over_many_collections() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    create_group(
        &ec2,
        "a",
        vec![
            tcp(443, "0.0.0.0/0"),
            tcp(80, "10.0.0.0/8"),
            tcp(8443, "192.168.0.0/16"),
        ],
    )
    .await;
    create_group(
        &ec2,
        "b",
        vec![tcp(8443, "192.168.0.0/16"), tcp(80, "10.0.0.0/8")],
    )
    .await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    let mut seen = std::collections::BTreeSet::new();
    wait_for(
        "five more complete collections",
        Duration::from_secs(40),
        || {
            let p = stack.partition(ENV)?;
            assert_eq!(p["complete"], true, "{p}");
            seen.insert(p["collected_at"].as_str()?.to_string());
            (seen.len() >= 6).then_some(())
        },
    );
    assert_eq!(stack.drift(ENV, true), Vec::<Value>::new());
    assert!(stack.remediations(ENV).is_empty());
}

/// The emulator stops answering mid-run: the partition is marked failed with
/// the error, no `removed` drift and no remediation appear; when it answers
/// again, collections are complete and nothing spurious shows up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_outage_fails_the_partition_and_invents_nothing() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);

    stack.moto.proc.pause();
    let failed = wait_for("a failed partition", Duration::from_secs(40), || {
        let p = stack.partition(ENV)?;
        (p["complete"] == false).then_some(p)
    });
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("DescribeSecurityGroups"),
        "{failed}"
    );
    assert_eq!(stack.drift(ENV, true), Vec::<Value>::new());
    assert!(stack.remediations(ENV).is_empty());
    let status = stack.cli(&["env", "show", ENV]);
    assert!(status.stdout.contains("failed"), "{}", status.stdout);

    stack.moto.proc.resume();
    let mut complete = std::collections::BTreeSet::new();
    wait_for(
        "complete collections again",
        Duration::from_secs(40),
        || {
            let p = stack.partition(ENV)?;
            if p["complete"] == true {
                complete.insert(p["collected_at"].as_str()?.to_string());
            }
            (complete.len() >= 3).then_some(())
        },
    );
    assert_eq!(stack.drift(ENV, true), Vec::<Value>::new());
    assert!(stack.remediations(ENV).is_empty());
}

/// The group changes again between the controller's decision and the
/// agent's execution: the agent reports a conflict and changes nothing; the
/// next collection decides again from the new state and heals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_change_is_reported_as_conflict_not_overwritten() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV]);

    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the SSH drift", Duration::from_secs(30), || {
        (stack.drift(ENV, false).len() == 1).then_some(())
    });

    // Freeze the agent, change the group once more, then let the controller
    // decide on the state it saw (SSH open): the decision is now stale.
    let agent = stack.agent.as_ref().unwrap();
    agent.proc.pause();
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3389, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    let sent = wait_for("a remediation to be sent", Duration::from_secs(20), || {
        let r = stack.remediations(ENV);
        (r.len() == 1 && r[0]["status"] == "sent").then(|| r[0].clone())
    });
    assert_eq!(
        sent["planned_actions"],
        json!(["RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"])
    );
    agent.proc.resume();

    let conflict = wait_for("the conflict", Duration::from_secs(30), || {
        stack
            .remediations(ENV)
            .into_iter()
            .find(|r| r["id"] == sent["id"] && r["status"] != "sent")
    });
    assert_eq!(conflict["status"], "conflict", "{conflict:#}");
    assert_eq!(
        conflict["actions"],
        json!([]),
        "a conflicting remediation makes no call"
    );
    assert!(steps(&conflict).ends_with(&["conflict".to_string()]));
    let detail = conflict["journal"].as_array().unwrap().last().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("changed since the decision") && detail.contains("3389"),
        "{detail}"
    );

    // Then a fresh decision on the fresh state heals everything.
    wait_for("the group to heal", Duration::from_secs(30), || {
        let d = stack.drift(ENV, true);
        (d.len() == 1 && d[0]["status"] == "healed").then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    let rems = stack.remediations(ENV);
    let applied: Vec<&Value> = rems.iter().filter(|r| r["status"] == "applied").collect();
    assert_eq!(applied.len(), 1, "{rems:#?}");
    assert_eq!(
        applied[0]["actions"],
        json!([
            "RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0",
            "RevokeSecurityGroupIngress tcp 3389-3389 0.0.0.0/0"
        ])
    );
}

/// A controller restart keeps environments, baselines, drift history and
/// the journal; the agent reconnects by itself and the loop goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_keeps_everything_and_agent_reconnects() {
    let mut stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    stack.json(&["baseline", "create", ENV, "--reason", "first"]);
    stack.json(&["enforcement", "set", ENV, "enforce"]);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the heal", Duration::from_secs(30), || {
        let d = stack.drift(ENV, true);
        (d.len() == 1 && d[0]["status"] == "healed").then_some(())
    });
    let before = (
        stack.json(&["env", "show", ENV]),
        stack.json(&["baseline", "list", ENV]),
        stack.drift(ENV, true),
        stack.remediations(ENV),
    );

    let started = std::time::Instant::now();
    let status = stack.controller.restart().expect("restart");
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM stops the controller cleanly: {status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped within its shutdown deadline"
    );

    let env = stack.json(&["env", "show", ENV]);
    assert_eq!(env["enforcement"], "enforce");
    assert_eq!(env["current_baseline"], 1);
    assert_eq!(env["regions"], before.0["regions"]);
    assert_eq!(stack.json(&["baseline", "list", ENV]), before.1);
    assert_eq!(stack.drift(ENV, true), before.2);
    assert_eq!(stack.remediations(ENV), before.3);
    wait_for("the agent to reconnect", Duration::from_secs(30), || {
        stack.json(&["env", "show", ENV])["agent_connected"]
            .as_bool()
            .unwrap()
            .then_some(())
    });

    // The restarted controller still detects and heals.
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3306, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the second heal", Duration::from_secs(30), || {
        let d = stack.drift(ENV, true);
        (d.len() == 2 && d.iter().all(|d| d["status"] == "healed")).then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    assert_eq!(stack.remediations(ENV).len(), 2);
}

/// Bad input gets exit code 2, a failure reported by the controller exit
/// code 1, each with one clear line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_unknown_environments_have_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start().expect("etcd");
    let controller = Controller::start(&etcd.url, dir.path()).expect("controller");
    let run = |args: &[&str]| cli(&controller.url, args);
    let check = |args: &[&str], code: i32, needle: &str| {
        let out = run(args);
        assert_eq!(out.code, code, "holdfast {args:?}: {out:?}");
        assert!(
            out.stderr.contains(needle),
            "holdfast {args:?}: stderr {:?} lacks {needle:?}",
            out.stderr
        );
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line on stderr: {:?}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    };
    check(
        &["env", "create", "prod", "--regions", "us-east-1"],
        2,
        "--account",
    );
    check(
        &[
            "env",
            "create",
            "prod",
            "--account",
            "12345",
            "--regions",
            "us-east-1",
        ],
        2,
        "\"12345\"",
    );
    check(
        &[
            "env",
            "create",
            "prod",
            "--account",
            ACCOUNT,
            "--regions",
            "mars-1",
        ],
        2,
        "\"mars-1\"",
    );
    check(
        &[
            "env",
            "create",
            "Prod!",
            "--account",
            ACCOUNT,
            "--regions",
            "us-east-1",
        ],
        2,
        "\"Prod!\"",
    );
    check(
        &[
            "env",
            "create",
            "prod",
            "--account",
            ACCOUNT,
            "--regions",
            "us-east-1",
            "--resource-types",
            "aws.ec2.nope",
        ],
        2,
        "aws.ec2.nope",
    );
    check(&["enforcement", "set", "prod", "sometimes"], 2, "sometimes");
    check(&["frobnicate"], 2, "frobnicate");
    check(&["baseline", "show", "prod", "0"], 2, "VERSION");

    check(
        &["drift", "list", "nope"],
        1,
        "environment \"nope\" not found",
    );
    check(
        &["env", "show", "nope"],
        1,
        "environment \"nope\" not found",
    );
    check(&["enforcement", "set", "nope", "enforce"], 1, "not found");
    check(&["remediation", "list", "nope"], 1, "not found");

    let ok = run(&[
        "env",
        "create",
        "prod",
        "--account",
        ACCOUNT,
        "--regions",
        "us-east-1",
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    check(
        &[
            "env",
            "create",
            "prod",
            "--account",
            ACCOUNT,
            "--regions",
            "us-east-1",
        ],
        1,
        "already exists",
    );
    check(&["baseline", "show", "prod"], 1, "no baseline yet");
    check(
        &["baseline", "create", "prod"],
        1,
        "no agent is connected for account 123456789012",
    );

    let unreachable = cli(
        &format!("http://127.0.0.1:{}", free_port()),
        &["env", "list"],
    );
    assert_eq!(unreachable.code, 1, "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("cannot reach the controller"),
        "{unreachable:?}"
    );
    let bad_url = cli("not a url", &["env", "list"]);
    assert_eq!(bad_url.code, 2, "{bad_url:?}");
}

/// With no flags at all the controller runs on the embedded store in its
/// working directory, and what it stores survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_without_flags_uses_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let start = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("controller.log"))
            .unwrap();
        std::process::Command::new(bin("holdfast-controller"))
            .current_dir(dir.path())
            .env("HOLDFAST_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let mut child = start();
    wait_for("the controller", Duration::from_secs(20), || {
        (cli(&url, &["env", "list"]).code == 0).then_some(())
    });
    cli_json(
        &url,
        &[
            "env",
            "create",
            "laptop",
            "--account",
            ACCOUNT,
            "--regions",
            "eu-west-1",
        ],
    );
    assert!(dir.path().join("holdfast-data/holdfast.redb").exists());
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());

    let mut child = start();
    wait_for("the restarted controller", Duration::from_secs(20), || {
        (cli(&url, &["env", "list"]).code == 0).then_some(())
    });
    let env = cli_json(&url, &["env", "show", "laptop"]);
    assert_eq!(env["regions"], json!(["eu-west-1"]));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap();
    assert!(log.contains("using the embedded store"), "{log}");
}
