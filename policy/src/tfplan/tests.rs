//! Real Terraform plans (tests/fixtures/tfplan, see SOURCES.md there) as
//! canonical resources: joins by value and by reference, modules and
//! for_each, unknown values, and bad input.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::Policies;

fn fixture(name: &str) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tfplan")
        .join(name);
    parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn res<'a>(plan: &'a Plan, address: &str) -> &'a PlanResource {
    plan.resources
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| {
            panic!(
                "no {address} in {:?}",
                plan.resources
                    .iter()
                    .map(|r| &r.address)
                    .collect::<Vec<_>>()
            )
        })
}

fn verdicts(plan: &Plan) -> Verdicts {
    judge(&mut Policies::builtin().unwrap(), plan).unwrap()
}

fn failed(v: &Verdicts, rule: &str, address: &str) -> bool {
    v.findings
        .iter()
        .any(|f| f.rule == rule && f.resource == address)
}

fn undecided(v: &Verdicts, rule: &str, address: &str) -> bool {
    v.undecided
        .iter()
        .any(|u| u.rule == rule && u.resource == address)
}

fn passed(v: &Verdicts, rule: &str, address: &str) -> bool {
    v.passed.iter().any(|(r, a)| r == rule && a == address)
}

#[test]
fn every_resource_is_canonical_for_its_type() {
    for f in std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tfplan"),
    )
    .unwrap()
    {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let plan = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(!plan.resources.is_empty(), "{}", path.display());
        for r in &plan.resources {
            let info = holdfast_core::type_info(&r.resource.resource_type).unwrap();
            (info.validate)(&r.resource.attributes)
                .unwrap_or_else(|e| panic!("{} in {}: {e}", r.address, path.display()));
        }
    }
}

#[test]
fn module_instances_of_a_for_each_call_are_judged_one_by_one() {
    let plan = fixture("checkov-tf1.9-sg-open-world-module-for-each.json");
    let v = verdicts(&plan);
    for key in ["awful_example", "bad_example", "terrible_example"] {
        let address = format!("module.sg[\"{key}\"].aws_security_group.bad");
        let r = res(&plan, &address);
        assert_eq!(r.name, key);
        // Ingress is known (all protocols from the world); egress is not.
        assert!(r.resource.attributes["ingress"]["all:*:0.0.0.0/0"].is_object());
        assert!(r.unknown.contains(&"egress".to_string()), "{:?}", r.unknown);
        assert!(failed(&v, "SG-07", &address));
        assert!(failed(&v, "SG-01", &address));
        assert!(undecided(&v, "SG-09", &address), "egress is unknown");
    }
    // Not AWS resources holdfast models: counted, never judged.
    assert_eq!(plan.not_judged.get("aws_route53_zone"), Some(&2));
}

#[test]
fn a_split_encryption_resource_with_an_unknown_bucket_is_joined_by_reference() {
    let plan = fixture("trivy-tf1.0-s3-sse-split-and-sg.json");
    let b = res(&plan, "aws_s3_bucket.planbucket");
    assert_eq!(
        b.joined,
        ["aws_s3_bucket_server_side_encryption_configuration.example"]
    );
    let a = &b.resource.attributes;
    assert_eq!(a["encryption"]["algorithm"], "AES256");
    assert_eq!(a["encryption"]["bucket_key"], true);
    assert_eq!(a["versioning"]["status"], "enabled");
    assert_eq!(a["logging"]["target_bucket"], "iac-tfsec-dev");
    // The inline ACL and policy are computed by the provider: unknown.
    assert!(b.unknown.contains(&"acl".to_string()));
    assert!(b.unknown.contains(&"policy".to_string()));
    let v = verdicts(&plan);
    assert!(passed(&v, "S3-01", &b.address), "encrypted");
    assert!(passed(&v, "S3-06", &b.address), "versioned");
    assert!(passed(&v, "S3-08", &b.address), "logged");
    assert!(undecided(&v, "S3-09", &b.address), "ACL unknown");
    assert!(undecided(&v, "S3-05", &b.address), "policy unknown");
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn nested_modules_join_public_access_blocks_and_acls_through_conditional_references() {
    let plan = fixture("checkov-tf1.2-s3-nested-modules-pab-acl.json");
    assert_eq!(plan.resources.len(), 4);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let v = verdicts(&plan);
    let registry = "module.s3_bucket.aws_s3_bucket.this[0]";
    // All four flags false, and a public-read-write ACL.
    assert!(failed(&v, "S3-03", registry));
    assert!(failed(&v, "S3-09", registry));
    for ok in [
        "aws_s3_bucket.root_bucket",
        "module.s3_module.aws_s3_bucket.module_bucket",
        "module.s3_module.module.s3_submodule.aws_s3_bucket.submodule_bucket",
    ] {
        assert!(passed(&v, "S3-03", ok), "{ok}");
        assert_eq!(res(&plan, ok).joined.len(), 1, "{ok}");
    }
    assert_eq!(res(&plan, registry).joined.len(), 2);
}

#[test]
fn iam_policies_join_their_role_by_reference_and_their_user_by_name() {
    let plan = fixture("checkov-tf1.1-iam-inline-and-managed-policies.json");
    let role = res(&plan, "aws_iam_role.example");
    assert_eq!(role.joined, ["aws_iam_role_policy.fail_1"]);
    assert!(role.resource.attributes["inline_policies"]["example"].is_object());
    let user = res(&plan, "aws_iam_user.fail_3");
    assert_eq!(user.name, "example");
    assert_eq!(user.joined, ["aws_iam_user_policy.fail_3"]);
    let v = verdicts(&plan);
    assert!(
        failed(&v, "IAM-03", "aws_iam_user.fail_3"),
        "inline policy on a user"
    );
    assert!(failed(&v, "IAM-12", "aws_iam_policy.policy_pass"), "s3:*");
    // The role's managed policies are computed: rules on them are unknown.
    assert!(undecided(&v, "IAM-02", "aws_iam_role.example"));
    assert_eq!(plan.not_judged.get("aws_iam_group"), Some(&1));
}

#[test]
fn trust_policies_unknown_until_apply_are_not_judged() {
    let plan = fixture("checkov-tf1.5-iam-oidc-roles-module-for-each.json");
    let v = verdicts(&plan);
    let address = "module.poc.aws_iam_role.r1[\"p1\"]";
    assert!(res(&plan, address).unknown.contains(&"trust_policy".into()));
    let trust_rules: Vec<&str> = v
        .undecided
        .iter()
        .filter(|u| u.resource == address && u.attributes.contains(&"trust_policy".to_string()))
        .map(|u| u.rule.as_str())
        .collect();
    assert!(!trust_rules.is_empty(), "{:?}", v.undecided);
}

#[test]
fn old_plans_with_inline_bucket_settings_and_canned_acls_are_read() {
    let plan = fixture("checkov-tf0.12-terragoat-mixed-aws.json");
    assert_eq!(plan.format_version, "0.1");
    let v = verdicts(&plan);
    assert!(failed(&v, "S3-09", "aws_s3_bucket.data"), "public-read");
    assert!(failed(&v, "SG-01", "aws_security_group.web-node"));
    assert!(
        failed(&v, "S3-01", "aws_s3_bucket.operations"),
        "no encryption block"
    );
    // Its encryption names a KMS key created by the same plan.
    assert!(undecided(&v, "S3-01", "aws_s3_bucket.logs"));
    assert!(
        !failed(&v, "S3-09", "aws_s3_bucket.logs"),
        "log-delivery-write is not public"
    );
}

#[test]
fn the_v6_provider_region_attribute_is_the_resource_region() {
    let plan = fixture("trivy-tf1.14-s3-bucket-child-module.json");
    assert_eq!(plan.resources.len(), 1);
    let r = &plan.resources[0];
    assert!(r.address.starts_with("module.s3_bucket."), "{}", r.address);
    assert_eq!(r.resource.region, "eu-west-1");
    // Without it, the provider's region.
    let plan = fixture("checkov-tf1.9-sg-open-world-module-for-each.json");
    let region = plan
        .resources
        .iter()
        .map(|r| r.resource.region.as_str())
        .collect::<BTreeSet<_>>();
    assert_eq!(region.len(), 1, "{region:?}");
}

#[test]
fn bad_input_is_named() {
    let err = |text: &str| parse(text).unwrap_err().0;
    assert!(err("not json").contains("not JSON"));
    assert!(err("[]").contains("not a JSON object"));
    assert!(err(r#"{"planned_values": {}}"#).contains("no format_version"));
    assert!(err(r#"{"format_version": "2.0", "planned_values": {}}"#)
        .contains("unsupported plan format_version \"2.0\""));
    assert!(err(r#"{"format_version": "1.0", "values": {}}"#).contains("looks like a state"));
    assert!(err(r#"{"format_version": "1.2", "resource_changes": [{"mode": "managed", "type": "aws_s3_bucket", "name": "b", "address": "aws_s3_bucket.b"}]}"#)
        .contains("aws_s3_bucket.b: change.actions is missing"));
    assert!(err(r#"{"format_version": "1.2", "resource_changes": {}}"#)
        .contains("resource_changes is not a list"));
}

#[test]
fn deleted_resources_are_not_judged_and_planned_values_alone_are_read() {
    let plan = parse(
        r#"{"format_version": "1.2", "resource_changes": [
            {"address": "aws_security_group.gone", "mode": "managed", "type": "aws_security_group", "name": "gone",
             "change": {"actions": ["delete"], "after": null, "after_unknown": {}}}]}"#,
    )
    .unwrap();
    assert!(plan.resources.is_empty());
    let plan = parse(
        r#"{"format_version": "1.2", "planned_values": {"root_module": {"child_modules": [{"address": "module.m",
            "resources": [{"address": "module.m.aws_security_group.a", "mode": "managed", "type": "aws_security_group", "name": "a",
              "values": {"name": "a", "description": "d", "ingress": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}], "egress": []}}]}]}}}"#,
    )
    .unwrap();
    let v = verdicts(&plan);
    assert!(failed(&v, "SG-01", "module.m.aws_security_group.a"));
}

#[test]
fn split_security_group_rules_join_their_group() {
    let plan = parse(
        r#"{"format_version": "1.2",
          "resource_changes": [
            {"address": "aws_security_group.web", "mode": "managed", "type": "aws_security_group", "name": "web",
             "change": {"actions": ["create"], "after": {"name": "web", "description": "d", "tags": null},
                        "after_unknown": {"id": true, "ingress": true, "egress": true}}},
            {"address": "aws_vpc_security_group_ingress_rule.ssh", "mode": "managed", "type": "aws_vpc_security_group_ingress_rule", "name": "ssh",
             "change": {"actions": ["create"], "after": {"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv4": "0.0.0.0/0"},
                        "after_unknown": {"id": true, "security_group_id": true, "arn": true, "security_group_rule_id": true}}},
            {"address": "aws_security_group_rule.out", "mode": "managed", "type": "aws_security_group_rule", "name": "out",
             "change": {"actions": ["create"], "after": {"type": "egress", "protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["10.0.0.0/8"]},
                        "after_unknown": {"id": true, "security_group_id": true}}}
          ],
          "configuration": {"root_module": {"resources": [
            {"address": "aws_vpc_security_group_ingress_rule.ssh", "expressions": {"security_group_id": {"references": ["aws_security_group.web.id", "aws_security_group.web"]}}},
            {"address": "aws_security_group_rule.out", "expressions": {"security_group_id": {"references": ["aws_security_group.web.id", "aws_security_group.web"]}}}
          ]}}}"#,
    )
    .unwrap();
    let sg = res(&plan, "aws_security_group.web");
    assert_eq!(sg.joined.len(), 2);
    assert!(
        !sg.unknown.contains(&"ingress".to_string()),
        "{:?}",
        sg.unknown
    );
    assert!(sg.resource.attributes["egress"]["all:*:10.0.0.0/8"].is_object());
    let v = verdicts(&plan);
    assert!(failed(&v, "SG-01", "aws_security_group.web"));
    assert!(
        passed(&v, "SG-09", "aws_security_group.web"),
        "egress only to 10/8"
    );
}

#[test]
fn the_account_password_policy_is_judged() {
    let plan = parse(
        r#"{"format_version": "1.2", "resource_changes": [
            {"address": "aws_iam_account_password_policy.strict", "mode": "managed", "type": "aws_iam_account_password_policy", "name": "strict",
             "change": {"actions": ["create"], "after": {"minimum_password_length": 10, "require_symbols": true, "require_numbers": true,
                "require_uppercase_characters": true, "require_lowercase_characters": true, "max_password_age": 60,
                "password_reuse_prevention": 24}, "after_unknown": {"expire_passwords": true, "hard_expiry": true, "id": true}}}],
          "configuration": {"root_module": {"resources": [{"address": "aws_iam_account_password_policy.strict",
             "expressions": {"minimum_password_length": {"constant_value": 10}}}]}}}"#,
    )
    .unwrap();
    let v = verdicts(&plan);
    let a = "aws_iam_account_password_policy.strict";
    assert!(failed(&v, "ACCT-01", a), "10 < 14");
    assert!(passed(&v, "ACCT-02", a));
    assert!(passed(&v, "ACCT-03", a));
    assert!(passed(&v, "ACCT-04", a));
    assert!(failed(&v, "ACCT-05", a));
    // hard_expiry is left out of the configuration: IAM's default (false).
    assert!(
        res(&plan, a).unknown.is_empty(),
        "{:?}",
        res(&plan, a).unknown
    );
    assert_eq!(
        res(&plan, a).resource.attributes["policy"]["hard_expiry"],
        false
    );
}
