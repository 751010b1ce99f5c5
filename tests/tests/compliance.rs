//! Compliance in the controller: scheduled scans kept as history across a
//! change, on-demand scans, waivers that apply and expire by themselves,
//! the `--require-compliant` baseline gate, and clear errors for bad input.
//! Real etcd, emulator, controller, agent and CLI.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use holdfast_controller::store::etcd::EtcdStore;
use holdfast_controller::store::{Store, Txn};
use holdfast_tests::*;
use serde_json::Value;

const ENV: &str = "prod";

fn history(stack: &Stack) -> Vec<Value> {
    stack
        .json(&["compliance", "history", ENV])
        .as_array()
        .cloned()
        .unwrap()
}

/// The findings of `rule` on `resource` in a scan document.
fn findings_of<'a>(scan: &'a Value, rule: &str, resource: &str) -> Vec<&'a Value> {
    scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule && f["resource"] == resource)
        .collect()
}

/// The control of `framework` that `rule` maps to, in a scan document.
fn control_of<'a>(scan: &'a Value, framework: &str, rule: &str) -> &'a Value {
    scan["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["framework"] == framework)
        .unwrap_or_else(|| panic!("no totals for {framework}: {scan}"))["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rules"].as_array().unwrap().iter().any(|r| r == rule))
        .unwrap_or_else(|| panic!("no {framework} control maps {rule}"))
}

fn in_seconds(s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Scheduled scans record the posture before and after SSH is opened to
/// the world; a waiver turns the finding into "waived" (and its control
/// passes), then expires by itself and the finding fails again; history is
/// pruned to its limit, and all of it is in the verified audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_scans_keep_history_across_a_change_and_waivers_apply_then_expire() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
    stack.create_env(ENV);
    let env = stack.json(&[
        "compliance",
        "set",
        ENV,
        "--frameworks",
        "cis-aws,pci-dss-v4",
        "--scan-interval",
        "2s",
    ]);
    assert_eq!(
        env["compliance"]["frameworks"],
        serde_json::json!(["cis-aws", "pci-dss-v4"])
    );

    // Before the change: scheduled scans run, SG-01 does not fail on web.
    let first = wait_for("a scheduled scan", Duration::from_secs(60), || {
        history(&stack).first().cloned()
    });
    assert_eq!(first["trigger"], "schedule");
    let before = stack.json(&["compliance", "report", ENV, "--scan", "1"]);
    assert!(before["resources"].as_u64().unwrap() >= 2, "{before}");
    assert!(findings_of(&before, "SG-01", &sg).is_empty(), "{before}");
    assert_eq!(
        before["frameworks"],
        serde_json::json!(["cis-aws", "pci-dss-v4"])
    );
    let totals: Vec<&str> = before["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["framework"].as_str().unwrap())
        .collect();
    assert_eq!(totals, ["cis-aws", "pci-dss-v4"]);
    // The account's default group fails SG-05 (it allows traffic): an
    // accepted exception here, so that CIS 5.3 depends on SG-01 alone.
    stack.json(&[
        "waiver",
        "add",
        ENV,
        "--rule",
        "SG-05",
        "--resource",
        "sg-*",
        "--reason",
        "default VPC, unused",
        "--expires",
        &in_seconds(3600),
    ]);

    // The change: SSH open to the world, made outside holdfast.
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    let changed = wait_for(
        "a scheduled scan that sees SSH open",
        Duration::from_secs(60),
        || {
            let latest = stack.json(&["compliance", "report", ENV]);
            (!findings_of(&latest, "SG-01", &sg).is_empty()).then_some(latest)
        },
    );
    assert_eq!(changed["trigger"], "schedule");
    let f = findings_of(&changed, "SG-01", &sg)[0].clone();
    assert_eq!(f["status"], "failed");
    assert_eq!(f["severity"], "high");
    let control = control_of(&changed, "cis-aws", "SG-01");
    assert_eq!(control["passed"], false, "{control}");
    assert!(control["failed"].as_u64().unwrap() >= 1);
    // History shows the posture over time: the scan that first saw it
    // reports it as newly failing, and failures went up.
    let scans = history(&stack);
    let ids: Vec<u64> = scans.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    let first_seen = scans
        .iter()
        .find(|s| {
            let r = stack.json(&["compliance", "report", ENV, "--scan", &s["id"].to_string()]);
            r["newly_failing"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["rule"] == "SG-01" && k["resource"] == sg.as_str())
        })
        .expect("a scan reports SG-01 on web as newly failing");
    assert!(
        first_seen["failed"].as_u64().unwrap() > first["failed"].as_u64().unwrap(),
        "{first} then {first_seen}"
    );
    // For people: a table of controls, then the findings.
    let table = stack.cli(&["compliance", "report", ENV]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let rows: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter()
            .any(|r| r.len() > 2 && r[0] == "cis-aws" && r[1] == "5.3" && r[2] == "FAIL"),
        "{}",
        table.stdout
    );
    assert!(
        rows.iter().any(|r| r.first() == Some(&"failed")
            && r.contains(&"SG-01")
            && r.contains(&sg.as_str())),
        "{}",
        table.stdout
    );
    let hist = stack.cli(&["compliance", "history", ENV]);
    assert!(
        hist.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("schedule")),
        "{}",
        hist.stdout
    );
    // One framework only.
    let pci = stack.json(&["compliance", "report", ENV, "--framework", "pci-dss-v4"]);
    assert_eq!(pci["totals"].as_array().unwrap().len(), 1);
    assert_eq!(pci["totals"][0]["framework"], "pci-dss-v4");

    // A waiver: reported as waived, not failed, and the control passes
    // (nothing else fails it).
    let expires = in_seconds(12);
    let w = stack.json(&[
        "waiver",
        "add",
        ENV,
        "--rule",
        "SG-01",
        "--resource",
        "sg-*",
        "--reason",
        "bastion until the VPN lands",
        "--expires",
        &expires,
    ]);
    let waiver_id = w["id"].as_str().unwrap().to_string();
    let waived = stack.json(&["compliance", "scan", ENV]);
    assert_eq!(waived["trigger"], "on demand");
    let f = findings_of(&waived, "SG-01", &sg)[0].clone();
    assert_eq!(f["status"], "waived", "{f}");
    assert_eq!(f["waiver"], waiver_id.as_str());
    let control = control_of(&waived, "cis-aws", "SG-01");
    assert_eq!(control["passed"], true, "{control}");
    assert!(control["waived"].as_u64().unwrap() >= 1);
    assert_eq!(
        stack
            .json(&["waiver", "list", ENV])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // It expires by itself: the next scan fails the finding again.
    wait_for("the waiver to expire", Duration::from_secs(30), || {
        (stack
            .json(&["waiver", "list", ENV])
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });
    let expired = stack.json(&["compliance", "scan", ENV]);
    let f = findings_of(&expired, "SG-01", &sg)[0].clone();
    assert_eq!(f["status"], "failed", "{f}");
    assert!(
        expired["newly_failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["rule"] == "SG-01" && k["resource"] == sg.as_str()),
        "an expired waiver is a regression: {}",
        expired["newly_failing"]
    );
    let all = stack.json(&["waiver", "list", ENV, "--all"]);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == waiver_id.as_str()),
        "{all}"
    );

    // History is kept to its limit.
    stack.json(&[
        "compliance",
        "set",
        ENV,
        "--keep",
        "3",
        "--scan-interval",
        "0",
    ]);
    stack.json(&["compliance", "scan", ENV]);
    let kept = history(&stack);
    assert_eq!(kept.len(), 3, "{kept:#?}");
    assert_eq!(
        kept.last().unwrap()["id"].as_u64().unwrap(),
        kept[0]["id"].as_u64().unwrap() + 2
    );

    // All of it is on the record, and the record verifies.
    let audit = stack.json(&["audit", "list", ENV]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "compliance.settings",
        "compliance.scan",
        "waiver.add",
        "compliance.prune",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let out = stack.cli(&["audit", "verify", ENV]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // A finding quietly removed from a stored scan is found out.
    let store = EtcdStore::connect(
        std::slice::from_ref(&stack.etcd.url),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let last = kept.last().unwrap()["id"].as_u64().unwrap();
    let part = format!("/holdfast/v1/scan-detail/{ENV}/{last:020}/{:06}", 1);
    let mut findings: Value =
        serde_json::from_slice(&store.get(&part).await.unwrap().unwrap().value).unwrap();
    findings.as_array_mut().unwrap().pop();
    store
        .commit(Txn::new().put(part, serde_json::to_vec(&findings).unwrap()))
        .await
        .unwrap();
    let bad = stack.cli(&["audit", "verify", ENV]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(
        bad.stdout.contains(&format!(
            "the findings of compliance scan {last} were altered or removed"
        )),
        "{}",
        bad.stdout
    );
}

/// `baseline create --require-compliant` refuses a snapshot with unwaived
/// findings at or above the severity and lists them; waivers let it pass;
/// `baseline approve --require-compliant` gates a candidate the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_compliant_refuses_a_failing_snapshot_and_lists_the_findings() {
    let stack = Stack::start("1s").expect("stack");
    let ec2 = stack.ec2().await;
    let sg = create_group(&ec2, "bastion", vec![tcp(22, "0.0.0.0/0")]).await;
    stack.create_env(ENV);

    let out = stack.cli(&["baseline", "create", ENV, "--require-compliant"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("baseline not created"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("SG-01 (high) on aws.ec2.security_group {sg}")),
        "{}",
        out.stderr
    );
    assert!(
        stack
            .json(&["baseline", "list", ENV])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
    // Critical only: SSH open is high, so this one passes the gate… unless
    // the account has critical findings, which the message would name.
    let stderr_lines = out.stderr.clone();
    assert!(
        !stderr_lines.contains("(low)"),
        "below the threshold: {stderr_lines}"
    );

    // Waive everything the gate named, and it passes.
    // Each is "RULE (severity) on TYPE ID: message".
    let words: Vec<&str> = out.stderr.split_whitespace().collect();
    let named: Vec<(String, String)> = words
        .windows(5)
        .filter(|w| w[1].starts_with('(') && w[1].ends_with(')') && w[2] == "on")
        .map(|w| {
            (
                w[0].trim_start_matches("high:").to_string(),
                w[4].trim_end_matches(':').to_string(),
            )
        })
        .collect();
    assert!(
        named.iter().any(|(r, id)| r == "SG-01" && id == &sg),
        "{named:?}"
    );
    let expires = in_seconds(3600);
    let mut sg01_waiver = String::new();
    for (rule, resource) in &named {
        let w = stack.json(&[
            "waiver",
            "add",
            ENV,
            "--rule",
            rule,
            "--resource",
            resource,
            "--reason",
            "accepted for the test",
            "--expires",
            &expires,
        ]);
        if rule == "SG-01" {
            sg01_waiver = w["id"].as_str().unwrap().to_string();
        }
    }
    let created = stack.json(&["baseline", "create", ENV, "--require-compliant", "high"]);
    assert_eq!(created["version"], 1, "{created}");

    // Without the SG-01 waiver a candidate is not approved.
    stack.json(&["waiver", "remove", ENV, &sg01_waiver]);
    let candidate = stack.json(&["baseline", "create", ENV, "--candidate"]);
    assert_eq!(candidate["version"], 2);
    let out = stack.cli(&["baseline", "approve", ENV, "2", "--require-compliant"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("baseline not approved"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SG-01"), "{}", out.stderr);
    assert_eq!(stack.json(&["env", "show", ENV])["current_baseline"], 1);

    // A drift's compliance consequence leaves out what a waiver covers:
    // RDP opened (SG-03, waived) and SSH over IPv6 (SG-02, not waived).
    stack.json(&[
        "waiver",
        "add",
        ENV,
        "--rule",
        "SG-03",
        "--resource",
        &sg,
        "--reason",
        "jump host",
        "--expires",
        &expires,
    ]);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3389, "0.0.0.0/0"))
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ipv6_ranges(
                    aws_sdk_ec2::types::Ipv6Range::builder()
                        .cidr_ipv6("::/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drift = wait_for("the drift", Duration::from_secs(30), || {
        stack.drift(ENV, false).into_iter().find(|d| {
            d["resource"]["id"] == sg.as_str() && d["changes"].as_array().unwrap().len() == 2
        })
    });
    let failing: Vec<&str> = drift["compliance"]["newly_failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(failing.contains(&"SG-02"), "{failing:?}");
    assert!(!failing.contains(&"SG-03"), "SG-03 is waived: {failing:?}");
}

/// Bad input gets a clear message and exit code 2; nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compliance_input_is_rejected_with_exit_2() {
    let stack = Stack::start("1s").expect("stack");
    stack.create_env(ENV);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["compliance", "set", ENV, "--frameworks", "nist-9000"],
            "unknown framework \"nist-9000\"",
        ),
        (
            vec!["compliance", "report", ENV, "--framework", "sox"],
            "unknown framework \"sox\"",
        ),
        (
            vec![
                "waiver",
                "add",
                ENV,
                "--rule",
                "NOPE-1",
                "--resource",
                "*",
                "--reason",
                "r",
                "--expires",
                "2099-01-01",
            ],
            "no rule \"NOPE-1\"",
        ),
        (
            vec![
                "waiver",
                "add",
                ENV,
                "--rule",
                "SG-01",
                "--resource",
                "*",
                "--reason",
                "r",
                "--expires",
                "2020-01-01",
            ],
            "in the past",
        ),
        (
            vec![
                "waiver",
                "add",
                ENV,
                "--rule",
                "SG-01",
                "--resource",
                "*",
                "--reason",
                "r",
                "--expires",
                "next tuesday",
            ],
            "neither a date",
        ),
        (
            vec!["baseline", "create", ENV, "--require-compliant", "severe"],
            "invalid value 'severe'",
        ),
    ];
    for (args, expected) in cases {
        let out = stack.cli(&args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {}",
            out.stderr
        );
    }
    let env = stack.json(&["env", "show", ENV]);
    assert_eq!(env["compliance"]["frameworks"], serde_json::json!([]));
    assert_eq!(env["waivers"], serde_json::json!([]));
    // No scan yet: a report says how to make one.
    let out = stack.cli(&["compliance", "report", ENV]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("has not been scanned yet"),
        "{}",
        out.stderr
    );
}
