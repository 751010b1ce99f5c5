//! `holdfast scan` on real Terraform plans, as CI runs it: exit codes,
//! SARIF validated against the SARIF 2.1.0 schema, JUnit that CI parsers
//! read, framework filtering, user rules, and clear errors for bad input.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use holdfast_tests::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    workspace_root()
        .join("tests/fixtures/tfplan")
        .join(name)
        .display()
        .to_string()
}

const FIXTURES: &[&str] = &[
    "checkov-tf0.12-terragoat-mixed-aws.json",
    "checkov-tf1.1-iam-inline-and-managed-policies.json",
    "checkov-tf1.2-s3-nested-modules-pab-acl.json",
    "checkov-tf1.3-s3-bucket-policy-from-data-source.json",
    "checkov-tf1.5-iam-oidc-roles-module-for-each.json",
    "checkov-tf1.9-sg-open-world-module-for-each.json",
    "trivy-tf1.0-s3-sse-split-and-sg.json",
    "trivy-tf1.14-s3-bucket-child-module.json",
];

/// The CLI offline (no controller).
fn scan(args: &[&str]) -> CliOutput {
    let mut all = vec!["scan"];
    all.extend_from_slice(args);
    cli("http://127.0.0.1:1", &all)
}

fn python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

/// Validates `doc` against the SARIF 2.1.0 schema with the reference
/// `jsonschema` implementation; Err carries the validator's message.
fn validate_sarif(doc: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, doc).unwrap();
    let schema = workspace_root().join(".tools/sarif-2.1.0.json");
    assert!(
        schema.exists(),
        "{} is missing: run deploy/dev/setup.sh",
        schema.display()
    );
    let out = Command::new(python())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft4Validator.check_schema(schema)\n\
             jsonschema.Draft4Validator(schema).validate(json.load(open(sys.argv[2])))\n",
        ])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    for f in FIXTURES {
        let out = scan(&[&fixture(f), "--format", "sarif", "--fail-on", "low"]);
        assert!(out.code == 0 || out.code == 1, "{f}: {}", out.stderr);
        validate_sarif(&out.stdout).unwrap_or_else(|e| panic!("{f}: {e}"));
        // One result per finding and per rule left unknown until apply.
        let sarif: Value = serde_json::from_str(&out.stdout).unwrap();
        let json = scan(&[&fixture(f), "--format", "json", "--fail-on", "low"]).json();
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(
            results.len(),
            json["findings"].as_array().unwrap().len() + json["unknown"].as_array().unwrap().len(),
            "{f}"
        );
        let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        for r in results {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(
                rules[i]["id"], r["ruleId"],
                "{f}: ruleIndex points at its rule"
            );
        }
    }
    // The validator does reject what is not SARIF.
    let out = scan(&[&fixture(FIXTURES[5]), "--format", "sarif"]);
    let mut broken: Value = serde_json::from_str(&out.stdout).unwrap();
    broken["runs"][0]["results"][0]["level"] = Value::String("fatal".into());
    assert!(validate_sarif(&broken.to_string()).is_err());
}

/// JUnit as CI parsers read it (checked with Python's XML parser): counts
/// on every suite agree with the cases, failures carry the message, and
/// rules left unknown are skipped cases.
#[test]
fn junit_output_is_well_formed_and_agrees_with_the_findings() {
    let plan = fixture("checkov-tf1.9-sg-open-world-module-for-each.json");
    let out = scan(&[&plan, "--format", "junit", "--fail-on", "low"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = Command::new(python())
        .args([
            "-c",
            "import sys, json, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             assert root.tag == 'testsuites', root.tag\n\
             total = dict(tests=0, failures=0, skipped=0)\n\
             for s in root.findall('testsuite'):\n\
             \x20   cases = s.findall('testcase')\n\
             \x20   f = sum(1 for c in cases if c.find('failure') is not None)\n\
             \x20   k = sum(1 for c in cases if c.find('skipped') is not None)\n\
             \x20   assert int(s.get('tests')) == len(cases), s.get('name')\n\
             \x20   assert int(s.get('failures')) == f and int(s.get('skipped')) == k, s.get('name')\n\
             \x20   total['tests'] += len(cases); total['failures'] += f; total['skipped'] += k\n\
             for k, v in total.items():\n\
             \x20   assert int(root.get(k)) == v, (k, root.get(k), v)\n\
             print(json.dumps(total))\n",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let totals: Value = serde_json::from_slice(&check.stdout).unwrap();
    let json = scan(&[&plan, "--format", "json", "--fail-on", "low"]).json();
    let failing_pairs: std::collections::BTreeSet<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["address"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(totals["failures"], failing_pairs.len());
    assert_eq!(totals["skipped"], json["summary"]["unknown"]);
    assert_eq!(
        totals["tests"].as_u64().unwrap(),
        failing_pairs.len() as u64
            + json["summary"]["unknown"].as_u64().unwrap()
            + json["summary"]["passed"].as_u64().unwrap()
    );
    assert!(out
        .stdout
        .contains("module.sg[&quot;bad_example&quot;].aws_security_group.bad"));
}

#[test]
fn exit_codes_follow_the_threshold() {
    let iam = fixture("checkov-tf1.1-iam-inline-and-managed-policies.json");
    // High (iam:* on * passes any role), medium and low findings; none
    // critical.
    let out = scan(&[&iam, "--fail-on", "critical"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("IAM-12"),
        "findings are listed: {}",
        out.stdout
    );
    let out = scan(&[&iam]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("2 finding(s) at or above high"),
        "{}",
        out.stderr
    );
    let out = scan(&[&iam, "--fail-on", "medium"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("3 finding(s) at or above medium"),
        "{}",
        out.stderr
    );

    let sg = fixture("checkov-tf1.9-sg-open-world-module-for-each.json");
    let out = scan(&[&sg, "--fail-on", "critical"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("Unknown until apply"), "{}", out.stdout);
    assert!(out.stdout.contains("reads egress"), "{}", out.stdout);

    // One framework: only its rules are applied.
    let all = scan(&[&sg, "--format", "json"]).json();
    let hipaa = scan(&[&sg, "--format", "json", "--framework", "hipaa"]).json();
    let rules = |v: &Value| -> std::collections::BTreeSet<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(rules(&hipaa).is_subset(&rules(&all)));
    for f in hipaa["findings"].as_array().unwrap() {
        assert!(f["controls"]["hipaa"].is_array(), "{f}");
    }
    assert!(
        rules(&hipaa).len() < rules(&all).len(),
        "{:?}",
        rules(&hipaa)
    );
}

#[test]
fn a_user_rule_judges_plans_like_live_resources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tags.rego"),
        r#"package holdfast.rules.require_owner_tag

metadata := {
	"id": "ORG-1",
	"title": "Security groups carry an Owner tag",
	"description": "Every group names its owner.",
	"severity": "critical",
	"resource_types": ["aws.ec2.security_group"],
	"remediation": "Add tags.Owner.",
	"controls": {"soc2": ["CC6.1"]},
}

deny contains msg if {
	not input.attributes.tags.Owner
	msg := "no Owner tag"
}
"#,
    )
    .unwrap();
    let plan = fixture("trivy-tf1.0-s3-sse-split-and-sg.json");
    let out = scan(&[
        &plan,
        "--policies",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "ORG-1" && f["address"] == "aws_security_group.sg"));
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let not_json = write("notjson.json", "terraform plan output, not JSON");
    let state = write(
        "state.json",
        r#"{"format_version": "1.0", "terraform_version": "1.9.5", "values": {"root_module": {}}}"#,
    );
    let future = write(
        "future.json",
        r#"{"format_version": "2.0", "planned_values": {"root_module": {}}}"#,
    );
    let no_actions = write(
        "noactions.json",
        r#"{"format_version": "1.2", "resource_changes": [{"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket", "name": "b", "change": {}}]}"#,
    );
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("broken.rego"),
        "package holdfast.rules.broken\n\nmetadata := {\n\t\"id\": \"X-1\",\n}\n\ndeny contains msg if {\n\tinput.attributes.name ==\n}\n",
    )
    .unwrap();
    let good = fixture("trivy-tf1.0-s3-sse-split-and-sg.json");
    let missing = dir.path().join("nope.json").display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec![&not_json], format!("{not_json}: not JSON")),
        (vec![&state], "looks like a state".into()),
        (
            vec![&future],
            "unsupported plan format_version \"2.0\"".into(),
        ),
        (
            vec![&no_actions],
            "aws_s3_bucket.b: change.actions is missing".into(),
        ),
        (vec![&missing], format!("cannot read {missing}")),
        (
            vec![&good, "--framework", "sox"],
            "unknown framework \"sox\"".into(),
        ),
        (
            vec![&good, "--policies", rules.path().to_str().unwrap()],
            "broken.rego:".into(),
        ),
        (
            vec![&good, "--fail-on", "severe"],
            "invalid value 'severe'".into(),
        ),
        (vec![&good, "--format", "xml"], "invalid value 'xml'".into()),
    ];
    for (args, expected) in cases {
        let out = scan(&args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&expected),
            "{args:?}: expected {expected:?} in {}",
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing on stdout: {}",
            out.stdout
        );
    }
}
