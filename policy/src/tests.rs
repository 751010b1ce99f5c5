//! Every built-in rule against its fixtures: canonical resources (checked
//! by the type's own validator) that must pass and that must fail.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn base(resource_type: &str) -> Value {
    let doc = |action: &str| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [action], "Resource": ["*"]}]});
    match resource_type {
        "aws.ec2.security_group" => {
            json!({"group_id": "sg-1", "name": "web", "description": "web tier", "vpc_id": "vpc-1", "tags": {}, "ingress": {}, "egress": {}})
        }
        "aws.s3.bucket" => json!({
            "name": "b",
            "encryption": {"algorithm": "AES256", "kms_key_id": null, "bucket_key": false},
            "versioning": {"status": "enabled", "mfa_delete": false},
            "public_access_block": {"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true},
            "policy": holdfast_core::policy_doc::normalize(&json!({"Version": "2012-10-17", "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})).unwrap(),
            "ownership_controls": "BucketOwnerEnforced",
            "acl": {"owner": "o1", "grants": {"user:o1:FULL_CONTROL": {"grantee_type": "canonical_user", "grantee": "o1", "permission": "FULL_CONTROL"}}},
            "logging": {"target_bucket": "logs", "target_prefix": "b/"},
            "tags": {}
        }),
        "aws.iam.role" => json!({
            "name": "app", "path": "/", "description": "", "max_session_duration": 3600,
            "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]},
            "inline_policies": {}, "attached_policies": {}, "permissions_boundary": "none", "tags": {}
        }),
        "aws.iam.policy" => {
            json!({"name": "p", "arn": "arn:aws:iam::123456789012:policy/p", "path": "/", "description": "", "document": doc("s3:GetObject"), "tags": {}})
        }
        "aws.iam.user" => json!({
            "name": "alice", "path": "/", "inline_policies": {}, "attached_policies": {}, "groups": {},
            "console_login": false, "access_keys": {}, "mfa_devices": {}, "permissions_boundary": "none", "tags": {}
        }),
        "aws.iam.password_policy" => json!({"policy": {
            "minimum_password_length": 14, "require_symbols": true, "require_numbers": true,
            "require_uppercase_characters": true, "require_lowercase_characters": true,
            "allow_users_to_change_password": true, "max_password_age": 90,
            "password_reuse_prevention": 24, "hard_expiry": false
        }}),
        other => panic!("no base resource for {other}"),
    }
}

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                    merge(t.get_mut(k).unwrap(), v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn resource(resource_type: &str, patch: &Value) -> Resource {
    let mut attributes = base(resource_type);
    merge(&mut attributes, patch);
    let info = holdfast_core::type_info(resource_type).unwrap();
    let attributes = (info.validate)(&attributes)
        .unwrap_or_else(|e| panic!("fixture {patch} is not a canonical {resource_type}: {e}"));
    Resource {
        resource_type: resource_type.to_string(),
        id: "fixture".into(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        attributes,
    }
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/fixtures")
}

fn check(p: &mut Policies, rule: &Rule, resource_type: &str, cases: &Value) -> usize {
    let mut n = 0;
    for (expect_fail, key) in [(false, "pass"), (true, "fail")] {
        for patch in cases[key].as_array().map(Vec::as_slice).unwrap_or_default() {
            let findings = p.evaluate(&[resource(resource_type, patch)]).unwrap();
            let mine: Vec<&Finding> = findings.iter().filter(|f| f.rule == rule.id).collect();
            assert_eq!(
                !mine.is_empty(),
                expect_fail,
                "{} on {resource_type} {patch}: expected it to {key}, findings {mine:?}",
                rule.id
            );
            n += 1;
        }
    }
    n
}

#[test]
fn every_builtin_rule_passes_and_fails_its_fixtures() {
    let mut p = Policies::builtin().unwrap();
    let rules = p.rules().to_vec();
    assert!(rules.len() >= 40, "{} rules", rules.len());
    for rule in &rules {
        let stem = rule
            .file
            .trim_start_matches("policies/")
            .trim_end_matches(".rego");
        let path = fixture_dir().join(format!("{stem}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "rule {} has no fixtures at {}: {e}",
                rule.id,
                path.display()
            )
        });
        let fx: Value = serde_json::from_str(&text).unwrap();
        let t = fx["type"].as_str().unwrap();
        assert!(
            rule.resource_types.iter().any(|r| r == t),
            "{}: fixture type {t}",
            rule.id
        );
        let mut n = check(&mut p, rule, t, &fx);
        for more in fx["also"].as_array().map(Vec::as_slice).unwrap_or_default() {
            n += check(&mut p, rule, more["type"].as_str().unwrap(), more);
        }
        assert!(
            fx["pass"].as_array().is_some_and(|a| !a.is_empty()),
            "{}: no passing fixture",
            rule.id
        );
        assert!(
            fx["fail"].as_array().is_some_and(|a| !a.is_empty()),
            "{}: no failing fixture",
            rule.id
        );
        assert!(n >= 2);
        // Rules that no source maps (COMPLIANCE-MAPPING.md rows with no
        // ids, and the added IAM-15/16, which it does not list).
        let unmapped = ["SG-09", "IAM-09", "IAM-10", "IAM-11", "IAM-15", "IAM-16"];
        assert!(
            !rule.controls.is_empty() || unmapped.contains(&rule.id.as_str()),
            "{} maps to no control",
            rule.id
        );
    }
}

#[test]
fn findings_name_the_rule_resource_and_reason() {
    let mut p = Policies::builtin().unwrap();
    let mut r = resource(
        "aws.ec2.security_group",
        &json!({"ingress": {"tcp:22-22:0.0.0.0/0": {"protocol": "tcp", "from_port": 22, "to_port": 22, "source": {"kind": "ipv4", "cidr": "0.0.0.0/0"}, "description": null}}}),
    );
    r.id = "sg-123".into();
    let findings = p.evaluate(&[r]).unwrap();
    let ssh = findings.iter().find(|f| f.rule == "SG-01").unwrap();
    assert_eq!(
        (ssh.resource.as_str(), ssh.severity),
        ("sg-123", Severity::High)
    );
    assert!(
        ssh.message.contains("tcp:22-22:0.0.0.0/0") && ssh.message.contains("SSH"),
        "{}",
        ssh.message
    );
}

#[test]
fn a_broken_user_rule_is_reported_with_file_and_line_and_the_rest_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.rego"),
        "package holdfast.rules.broken\n\nmetadata := {\n\t\"id\": \"X-1\",\n}\n\ndeny contains msg if {\n\tmsg := \n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.rego"),
        r#"package holdfast.rules.team_tags

metadata := {"id": "ORG-1", "title": "Buckets carry a team tag", "description": "Ownership.", "severity": "low",
  "resource_types": ["aws.s3.bucket"], "remediation": "Tag it.", "controls": {"soc2": ["CC1.3"]}}

deny contains "no team tag" if not input.attributes.tags.team
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("unknown_framework.rego"),
        r#"package holdfast.rules.odd
metadata := {"id": "ORG-2", "title": "t", "description": "d", "severity": "low", "resource_types": ["aws.s3.bucket"], "remediation": "r", "controls": {"fedramp": ["AC-1"]}}
deny contains "x" if false
"#,
    )
    .unwrap();
    let (mut p, errors) = Policies::load(Some(dir.path())).unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let broken = errors
        .iter()
        .find(|e| e.file.ends_with("broken.rego"))
        .unwrap();
    assert_eq!(broken.line, Some(8), "{broken}");
    assert!(broken.to_string().contains("broken.rego:8"), "{broken}");
    assert!(broken.reason.len() > 10, "says why: {broken}");
    assert!(
        broken.reason.starts_with("expecting"),
        "the parser's reason, without the excerpt: {broken}"
    );
    let odd = errors
        .iter()
        .find(|e| e.file.ends_with("unknown_framework.rego"))
        .unwrap();
    assert!(odd.reason.contains("fedramp"), "{odd}");
    assert!(p.rules().iter().any(|r| r.id == "ORG-1"));
    let findings = p
        .evaluate(&[resource("aws.s3.bucket", &json!({"encryption": "none"}))])
        .unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        ids.contains(&"ORG-1") && ids.contains(&"S3-01"),
        "built-in and user rules both work: {ids:?}"
    );
}

#[test]
fn a_rule_that_fails_at_evaluation_is_reported_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fragile.rego"),
        r#"package holdfast.rules.fragile
metadata := {"id": "ORG-3", "title": "t", "description": "d", "severity": "low", "resource_types": ["aws.s3.bucket"], "remediation": "r", "controls": {}}
deny contains "x" if object.get(input.attributes.encryption, "algorithm", "") == "AES256"
"#,
    )
    .unwrap();
    let (mut p, load_errors) = Policies::load(Some(dir.path())).unwrap();
    assert!(load_errors.is_empty(), "{load_errors:?}");
    let (findings, errors) = p
        .evaluate_all(&[resource("aws.s3.bucket", &json!({"encryption": "none"}))])
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].file.ends_with("fragile.rego"));
    assert!(
        findings.iter().any(|f| f.rule == "S3-01"),
        "built-ins still evaluated"
    );
}

#[test]
fn rules_know_which_attributes_they_read() {
    let p = Policies::builtin().unwrap();
    let rule = |id: &str| p.rules().iter().find(|r| r.id == id).unwrap().clone();
    assert_eq!(rule("SG-01").inputs, Some(vec!["ingress".to_string()]));
    assert_eq!(rule("S3-09").inputs, Some(vec!["acl.grants".to_string()]));
    // Through the helpers it imports.
    let iam01 = rule("IAM-01");
    let inputs = iam01.inputs.clone().unwrap();
    assert!(
        inputs.iter().any(|i| i.starts_with("document")),
        "{inputs:?}"
    );
    // Unknown values a rule reads make its result unknown; others do not.
    assert!(rule("SG-01").reads_any(&["ingress".into()]));
    assert!(!rule("SG-01").reads_any(&["egress".into(), "name".into()]));
    assert!(rule("S3-09").reads_any(&["acl".into()]));
    assert!(!rule("S3-09").reads_any(&["acl.owner".into()]));
    for r in p.rules() {
        assert!(r.inputs.is_some(), "{} reads input.attributes whole", r.id);
    }
}
