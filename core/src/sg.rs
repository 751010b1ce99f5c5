//! The canonical EC2 security group (`aws.ec2.security_group`).
//!
//! AWS lists a group's rules as `IpPermission`s, each of which may carry
//! several sources; the same rules can come back grouped and ordered
//! differently. The canonical form splits them into one rule per source and
//! keys each rule by its identity (protocol, port range, source) in a sorted
//! map, so that order and grouping never show up as drift and a rule change
//! diffs as `ingress["tcp:22-22:0.0.0.0/0"]` rather than an array index.
//! The rule description is an attribute of the rule, not part of its
//! identity, exactly as AWS treats it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{PlanError, PlannedAction};
use crate::types::{Scope, TypeInfo};

/// The type's registry name.
pub const TYPE: &str = "aws.ec2.security_group";

pub(crate) const TYPE_INFO: TypeInfo = TypeInfo {
    name: TYPE,
    scope: Scope::Regional,
    validate: validate_value,
    plan: plan_value,
    lifecycle: lifecycle_value,
};

fn lifecycle_value(
    op: crate::plan::Lifecycle,
    value: &Value,
) -> Result<Vec<PlannedAction>, PlanError> {
    let g = SecurityGroup::from_value(value).map_err(PlanError::Invalid)?;
    match op {
        crate::plan::Lifecycle::Recreate => Err(PlanError::Unenforceable(format!(
            "group {} cannot be recreated under its id (a new group gets a new id); recreate it and re-baseline",
            g.group_id
        ))),
        crate::plan::Lifecycle::Delete if g.name == "default" => Err(PlanError::Unenforceable(
            "a VPC's default group cannot be deleted".into(),
        )),
        crate::plan::Lifecycle::Delete => Ok(vec![
            op.step(format!("DeleteSecurityGroup {}", g.group_id))
        ]),
    }
}

/// A security group in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub group_id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeMap<String, Rule>,
    pub egress: BTreeMap<String, Rule>,
}

/// One rule: a protocol, a port range and exactly one source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `all`, or another IP protocol number.
    pub protocol: String,
    /// Absent for `all`; for ICMP the type and code.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub source: Source,
    pub description: Option<String>,
}

/// Where a rule's traffic comes from (ingress) or goes to (egress).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    Ipv4 {
        cidr: String,
    },
    Ipv6 {
        cidr: String,
    },
    PrefixList {
        prefix_list_id: String,
    },
    /// A group reference; `account` only when it differs from the group's own.
    Group {
        group_id: String,
        account: Option<String>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ipv4 { cidr } | Source::Ipv6 { cidr } => f.write_str(cidr),
            Source::PrefixList { prefix_list_id } => f.write_str(prefix_list_id),
            Source::Group {
                group_id,
                account: Some(account),
            } => write!(f, "{account}/{group_id}"),
            Source::Group {
                group_id,
                account: None,
            } => f.write_str(group_id),
        }
    }
}

impl Rule {
    /// The rule's identity within its direction: protocol, ports, source.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.protocol, self.ports_label(), self.source)
    }

    fn ports_label(&self) -> String {
        match (self.from_port, self.to_port) {
            (None, None) => "*".to_string(),
            (from, to) => format!(
                "{}-{}",
                from.map_or("*".into(), |p| p.to_string()),
                to.map_or("*".into(), |p| p.to_string())
            ),
        }
    }

    /// The protocol as the EC2 API takes it (`-1` for all).
    pub fn api_protocol(&self) -> &str {
        if self.protocol == "all" {
            "-1"
        } else {
            &self.protocol
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.protocol,
            self.ports_label(),
            self.source
        )?;
        if let Some(d) = &self.description {
            write!(f, " ({d:?})")?;
        }
        Ok(())
    }
}

/// A group as the EC2 API describes it, before normalization. The agent fills
/// this from `DescribeSecurityGroups`; the IaC importer from a plan.
#[derive(Clone, Debug, Default)]
pub struct RawSecurityGroup {
    pub group_id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: Option<String>,
    /// The account that owns the group: group references to it are stored
    /// without an account.
    pub owner_account: String,
    pub tags: Vec<(String, String)>,
    pub ingress: Vec<RawPermission>,
    pub egress: Vec<RawPermission>,
}

/// One `IpPermission`: a protocol and port range with any number of sources.
#[derive(Clone, Debug, Default)]
pub struct RawPermission {
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// (CIDR, description)
    pub ipv4: Vec<(String, Option<String>)>,
    pub ipv6: Vec<(String, Option<String>)>,
    /// (prefix list id, description)
    pub prefix_lists: Vec<(String, Option<String>)>,
    /// (group id, owning account, description)
    pub groups: Vec<(String, Option<String>, Option<String>)>,
}

/// Why a group could not be normalized.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NormalizeError {
    #[error("security group has an empty group id")]
    MissingId,
    #[error("security group {group}: rule has an empty protocol")]
    MissingProtocol { group: String },
    #[error("security group {group}: {what} is empty")]
    EmptySource { group: String, what: &'static str },
}

fn normalize_protocol(p: &str) -> String {
    match p.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" => "all".to_string(),
        "6" | "tcp" => "tcp".to_string(),
        "17" | "udp" => "udp".to_string(),
        "1" | "icmp" => "icmp".to_string(),
        "58" | "icmpv6" => "icmpv6".to_string(),
        other => other.to_string(),
    }
}

fn normalize_description(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
}

impl SecurityGroup {
    /// Normalizes a group as listed by an API or a plan.
    pub fn from_raw(raw: RawSecurityGroup) -> Result<SecurityGroup, NormalizeError> {
        if raw.group_id.is_empty() {
            return Err(NormalizeError::MissingId);
        }
        let ingress = normalize_permissions(&raw.group_id, &raw.owner_account, raw.ingress)?;
        let egress = normalize_permissions(&raw.group_id, &raw.owner_account, raw.egress)?;
        Ok(SecurityGroup {
            group_id: raw.group_id,
            name: raw.name,
            description: raw.description,
            vpc_id: raw.vpc_id.filter(|v| !v.is_empty()),
            tags: raw.tags.into_iter().collect(),
            ingress,
            egress,
        })
    }

    /// The canonical JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a security group always serializes")
    }

    /// Reads and checks a canonical value (from an agent or the store).
    pub fn from_value(value: &Value) -> Result<SecurityGroup, String> {
        let sg: SecurityGroup = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a canonical {TYPE}: {e}"))?;
        for (direction, rules) in [("ingress", &sg.ingress), ("egress", &sg.egress)] {
            for (key, rule) in rules {
                if *key != rule.key() {
                    return Err(format!(
                        "{direction} rule key {key:?} does not match its rule (expected {:?})",
                        rule.key()
                    ));
                }
                if normalize_protocol(&rule.protocol) != rule.protocol {
                    return Err(format!(
                        "{direction} rule {key:?}: protocol {:?} is not canonical",
                        rule.protocol
                    ));
                }
            }
        }
        Ok(sg)
    }
}

fn normalize_permissions(
    group: &str,
    owner: &str,
    perms: Vec<RawPermission>,
) -> Result<BTreeMap<String, Rule>, NormalizeError> {
    let mut rules = BTreeMap::new();
    for perm in perms {
        if perm.protocol.trim().is_empty() {
            return Err(NormalizeError::MissingProtocol {
                group: group.to_string(),
            });
        }
        let protocol = normalize_protocol(&perm.protocol);
        let (from_port, to_port) = if protocol == "all" {
            (None, None)
        } else {
            (perm.from_port, perm.to_port)
        };
        let mut sources: Vec<(Source, Option<String>)> = Vec::new();
        for (cidr, d) in perm.ipv4 {
            if cidr.is_empty() {
                return Err(empty(group, "an IPv4 CIDR"));
            }
            sources.push((Source::Ipv4 { cidr }, d));
        }
        for (cidr, d) in perm.ipv6 {
            if cidr.is_empty() {
                return Err(empty(group, "an IPv6 CIDR"));
            }
            sources.push((
                Source::Ipv6 {
                    cidr: cidr.to_ascii_lowercase(),
                },
                d,
            ));
        }
        for (id, d) in perm.prefix_lists {
            if id.is_empty() {
                return Err(empty(group, "a prefix list id"));
            }
            sources.push((Source::PrefixList { prefix_list_id: id }, d));
        }
        for (group_id, account, d) in perm.groups {
            if group_id.is_empty() {
                return Err(empty(group, "a referenced group id"));
            }
            let account = account.filter(|a| !a.is_empty() && a != owner);
            sources.push((Source::Group { group_id, account }, d));
        }
        for (source, description) in sources {
            let rule = Rule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                source,
                description: normalize_description(description),
            };
            // The same rule listed twice (possible in hand-written input)
            // keeps the smaller description so the result is order-free.
            rules
                .entry(rule.key())
                .and_modify(|existing: &mut Rule| {
                    if rule.description < existing.description || existing.description.is_none() {
                        existing.description = rule.description.clone();
                    }
                })
                .or_insert(rule);
        }
    }
    Ok(rules)
}

fn empty(group: &str, what: &'static str) -> NormalizeError {
    NormalizeError::EmptySource {
        group: group.to_string(),
        what,
    }
}

fn validate_value(value: &Value) -> Result<Value, String> {
    SecurityGroup::from_value(value).map(|sg| sg.to_value())
}

/// One API action that moves a group toward its desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SgAction {
    AuthorizeIngress { rule: Rule },
    AuthorizeEgress { rule: Rule },
    UpdateIngressDescription { rule: Rule },
    UpdateEgressDescription { rule: Rule },
    RevokeIngress { rule: Rule },
    RevokeEgress { rule: Rule },
    CreateTags { tags: BTreeMap<String, String> },
    DeleteTags { keys: Vec<String> },
}

impl fmt::Display for SgAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SgAction::AuthorizeIngress { rule } => {
                write!(f, "AuthorizeSecurityGroupIngress {rule}")
            }
            SgAction::AuthorizeEgress { rule } => write!(f, "AuthorizeSecurityGroupEgress {rule}"),
            SgAction::UpdateIngressDescription { rule } => {
                write!(f, "UpdateSecurityGroupRuleDescriptionsIngress {rule}")
            }
            SgAction::UpdateEgressDescription { rule } => {
                write!(f, "UpdateSecurityGroupRuleDescriptionsEgress {rule}")
            }
            SgAction::RevokeIngress { rule } => write!(f, "RevokeSecurityGroupIngress {rule}"),
            SgAction::RevokeEgress { rule } => write!(f, "RevokeSecurityGroupEgress {rule}"),
            SgAction::CreateTags { tags } => {
                let list: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "CreateTags {}", list.join(","))
            }
            SgAction::DeleteTags { keys } => write!(f, "DeleteTags {}", keys.join(",")),
        }
    }
}

/// The minimal actions that turn `current` into `desired`, in a safe order:
/// grants first, so a replaced rule never leaves a gap (the health side),
/// then description updates, then revocations, then tags.
pub fn plan(desired: &SecurityGroup, current: &SecurityGroup) -> Result<Vec<SgAction>, PlanError> {
    if desired.group_id != current.group_id {
        return Err(PlanError::Unenforceable(format!(
            "group id changed from {} to {}",
            desired.group_id, current.group_id
        )));
    }
    for (field, want, have) in [
        ("name", &desired.name, &current.name),
        ("description", &desired.description, &current.description),
    ] {
        if want != have {
            return Err(PlanError::Unenforceable(format!(
                "the group {field} cannot be changed in place ({have:?} should be {want:?})"
            )));
        }
    }
    if desired.vpc_id != current.vpc_id {
        return Err(PlanError::Unenforceable(
            "the group's VPC cannot be changed in place".to_string(),
        ));
    }
    let mut grants = Vec::new();
    let mut updates = Vec::new();
    let mut revokes = Vec::new();
    for (ingress, want, have) in [
        (true, &desired.ingress, &current.ingress),
        (false, &desired.egress, &current.egress),
    ] {
        for (key, rule) in want {
            match have.get(key) {
                None => grants.push(if ingress {
                    SgAction::AuthorizeIngress { rule: rule.clone() }
                } else {
                    SgAction::AuthorizeEgress { rule: rule.clone() }
                }),
                Some(existing) if existing.description != rule.description => {
                    updates.push(if ingress {
                        SgAction::UpdateIngressDescription { rule: rule.clone() }
                    } else {
                        SgAction::UpdateEgressDescription { rule: rule.clone() }
                    })
                }
                Some(_) => {}
            }
        }
        for (key, rule) in have {
            if !want.contains_key(key) {
                revokes.push(if ingress {
                    SgAction::RevokeIngress { rule: rule.clone() }
                } else {
                    SgAction::RevokeEgress { rule: rule.clone() }
                });
            }
        }
    }
    let mut actions = grants;
    actions.extend(updates);
    actions.extend(revokes);
    let set: BTreeMap<String, String> = desired
        .tags
        .iter()
        .filter(|(k, v)| current.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !set.is_empty() {
        actions.push(SgAction::CreateTags { tags: set });
    }
    let removed: Vec<String> = current
        .tags
        .keys()
        .filter(|k| !desired.tags.contains_key(*k))
        .cloned()
        .collect();
    if !removed.is_empty() {
        actions.push(SgAction::DeleteTags { keys: removed });
    }
    Ok(actions)
}

fn plan_value(desired: &Value, current: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let desired = SecurityGroup::from_value(desired).map_err(PlanError::Invalid)?;
    let current = SecurityGroup::from_value(current).map_err(PlanError::Invalid)?;
    Ok(plan(&desired, &current)?
        .into_iter()
        .map(|a| PlannedAction {
            summary: a.to_string(),
            action: serde_json::to_value(&a).expect("an action always serializes"),
        })
        .collect())
}

#[cfg(test)]
mod tests;
