#![allow(clippy::type_complexity)]
use super::*;
use crate::diff::diff_values;
use crate::policy_doc::normalize;
use serde_json::json;

fn doc(action: &str) -> Value {
    normalize(&json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": action, "Resource": "*"}})).unwrap()
}

fn trust(service: &str) -> Value {
    normalize(&json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}})).unwrap()
}

fn role() -> Role {
    Role {
        name: "app".into(),
        path: "/".into(),
        description: "the app".into(),
        max_session_duration: 3600,
        trust_policy: trust("ec2.amazonaws.com"),
        inline_policies: [("read".to_string(), doc("s3:GetObject"))].into(),
        attached_policies: set(["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        permissions_boundary: Setting::None,
        tags: [("team".to_string(), "core".to_string())].into(),
    }
}

fn user() -> User {
    User {
        name: "alice".into(),
        path: "/".into(),
        inline_policies: BTreeMap::new(),
        attached_policies: set(["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        groups: set(["devs"]),
        console_login: true,
        access_keys: [(
            "AKIA1".to_string(),
            AccessKey {
                status: "Active".into(),
                created: "2026-01-02T03:04:05Z".into(),
            },
        )]
        .into(),
        mfa_devices: set(["arn:aws:iam::123456789012:mfa/alice"]),
        permissions_boundary: Setting::None,
        tags: BTreeMap::new(),
    }
}

fn policy() -> ManagedPolicy {
    ManagedPolicy {
        name: "deploy".into(),
        arn: "arn:aws:iam::123456789012:policy/deploy".into(),
        path: "/".into(),
        description: String::new(),
        document: doc("ec2:Describe*"),
        tags: BTreeMap::new(),
    }
}

fn lines(actions: Result<Vec<IamAction>, PlanError>) -> Vec<String> {
    actions.unwrap().iter().map(ToString::to_string).collect()
}

#[test]
fn values_round_trip_and_are_validated() {
    let r = role();
    assert_eq!(Role::from_value(&r.to_value()).unwrap(), r);
    assert_eq!(r.to_value()["permissions_boundary"], json!("none"));
    let u = user();
    assert_eq!(User::from_value(&u.to_value()).unwrap(), u);
    let p = policy();
    assert_eq!(ManagedPolicy::from_value(&p.to_value()).unwrap(), p);

    let mut v = r.to_value();
    v["trust_policy"] = json!({"Statement": {"Effect": "Allow"}});
    let e = Role::from_value(&v).unwrap_err();
    assert!(e.contains("trust_policy is not in canonical form"), "{e}");
    let mut v = u.to_value();
    v["access_keys"]["AKIA1"]["status"] = json!("Sleeping");
    let e = User::from_value(&v).unwrap_err();
    assert!(e.contains("AKIA1") && e.contains("Sleeping"), "{e}");
    let mut v = u.to_value();
    v["groups"]["devs"] = json!(false);
    assert!(User::from_value(&v)
        .unwrap_err()
        .contains("groups[\"devs\"]"));
}

#[test]
fn each_role_attribute_maps_to_its_own_call() {
    let base = role();
    let cases: Vec<(Box<dyn Fn(&mut Role)>, &str, Vec<&str>)> = vec![
        (
            Box::new(|r| r.trust_policy = trust("lambda.amazonaws.com")),
            "trust_policy",
            vec!["UpdateAssumeRolePolicy (baseline document)"],
        ),
        (
            Box::new(|r| r.description = "changed".into()),
            "description",
            vec!["UpdateRole description=\"the app\" max_session_duration=3600"],
        ),
        (
            Box::new(|r| r.max_session_duration = 43200),
            "max_session_duration",
            vec!["UpdateRole description=\"the app\" max_session_duration=3600"],
        ),
        (
            Box::new(|r| {
                r.inline_policies.insert("read".into(), doc("s3:*"));
            }),
            "inline_policies.read",
            vec!["PutRolePolicy read"],
        ),
        (
            Box::new(|r| {
                r.inline_policies.insert("extra".into(), doc("*"));
            }),
            "inline_policies.extra",
            vec!["DeleteRolePolicy extra"],
        ),
        (
            Box::new(|r| r.attached_policies.clear()),
            "attached_policies",
            vec!["AttachRolePolicy arn:aws:iam::aws:policy/ReadOnlyAccess"],
        ),
        (
            Box::new(|r| {
                r.attached_policies
                    .insert("arn:aws:iam::aws:policy/AdministratorAccess".into(), true);
            }),
            "attached_policies",
            vec!["DetachRolePolicy arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
        (
            Box::new(|r| {
                r.permissions_boundary = Setting::Set("arn:aws:iam::123456789012:policy/b".into())
            }),
            "permissions_boundary",
            vec!["DeleteRolePermissionsBoundary"],
        ),
        (
            Box::new(|r| {
                r.tags.insert("team".into(), "other".into());
                r.tags.insert("x".into(), "y".into());
            }),
            "tags",
            vec!["TagRole team=core", "UntagRole x"],
        ),
    ];
    for (mutate, path, want) in cases {
        let mut current = base.clone();
        mutate(&mut current);
        let changes = diff_values(&base.to_value(), &current.to_value());
        assert!(
            changes.iter().all(|c| c.path.starts_with(path)),
            "{path}: {changes:?}"
        );
        assert_eq!(lines(plan_role(&base, &current)), want, "{path}");
    }
    let mut moved = base.clone();
    moved.path = "/other/".into();
    assert!(matches!(
        plan_role(&base, &moved),
        Err(PlanError::Unenforceable(_))
    ));
    assert!(plan_role(&base, &base).unwrap().is_empty());
}

#[test]
fn several_role_changes_are_one_plan_with_grants_before_removals() {
    let base = role();
    let mut current = base.clone();
    current.attached_policies = set(["arn:aws:iam::aws:policy/AdministratorAccess"]);
    current.inline_policies.clear();
    current.trust_policy = trust("lambda.amazonaws.com");
    assert_eq!(
        lines(plan_role(&base, &current)),
        vec![
            "UpdateAssumeRolePolicy (baseline document)",
            "PutRolePolicy read",
            "AttachRolePolicy arn:aws:iam::aws:policy/ReadOnlyAccess",
            "DetachRolePolicy arn:aws:iam::aws:policy/AdministratorAccess",
        ]
    );
}

#[test]
fn policy_document_drift_creates_a_default_version() {
    let base = policy();
    let mut current = base.clone();
    current.document = doc("*");
    assert_eq!(
        lines(plan_policy(&base, &current)),
        vec!["CreatePolicyVersion (baseline document, as default)"]
    );
    let mut described = base.clone();
    described.description = "changed".into();
    match plan_policy(&base, &described) {
        Err(PlanError::Unenforceable(r)) => assert!(r.contains("description"), "{r}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_user_attribute_maps_to_its_own_call() {
    let base = user();
    let cases: Vec<(Box<dyn Fn(&mut User)>, Vec<&str>)> = vec![
        (
            Box::new(|u| {
                u.inline_policies.insert("inline".into(), doc("*"));
            }),
            vec!["DeleteUserPolicy inline"],
        ),
        (
            Box::new(|u| u.attached_policies.clear()),
            vec!["AttachUserPolicy arn:aws:iam::aws:policy/ReadOnlyAccess"],
        ),
        (
            Box::new(|u| {
                u.groups.insert("admins".into(), true);
            }),
            vec!["RemoveUserFromGroup admins"],
        ),
        (Box::new(|u| u.groups.clear()), vec!["AddUserToGroup devs"]),
        (
            Box::new(|u| u.access_keys.get_mut("AKIA1").unwrap().status = "Inactive".into()),
            vec!["UpdateAccessKey AKIA1 Active"],
        ),
        (
            Box::new(|u| u.permissions_boundary = Setting::Set("arn:b".into())),
            vec!["DeleteUserPermissionsBoundary"],
        ),
        (
            Box::new(|u| {
                u.tags.insert("k".into(), "v".into());
            }),
            vec!["UntagUser k"],
        ),
    ];
    for (mutate, want) in cases {
        let mut current = base.clone();
        mutate(&mut current);
        assert_eq!(lines(plan_user(&base, &current)), want);
    }
    let mut no_console = base.clone();
    no_console.console_login = false;
    assert_eq!(
        lines(plan_user(&no_console, &base)),
        vec!["DeleteLoginProfile"]
    );
}

#[test]
fn unrestorable_user_changes_are_unenforceable() {
    let base = user();
    let unenforceable = |current: &User, needle: &str| match plan_user(&base, current) {
        Err(PlanError::Unenforceable(r)) => assert!(r.contains(needle), "{r}"),
        other => panic!("expected unenforceable ({needle}), got {other:?}"),
    };
    let mut c = base.clone();
    c.console_login = false;
    c.groups.clear();
    unenforceable(&c, "console access");
    let mut c = base.clone();
    c.access_keys.clear();
    unenforceable(&c, "cannot be recreated");
    let mut c = base.clone();
    c.access_keys.insert(
        "AKIA2".into(),
        AccessKey {
            status: "Active".into(),
            created: "2026-02-02T03:04:05Z".into(),
        },
    );
    unenforceable(&c, "AKIA2");
    let mut c = base.clone();
    c.mfa_devices.clear();
    unenforceable(&c, "MFA");
}
