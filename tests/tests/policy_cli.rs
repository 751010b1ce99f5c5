//! The policy commands of the CLI: offline, no controller.
#![allow(clippy::unwrap_used)]

use holdfast_tests::*;

const NOWHERE: &str = "http://127.0.0.1:1";

#[test]
fn policy_list_shows_rules_with_their_controls_and_filters_by_framework() {
    let all = cli_json(NOWHERE, &["policy", "list"]);
    let rules = all.as_array().unwrap();
    assert!(rules.len() >= 17, "{}", rules.len());
    let ssh = rules.iter().find(|r| r["id"] == "SG-01").unwrap();
    assert_eq!(ssh["severity"], "high");
    assert_eq!(ssh["controls"]["cis-aws"], serde_json::json!(["5.3"]));
    let pci = cli_json(NOWHERE, &["policy", "list", "--framework", "pci-dss-v4"]);
    let pci = pci.as_array().unwrap();
    assert!(!pci.is_empty() && pci.len() < rules.len());
    assert!(pci
        .iter()
        .all(|r| r["controls"].get("pci-dss-v4").is_some()));
    let table = cli(NOWHERE, &["policy", "list", "--framework", "gdpr"]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains("gdpr: Art. 32"), "{}", table.stdout);

    let bad = cli(NOWHERE, &["policy", "list", "--framework", "fedramp"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown framework \"fedramp\"") && bad.stderr.contains("pci-dss-v4"),
        "{}",
        bad.stderr
    );
}

#[test]
fn policy_check_names_the_file_line_and_reason_of_a_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.rego"),
        "package holdfast.rules.team_tag\n\nmetadata := {\"id\": \"ORG-1\", \"title\": \"Team tag\", \"description\": \"d\", \"severity\": \"low\", \"resource_types\": [\"aws.s3.bucket\"], \"remediation\": \"r\", \"controls\": {}}\n\ndeny contains \"no team tag\" if not input.attributes.tags.team\n",
    )
    .unwrap();
    let good = cli(NOWHERE, &["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert!(good.stdout.contains("1 rule(s)"), "{}", good.stdout);

    std::fs::write(
        dir.path().join("broken.rego"),
        "package holdfast.rules.broken\n\ndeny contains msg if {\n\tmsg := \n}\n",
    )
    .unwrap();
    let bad = cli(NOWHERE, &["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stdout.contains("broken.rego:4: expecting"),
        "{}",
        bad.stdout
    );
    assert!(bad.stderr.contains("1 rule file(s)"), "{}", bad.stderr);
    // The good rule and the built-ins still load next to the broken one.
    let listed = cli(
        NOWHERE,
        &[
            "policy",
            "list",
            "--policies",
            dir.path().to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(listed.code, 2);
    let ids: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&"ORG-1".to_string()) && ids.contains(&"S3-01".to_string()),
        "{ids:?}"
    );
}
