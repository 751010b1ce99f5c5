#![allow(clippy::type_complexity)]
use super::*;
use crate::canonical::Hash;
use crate::diff::diff_values;
use proptest::prelude::*;
use serde_json::json;

const OWNER: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

fn bucket() -> Bucket {
    Bucket {
        name: "logs".into(),
        encryption: Setting::Set(Encryption {
            algorithm: "AES256".into(),
            kms_key_id: None,
            bucket_key: false,
        }),
        versioning: Versioning {
            status: VersioningStatus::Enabled,
            mfa_delete: false,
        },
        public_access_block: Setting::Set(PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }),
        policy: Setting::None,
        ownership_controls: Setting::Set("BucketOwnerPreferred".into()),
        acl: Acl {
            owner: OWNER.into(),
            grants: normalize_grants(vec![owner_grant()]).unwrap(),
        },
        logging: Setting::None,
        tags: [("team".to_string(), "data".to_string())].into(),
    }
}

fn owner_grant() -> RawGrant {
    RawGrant {
        grantee_type: "CanonicalUser".into(),
        id: Some(OWNER.to_uppercase()),
        permission: "FULL_CONTROL".into(),
        ..Default::default()
    }
}

fn all_users(permission: &str) -> RawGrant {
    RawGrant {
        grantee_type: "Group".into(),
        uri: Some("http://acs.amazonaws.com/groups/global/AllUsers".into()),
        permission: permission.into(),
        ..Default::default()
    }
}

fn summaries(desired: &Bucket, current: &Bucket) -> Vec<String> {
    plan(desired, current)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn canonical_value_round_trips_and_absence_is_explicit() {
    let b = bucket();
    let v = b.to_value();
    assert_eq!(v["policy"], json!("none"));
    assert_eq!(v["logging"], json!("none"));
    assert_eq!(v["versioning"]["status"], json!("enabled"));
    assert_eq!(Bucket::from_value(&v).unwrap(), b);
    let key = format!("user:{OWNER}:FULL_CONTROL");
    assert!(v["acl"]["grants"].get(&key).is_some(), "{v}");
}

#[test]
fn validation_names_what_is_wrong() {
    let mut v = bucket().to_value();
    v["acl"]["grants"] =
        json!({"wrong": {"grantee_type": "group", "grantee": "x", "permission": "READ"}});
    let e = Bucket::from_value(&v).unwrap_err();
    assert!(e.contains("grant key \"wrong\""), "{e}");
    let mut v = bucket().to_value();
    v["policy"] = json!({"Statement": {"Effect": "Allow"}});
    let e = Bucket::from_value(&v).unwrap_err();
    assert!(e.contains("not in canonical form"), "{e}");
    let mut v = bucket().to_value();
    v["surprise"] = json!(1);
    assert!(Bucket::from_value(&v).unwrap_err().contains("surprise"));
}

#[test]
fn grant_spellings_are_one() {
    let a = normalize_grants(vec![all_users("READ"), owner_grant()]).unwrap();
    let b = normalize_grants(vec![
        owner_grant(),
        RawGrant {
            grantee_type: "group".into(),
            uri: Some("http://acs.amazonaws.com/groups/global/AllUsers".into()),
            permission: "read".into(),
            ..Default::default()
        },
        all_users("READ"),
    ])
    .unwrap();
    assert_eq!(a, b);
    assert!(a.contains_key("group:global/AllUsers:READ"));
    let e = normalize_grants(vec![RawGrant {
        grantee_type: "Robot".into(),
        permission: "READ".into(),
        ..Default::default()
    }])
    .unwrap_err();
    assert!(e.contains("Robot"), "{e}");
    let e = normalize_grants(vec![all_users("EVERYTHING")]).unwrap_err();
    assert!(e.contains("EVERYTHING"), "{e}");
}

fn grant_strategy() -> impl Strategy<Value = RawGrant> {
    (
        prop::sample::select(vec![
            ("CanonicalUser", "abc123"),
            ("CanonicalUser", "def456"),
            ("Group", "http://acs.amazonaws.com/groups/global/AllUsers"),
            ("Group", "http://acs.amazonaws.com/groups/s3/LogDelivery"),
            ("AmazonCustomerByEmail", "ops@example.com"),
        ]),
        prop::sample::select(vec![
            "FULL_CONTROL",
            "READ",
            "WRITE",
            "READ_ACP",
            "WRITE_ACP",
        ]),
    )
        .prop_map(|((kind, who), permission)| {
            let mut g = RawGrant {
                grantee_type: kind.into(),
                permission: permission.into(),
                ..Default::default()
            };
            match kind {
                "CanonicalUser" => g.id = Some(who.into()),
                "Group" => g.uri = Some(who.into()),
                _ => g.email = Some(who.into()),
            }
            g
        })
}

fn with_grants(grants: Vec<RawGrant>) -> Hash {
    let mut b = bucket();
    b.acl.grants = normalize_grants(grants).unwrap();
    Hash::of(&b.to_value())
}

proptest! {
    #[test]
    fn grant_order_case_and_duplicates_do_not_change_the_hash(
        grants in prop::collection::vec(grant_strategy(), 0..8),
        seed in any::<u64>(),
    ) {
        let mut shuffled = grants.clone();
        // A deterministic shuffle, a duplicate and a case change.
        let n = shuffled.len();
        if n > 1 {
            shuffled.rotate_left((seed as usize) % n);
            shuffled.reverse();
        }
        if let Some(first) = grants.first() {
            let mut dup = first.clone();
            dup.permission = dup.permission.to_ascii_lowercase();
            dup.id = dup.id.map(|s| s.to_ascii_uppercase());
            shuffled.push(dup);
        }
        prop_assert_eq!(with_grants(grants), with_grants(shuffled));
    }

    #[test]
    fn a_different_grant_set_hashes_differently(
        grants in prop::collection::btree_set(0usize..25, 1..6),
        drop in any::<prop::sample::Index>(),
    ) {
        // 25 distinct grants: 5 grantees x 5 permissions.
        let all: Vec<RawGrant> = {
            let mut v = Vec::new();
            for (kind, who) in [("CanonicalUser","abc123"),("CanonicalUser","def456"),("Group","http://acs.amazonaws.com/groups/global/AllUsers"),("Group","http://acs.amazonaws.com/groups/s3/LogDelivery"),("AmazonCustomerByEmail","ops@example.com")] {
                for p in ["FULL_CONTROL","READ","WRITE","READ_ACP","WRITE_ACP"] {
                    let mut g = RawGrant { grantee_type: kind.into(), permission: p.into(), ..Default::default() };
                    match kind { "CanonicalUser" => g.id = Some(who.into()), "Group" => g.uri = Some(who.into()), _ => g.email = Some(who.into()) }
                    v.push(g);
                }
            }
            v
        };
        let chosen: Vec<usize> = grants.into_iter().collect();
        let fewer: Vec<usize> = chosen.iter().copied().enumerate().filter(|(i, _)| *i != drop.index(chosen.len())).map(|(_, g)| g).collect();
        let a = with_grants(chosen.iter().map(|i| all[*i].clone()).collect());
        let b = with_grants(fewer.iter().map(|i| all[*i].clone()).collect());
        prop_assert_ne!(a, b);
    }
}

#[test]
fn each_attribute_maps_to_its_own_call() {
    let base = bucket();
    let cases: Vec<(Box<dyn Fn(&mut Bucket)>, &str, &str)> = vec![
        (Box::new(|b| b.encryption = Setting::None), "encryption", "PutBucketEncryption AES256"),
        (
            Box::new(|b| b.versioning.status = VersioningStatus::Suspended),
            "versioning.status",
            "PutBucketVersioning Enabled",
        ),
        (
            Box::new(|b| b.public_access_block = Setting::None),
            "public_access_block",
            "PutPublicAccessBlock BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true",
        ),
        (
            Box::new(|b| {
                b.policy = Setting::Set(
                    crate::policy_doc::normalize(&json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"}})).unwrap(),
                )
            }),
            "policy",
            "DeleteBucketPolicy",
        ),
        (
            Box::new(|b| b.ownership_controls = Setting::Set("ObjectWriter".into())),
            "ownership_controls",
            "PutBucketOwnershipControls BucketOwnerPreferred",
        ),
        (
            Box::new(|b| {
                b.acl.grants = normalize_grants(vec![owner_grant(), all_users("READ")]).unwrap()
            }),
            "acl.grants[\"group:global/AllUsers:READ\"]",
            "PutBucketAcl user:75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a:FULL_CONTROL",
        ),
        (
            Box::new(|b| {
                b.logging = Setting::Set(Logging {
                    target_bucket: "audit".into(),
                    target_prefix: "logs/".into(),
                })
            }),
            "logging",
            "PutBucketLogging disabled",
        ),
        (Box::new(|b| b.tags.clear()), "tags.team", "PutBucketTagging team=data"),
    ];
    for (mutate, path, call) in cases {
        let mut current = base.clone();
        mutate(&mut current);
        let changes = diff_values(&base.to_value(), &current.to_value());
        assert!(
            changes.iter().any(|c| c.path.starts_with(path)),
            "{path}: {changes:?}"
        );
        assert_eq!(summaries(&base, &current), vec![call.to_string()], "{path}");
        // And the reverse direction restores the other way.
        assert_eq!(plan(&current, &base).unwrap().len(), 1, "{path} reversed");
    }
}

#[test]
fn several_attributes_make_one_plan_touching_only_them() {
    let base = bucket();
    let mut current = base.clone();
    current.encryption = Setting::None;
    current.public_access_block = Setting::None;
    current.tags.insert("owner".into(), "mallory".into());
    assert_eq!(
        summaries(&base, &current),
        vec![
            "PutBucketEncryption AES256".to_string(),
            "PutPublicAccessBlock BlockPublicAcls=true IgnorePublicAcls=true BlockPublicPolicy=true RestrictPublicBuckets=true".into(),
            "PutBucketTagging team=data".into(),
        ]
    );
    assert!(plan(&base, &base).unwrap().is_empty());
}

#[test]
fn unenforceable_transitions_make_no_call() {
    let mut base = bucket();
    base.versioning.status = VersioningStatus::Disabled;
    let mut current = base.clone();
    current.versioning.status = VersioningStatus::Suspended;
    current.tags.clear();
    match plan(&base, &current) {
        Err(PlanError::Unenforceable(r)) => assert!(r.contains("never-enabled"), "{r}"),
        other => panic!("expected unenforceable, got {other:?}"),
    }
    let base = bucket();
    let mut current = base.clone();
    current.versioning.mfa_delete = true;
    assert!(matches!(
        plan(&base, &current),
        Err(PlanError::Unenforceable(_))
    ));
    let mut current = base.clone();
    current.acl.owner = "someone-else".into();
    assert!(matches!(
        plan(&base, &current),
        Err(PlanError::Unenforceable(_))
    ));
    // Enabled → Suspended and back are fine.
    let mut suspended = base.clone();
    suspended.versioning.status = VersioningStatus::Suspended;
    assert_eq!(
        summaries(&suspended, &base),
        vec!["PutBucketVersioning Suspended"]
    );
}

#[test]
fn acl_and_ownership_are_ordered_so_neither_call_is_refused() {
    let mut enforced = bucket();
    enforced.ownership_controls = Setting::Set("BucketOwnerEnforced".into());
    let mut open = bucket();
    open.ownership_controls = Setting::Set("ObjectWriter".into());
    open.acl.grants = normalize_grants(vec![owner_grant(), all_users("READ")]).unwrap();
    let to_enforced = summaries(&enforced, &open);
    assert!(
        to_enforced[0].starts_with("PutBucketAcl"),
        "{to_enforced:?}"
    );
    assert!(to_enforced[1].starts_with("PutBucketOwnershipControls BucketOwnerEnforced"));
    let to_open = summaries(&open, &enforced);
    assert!(
        to_open[0].starts_with("PutBucketOwnershipControls ObjectWriter"),
        "{to_open:?}"
    );
    assert!(to_open[1].starts_with("PutBucketAcl"));
}
