use super::*;
use crate::canonical::Hash;
use crate::diff::diff_values;
use proptest::prelude::*;

fn perm(proto: &str, from: i32, to: i32, cidrs: &[&str]) -> RawPermission {
    RawPermission {
        protocol: proto.into(),
        from_port: Some(from),
        to_port: Some(to),
        ipv4: cidrs.iter().map(|c| (c.to_string(), None)).collect(),
        ..Default::default()
    }
}

fn raw(ingress: Vec<RawPermission>) -> RawSecurityGroup {
    RawSecurityGroup {
        group_id: "sg-1".into(),
        name: "web".into(),
        description: "web tier".into(),
        vpc_id: Some("vpc-1".into()),
        owner_account: "123456789012".into(),
        tags: vec![("Name".into(), "web".into())],
        ingress,
        egress: vec![RawPermission {
            protocol: "-1".into(),
            ipv4: vec![("0.0.0.0/0".into(), None)],
            ..Default::default()
        }],
    }
}

fn hash(raw: RawSecurityGroup) -> Hash {
    Hash::of(&SecurityGroup::from_raw(raw).unwrap().to_value())
}

#[test]
fn protocol_numbers_and_names_are_one() {
    let a = hash(raw(vec![perm("6", 443, 443, &["0.0.0.0/0"])]));
    let b = hash(raw(vec![perm("tcp", 443, 443, &["0.0.0.0/0"])]));
    assert_eq!(a, b);
    let sg = SecurityGroup::from_raw(raw(vec![])).unwrap();
    let all = sg.egress.values().next().unwrap();
    assert_eq!(all.protocol, "all");
    assert_eq!(all.key(), "all:*:0.0.0.0/0");
    assert_eq!(all.api_protocol(), "-1");
}

#[test]
fn empty_description_is_absent_and_own_account_reference_is_local() {
    let mut p = perm("tcp", 80, 80, &[]);
    p.groups = vec![
        (
            "sg-2".into(),
            Some("123456789012".into()),
            Some(String::new()),
        ),
        (
            "sg-3".into(),
            Some("999999999999".into()),
            Some("peer".into()),
        ),
    ];
    let sg = SecurityGroup::from_raw(raw(vec![p])).unwrap();
    let keys: Vec<&String> = sg.ingress.keys().collect();
    assert_eq!(keys, vec!["tcp:80-80:999999999999/sg-3", "tcp:80-80:sg-2"]);
    assert_eq!(sg.ingress["tcp:80-80:sg-2"].description, None);
}

#[test]
fn invalid_input_is_named() {
    let mut r = raw(vec![perm("", 1, 1, &["10.0.0.0/8"])]);
    assert_eq!(
        SecurityGroup::from_raw(r.clone()).unwrap_err(),
        NormalizeError::MissingProtocol {
            group: "sg-1".into()
        }
    );
    r.group_id = String::new();
    assert_eq!(
        SecurityGroup::from_raw(r).unwrap_err(),
        NormalizeError::MissingId
    );
    let err = SecurityGroup::from_raw(raw(vec![perm("tcp", 1, 1, &[""])])).unwrap_err();
    assert!(err.to_string().contains("IPv4 CIDR"), "{err}");
}

#[test]
fn from_value_rejects_tampered_keys_and_unknown_fields() {
    let sg = SecurityGroup::from_raw(raw(vec![perm("tcp", 22, 22, &["10.0.0.0/8"])])).unwrap();
    let mut v = sg.to_value();
    assert_eq!(SecurityGroup::from_value(&v).unwrap(), sg);
    let rule = v["ingress"]["tcp:22-22:10.0.0.0/8"].clone();
    v["ingress"] = serde_json::json!({"tcp:23-23:10.0.0.0/8": rule});
    let err = SecurityGroup::from_value(&v).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
    let mut v = sg.to_value();
    v["extra"] = serde_json::json!(1);
    assert!(SecurityGroup::from_value(&v).unwrap_err().contains("extra"));
}

/// Each kind of rule change yields exactly the expected change paths.
#[test]
fn each_rule_change_has_its_path() {
    let base = SecurityGroup::from_raw(raw(vec![perm("tcp", 443, 443, &["0.0.0.0/0"])])).unwrap();
    let paths = |sg: &SecurityGroup| -> Vec<String> {
        diff_values(&base.to_value(), &sg.to_value())
            .into_iter()
            .map(|c| c.path)
            .collect()
    };

    // Opened SSH and closed HTTPS: two changes, one per rule.
    let mut m = base.clone();
    m.ingress.clear();
    let ssh = Rule {
        protocol: "tcp".into(),
        from_port: Some(22),
        to_port: Some(22),
        source: Source::Ipv4 {
            cidr: "0.0.0.0/0".into(),
        },
        description: None,
    };
    m.ingress.insert(ssh.key(), ssh);
    assert_eq!(
        paths(&m),
        vec![
            r#"ingress["tcp:22-22:0.0.0.0/0"]"#,
            r#"ingress["tcp:443-443:0.0.0.0/0"]"#
        ]
    );
    let changes = diff_values(&base.to_value(), &m.to_value());
    assert_eq!(changes[0].old, serde_json::Value::Null);
    assert_eq!(changes[0].new["from_port"], 22);
    assert_eq!(changes[1].new, serde_json::Value::Null);

    // A description only.
    let mut m = base.clone();
    m.ingress.values_mut().next().unwrap().description = Some("https".into());
    assert_eq!(
        paths(&m),
        vec![r#"ingress["tcp:443-443:0.0.0.0/0"].description"#]
    );

    // IPv6, prefix list and group sources on egress.
    for source in [
        Source::Ipv6 {
            cidr: "::/0".into(),
        },
        Source::PrefixList {
            prefix_list_id: "pl-1".into(),
        },
        Source::Group {
            group_id: "sg-9".into(),
            account: Some("111122223333".into()),
        },
    ] {
        let mut m = base.clone();
        let r = Rule {
            protocol: "udp".into(),
            from_port: Some(53),
            to_port: Some(53),
            source,
            description: None,
        };
        let key = r.key();
        m.egress.insert(key.clone(), r);
        assert_eq!(
            paths(&m),
            vec![format!("egress[{}]", serde_json::to_string(&key).unwrap())]
        );
    }

    // Tags.
    let mut m = base.clone();
    m.tags.insert("Name".into(), "other".into());
    m.tags.insert("team".into(), "a".into());
    assert_eq!(paths(&m), vec!["tags.Name", "tags.team"]);
}

#[test]
fn plan_closes_ssh_and_reopens_https_grants_first() {
    let base = SecurityGroup::from_raw(raw(vec![perm("tcp", 443, 443, &["0.0.0.0/0"])])).unwrap();
    let drifted = SecurityGroup::from_raw(raw(vec![perm("tcp", 22, 22, &["0.0.0.0/0"])])).unwrap();
    let actions = plan(&base, &drifted).unwrap();
    let lines: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "AuthorizeSecurityGroupIngress tcp 443-443 0.0.0.0/0",
            "RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"
        ]
    );
    assert!(plan(&base, &base).unwrap().is_empty());
}

#[test]
fn plan_refuses_immutable_fields() {
    let base = SecurityGroup::from_raw(raw(vec![])).unwrap();
    let mut other = base.clone();
    other.description = "changed".into();
    assert!(matches!(
        plan(&base, &other),
        Err(PlanError::Unenforceable(_))
    ));
}

// ---- property tests ----

fn arb_source() -> impl Strategy<Value = (u8, u8)> {
    (0u8..4, 0u8..4)
}

/// A permission list built from a small alphabet so that collisions happen.
/// (protocol index, port index, [(source kind, source number)]) per permission.
type PermSpec = Vec<(u8, u8, Vec<(u8, u8)>)>;

fn arb_perms() -> impl Strategy<Value = PermSpec> {
    prop::collection::vec(
        (0u8..3, 0u8..3, prop::collection::vec(arb_source(), 0..4)),
        0..5,
    )
}

fn build_perms(spec: &PermSpec) -> Vec<RawPermission> {
    let protos = ["tcp", "udp", "-1"];
    spec.iter()
        .map(|(p, port, sources)| {
            let mut perm = RawPermission {
                protocol: protos[*p as usize].into(),
                from_port: Some(*port as i32 * 100),
                to_port: Some(*port as i32 * 100 + 10),
                ..Default::default()
            };
            for (kind, n) in sources {
                match kind {
                    0 => perm.ipv4.push((format!("10.{n}.0.0/16"), None)),
                    1 => perm
                        .ipv6
                        .push((format!("2001:db8:{n}::/48"), Some(format!("v6 {n}")))),
                    2 => perm.prefix_lists.push((format!("pl-{n}"), None)),
                    _ => perm.groups.push((format!("sg-{n}"), None, None)),
                }
            }
            perm
        })
        .collect()
}

/// Splits every permission into one permission per source.
fn split(perms: &[RawPermission]) -> Vec<RawPermission> {
    let mut out = Vec::new();
    for p in perms {
        let base = RawPermission {
            protocol: p.protocol.clone(),
            from_port: p.from_port,
            to_port: p.to_port,
            ..Default::default()
        };
        for s in &p.ipv4 {
            out.push(RawPermission {
                ipv4: vec![s.clone()],
                ..base.clone()
            });
        }
        for s in &p.ipv6 {
            out.push(RawPermission {
                ipv6: vec![s.clone()],
                ..base.clone()
            });
        }
        for s in &p.prefix_lists {
            out.push(RawPermission {
                prefix_lists: vec![s.clone()],
                ..base.clone()
            });
        }
        for s in &p.groups {
            out.push(RawPermission {
                groups: vec![s.clone()],
                ..base.clone()
            });
        }
    }
    out
}

#[allow(clippy::ptr_arg)]
fn dedup_spec(spec: &mut PermSpec) {
    // Duplicate-free: no (protocol, port, source) twice, as in a real group.
    let mut seen = std::collections::BTreeSet::new();
    for (p, port, sources) in spec.iter_mut() {
        sources.retain(|s| seen.insert((if *p == 2 { 9 } else { *port }, *p, *s)));
    }
}

proptest! {
    #[test]
    fn rule_order_and_grouping_do_not_change_the_hash(
        mut spec in arb_perms(),
        seed in any::<u64>(),
    ) {
        dedup_spec(&mut spec);
        let perms = build_perms(&spec);
        let original = hash(raw(perms.clone()));

        // Any permutation of permissions and of sources within them.
        let mut shuffled = perms.clone();
        let mut s = seed;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        for i in (1..shuffled.len()).rev() { let j = (next() % (i as u64 + 1)) as usize; shuffled.swap(i, j); }
        for p in &mut shuffled {
            p.ipv4.reverse();
            p.groups.reverse();
            for i in (1..p.ipv6.len()).rev() { let j = (next() % (i as u64 + 1)) as usize; p.ipv6.swap(i, j); }
        }
        prop_assert_eq!(original, hash(raw(shuffled)));

        // Split into one permission per source, then reversed.
        let mut parts = split(&perms);
        parts.reverse();
        prop_assert_eq!(original, hash(raw(parts)));

        // Tag order does not matter either.
        let mut r = raw(perms);
        r.tags.push(("a".into(), "1".into()));
        let h1 = hash(r.clone());
        r.tags.reverse();
        prop_assert_eq!(h1, hash(r));
    }

    #[test]
    fn different_rules_hash_differently(spec in arb_perms(), extra in 0u8..3) {
        let perms = build_perms(&spec);
        let mut more = perms.clone();
        more.push(perm("tcp", 7000 + extra as i32, 7000 + extra as i32, &["192.0.2.0/24"]));
        prop_assert_ne!(hash(raw(perms)), hash(raw(more)));
    }

    /// Applying the plan to `current` yields `desired`, and the plan is
    /// minimal: it never touches a rule that is already right.
    #[test]
    fn plan_reaches_desired(a in arb_perms(), b in arb_perms(), tag_a in 0u8..3, tag_b in 0u8..3) {
        let mut desired = SecurityGroup::from_raw(raw(build_perms(&a))).unwrap();
        let mut current = SecurityGroup::from_raw(raw(build_perms(&b))).unwrap();
        desired.tags.insert(format!("t{tag_a}"), "x".into());
        current.tags.insert(format!("t{tag_b}"), "y".into());
        let actions = plan(&desired, &current).unwrap();
        let mut state = current.clone();
        for action in &actions {
            match action {
                SgAction::AuthorizeIngress { rule } => { prop_assert!(state.ingress.insert(rule.key(), rule.clone()).is_none()); }
                SgAction::AuthorizeEgress { rule } => { prop_assert!(state.egress.insert(rule.key(), rule.clone()).is_none()); }
                SgAction::UpdateIngressDescription { rule } => { prop_assert!(state.ingress.insert(rule.key(), rule.clone()).is_some()); }
                SgAction::UpdateEgressDescription { rule } => { prop_assert!(state.egress.insert(rule.key(), rule.clone()).is_some()); }
                SgAction::RevokeIngress { rule } => { prop_assert!(state.ingress.remove(&rule.key()).is_some()); }
                SgAction::RevokeEgress { rule } => { prop_assert!(state.egress.remove(&rule.key()).is_some()); }
                SgAction::CreateTags { tags } => state.tags.extend(tags.clone()),
                SgAction::DeleteTags { keys } => for k in keys { state.tags.remove(k); },
            }
        }
        prop_assert_eq!(&state, &desired);
        let untouched = desired.ingress.iter().filter(|(k, r)| current.ingress.get(*k) == Some(r)).count();
        let touched_ingress = actions.iter().filter(|a| matches!(a, SgAction::AuthorizeIngress{..} | SgAction::RevokeIngress{..} | SgAction::UpdateIngressDescription{..})).count();
        prop_assert!(touched_ingress + untouched <= desired.ingress.len() + current.ingress.len());
    }
}
