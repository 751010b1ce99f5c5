//! Canonical IAM resources, collected once per account (region `global`):
//! roles (`aws.iam.role`), customer-managed policies (`aws.iam.policy`)
//! and users (`aws.iam.user`). Resources are identified by name.
//!
//! Every policy document is normalized ([`crate::policy_doc`]); sets
//! (attached policies, groups, MFA devices) are objects keyed by their
//! members; absent configuration (no permissions boundary, no description)
//! is an explicit value. Volatile fields — creation dates, last-used
//! information, version ids — are left out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{Lifecycle, PlanError, PlannedAction};
use crate::setting::Setting;
use crate::types::{Scope, TypeInfo};

pub const ROLE: &str = "aws.iam.role";
pub const POLICY: &str = "aws.iam.policy";
pub const USER: &str = "aws.iam.user";

pub(crate) const ROLE_INFO: TypeInfo = TypeInfo {
    name: ROLE,
    scope: Scope::Global,
    validate: |v| Role::from_value(v).map(|r| r.to_value()),
    plan: |d, c| {
        planned(plan_role(
            &Role::from_value(d).map_err(PlanError::Invalid)?,
            &Role::from_value(c).map_err(PlanError::Invalid)?,
        ))
    },
    lifecycle: role_lifecycle,
};

pub(crate) const POLICY_INFO: TypeInfo = TypeInfo {
    name: POLICY,
    scope: Scope::Global,
    validate: |v| ManagedPolicy::from_value(v).map(|r| r.to_value()),
    plan: |d, c| {
        planned(plan_policy(
            &ManagedPolicy::from_value(d).map_err(PlanError::Invalid)?,
            &ManagedPolicy::from_value(c).map_err(PlanError::Invalid)?,
        ))
    },
    lifecycle: policy_lifecycle,
};

pub(crate) const USER_INFO: TypeInfo = TypeInfo {
    name: USER,
    scope: Scope::Global,
    validate: |v| User::from_value(v).map(|r| r.to_value()),
    plan: |d, c| {
        planned(plan_user(
            &User::from_value(d).map_err(PlanError::Invalid)?,
            &User::from_value(c).map_err(PlanError::Invalid)?,
        ))
    },
    lifecycle: user_lifecycle,
};

fn role_lifecycle(op: Lifecycle, value: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let r = Role::from_value(value).map_err(PlanError::Invalid)?;
    Ok(match op {
        Lifecycle::Recreate => vec![
            op.step(format!("CreateRole {}", r.name)),
            op.step("restore its policies, boundary and tags from the baseline"),
        ],
        Lifecycle::Delete => vec![
            op.step("detach and delete its policies, remove it from instance profiles"),
            op.step(format!("DeleteRole {}", r.name)),
        ],
    })
}

fn policy_lifecycle(op: Lifecycle, value: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let p = ManagedPolicy::from_value(value).map_err(PlanError::Invalid)?;
    Ok(match op {
        Lifecycle::Recreate => vec![op.step(format!("CreatePolicy {} at {}", p.name, p.path))],
        Lifecycle::Delete => vec![
            op.step("detach it from every role, user and group; delete its older versions"),
            op.step(format!("DeletePolicy {}", p.arn)),
        ],
    })
}

fn user_lifecycle(op: Lifecycle, value: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let u = User::from_value(value).map_err(PlanError::Invalid)?;
    match op {
        Lifecycle::Recreate
            if u.console_login || !u.access_keys.is_empty() || !u.mfa_devices.is_empty() =>
        {
            Err(PlanError::Unenforceable(format!(
                "user {}'s access keys, console password and MFA devices cannot be recreated",
                u.name
            )))
        }
        Lifecycle::Recreate => Ok(vec![
            op.step(format!("CreateUser {}", u.name)),
            op.step("restore its policies, groups, boundary and tags from the baseline"),
        ]),
        Lifecycle::Delete => Ok(vec![
            op.step("delete its access keys, login profile, MFA devices and inline policies; detach its policies; remove it from its groups"),
            op.step(format!("DeleteUser {}", u.name)),
        ]),
    }
}

/// A set of names or ARNs: `{member: true}`.
pub type Set = BTreeMap<String, bool>;

/// Builds a [`Set`] from any list.
pub fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Set {
    items.into_iter().map(|s| (s.into(), true)).collect()
}

/// An IAM role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    pub path: String,
    /// Empty when the role has none.
    pub description: String,
    pub max_session_duration: i32,
    /// The trust (assume-role) policy, normalized.
    pub trust_policy: Value,
    /// Inline policies: name → normalized document.
    pub inline_policies: BTreeMap<String, Value>,
    /// Attached managed policy ARNs.
    pub attached_policies: Set,
    /// The permissions boundary's policy ARN.
    pub permissions_boundary: Setting<String>,
    pub tags: BTreeMap<String, String>,
}

/// A customer-managed policy: its default version's document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedPolicy {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub description: String,
    pub document: Value,
    pub tags: BTreeMap<String, String>,
}

/// An IAM user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub path: String,
    pub inline_policies: BTreeMap<String, Value>,
    pub attached_policies: Set,
    pub groups: Set,
    /// Whether the user has a console password (a login profile).
    pub console_login: bool,
    /// Access key id → its status.
    pub access_keys: BTreeMap<String, AccessKey>,
    /// MFA device serial numbers.
    pub mfa_devices: Set,
    pub permissions_boundary: Setting<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// `Active` or `Inactive`.
    pub status: String,
    /// When the key was created (RFC 3339 UTC, to the second): a key's
    /// age is what rotation rules judge. Fixed for the key's life.
    pub created: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_utc_second(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn check_docs<'a>(
    what: &str,
    name: &str,
    docs: impl IntoIterator<Item = (String, &'a Value)>,
) -> Result<(), String> {
    for (label, doc) in docs {
        let norm = crate::policy_doc::normalize(doc)
            .map_err(|e| format!("{what} {name}: {label}: {e}"))?;
        if norm != *doc {
            return Err(format!("{what} {name}: {label} is not in canonical form"));
        }
    }
    Ok(())
}

fn check_set(what: &str, name: &str, field: &str, set: &Set) -> Result<(), String> {
    match set.iter().find(|(_, v)| !**v) {
        Some((k, _)) => Err(format!(
            "{what} {name}: {field}[{k:?}] must be true (sets list their members)"
        )),
        None => Ok(()),
    }
}

fn from_value<T: serde::de::DeserializeOwned>(type_name: &str, value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("not a canonical {type_name}: {e}"))
}

impl Role {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a role always serializes")
    }

    pub fn from_value(value: &Value) -> Result<Role, String> {
        let r: Role = from_value(ROLE, value)?;
        if r.name.is_empty() {
            return Err(format!("{ROLE}: empty role name"));
        }
        check_docs(
            "role",
            &r.name,
            std::iter::once(("trust_policy".to_string(), &r.trust_policy)).chain(
                r.inline_policies
                    .iter()
                    .map(|(n, d)| (format!("inline policy {n:?}"), d)),
            ),
        )?;
        check_set("role", &r.name, "attached_policies", &r.attached_policies)?;
        Ok(r)
    }
}

impl ManagedPolicy {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a policy always serializes")
    }

    pub fn from_value(value: &Value) -> Result<ManagedPolicy, String> {
        let p: ManagedPolicy = from_value(POLICY, value)?;
        if p.name.is_empty() || p.arn.is_empty() {
            return Err(format!("{POLICY}: empty policy name or ARN"));
        }
        check_docs("policy", &p.name, [("document".to_string(), &p.document)])?;
        Ok(p)
    }
}

impl User {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a user always serializes")
    }

    pub fn from_value(value: &Value) -> Result<User, String> {
        let u: User = from_value(USER, value)?;
        if u.name.is_empty() {
            return Err(format!("{USER}: empty user name"));
        }
        check_docs(
            "user",
            &u.name,
            u.inline_policies
                .iter()
                .map(|(n, d)| (format!("inline policy {n:?}"), d)),
        )?;
        for (field, s) in [
            ("attached_policies", &u.attached_policies),
            ("groups", &u.groups),
            ("mfa_devices", &u.mfa_devices),
        ] {
            check_set("user", &u.name, field, s)?;
        }
        for (id, k) in &u.access_keys {
            if k.status != "Active" && k.status != "Inactive" {
                return Err(format!(
                    "user {}: access key {id}: status must be Active or Inactive, got {:?}",
                    u.name, k.status
                ));
            }
            if !is_utc_second(&k.created) {
                return Err(format!(
                    "user {}: access key {id}: created must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z, got {:?}",
                    u.name, k.created
                ));
            }
        }
        Ok(u)
    }
}

/// One IAM API action. Role, policy and user planners each use a subset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum IamAction {
    UpdateAssumeRolePolicy {
        document: Value,
    },
    UpdateRole {
        description: String,
        max_session_duration: i32,
    },
    PutRolePolicy {
        name: String,
        document: Value,
    },
    DeleteRolePolicy {
        name: String,
    },
    AttachRolePolicy {
        arn: String,
    },
    DetachRolePolicy {
        arn: String,
    },
    PutRolePermissionsBoundary {
        arn: String,
    },
    DeleteRolePermissionsBoundary,
    TagRole {
        tags: BTreeMap<String, String>,
    },
    UntagRole {
        keys: Vec<String>,
    },
    /// A new default version with the baseline document; the oldest
    /// non-default version is deleted first when five exist.
    CreatePolicyVersion {
        document: Value,
    },
    TagPolicy {
        tags: BTreeMap<String, String>,
    },
    UntagPolicy {
        keys: Vec<String>,
    },
    PutUserPolicy {
        name: String,
        document: Value,
    },
    DeleteUserPolicy {
        name: String,
    },
    AttachUserPolicy {
        arn: String,
    },
    DetachUserPolicy {
        arn: String,
    },
    PutUserPermissionsBoundary {
        arn: String,
    },
    DeleteUserPermissionsBoundary,
    AddUserToGroup {
        group: String,
    },
    RemoveUserFromGroup {
        group: String,
    },
    DeleteLoginProfile,
    UpdateAccessKey {
        id: String,
        status: String,
    },
    TagUser {
        tags: BTreeMap<String, String>,
    },
    UntagUser {
        keys: Vec<String>,
    },
}

impl fmt::Display for IamAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use IamAction::*;
        let tags = |t: &BTreeMap<String, String>| {
            t.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            UpdateAssumeRolePolicy { .. } => {
                f.write_str("UpdateAssumeRolePolicy (baseline document)")
            }
            UpdateRole {
                description,
                max_session_duration,
            } => write!(
                f,
                "UpdateRole description={description:?} max_session_duration={max_session_duration}"
            ),
            PutRolePolicy { name, .. } => write!(f, "PutRolePolicy {name}"),
            DeleteRolePolicy { name } => write!(f, "DeleteRolePolicy {name}"),
            AttachRolePolicy { arn } => write!(f, "AttachRolePolicy {arn}"),
            DetachRolePolicy { arn } => write!(f, "DetachRolePolicy {arn}"),
            PutRolePermissionsBoundary { arn } => write!(f, "PutRolePermissionsBoundary {arn}"),
            DeleteRolePermissionsBoundary => f.write_str("DeleteRolePermissionsBoundary"),
            TagRole { tags: t } => write!(f, "TagRole {}", tags(t)),
            UntagRole { keys } => write!(f, "UntagRole {}", keys.join(",")),
            CreatePolicyVersion { .. } => {
                f.write_str("CreatePolicyVersion (baseline document, as default)")
            }
            TagPolicy { tags: t } => write!(f, "TagPolicy {}", tags(t)),
            UntagPolicy { keys } => write!(f, "UntagPolicy {}", keys.join(",")),
            PutUserPolicy { name, .. } => write!(f, "PutUserPolicy {name}"),
            DeleteUserPolicy { name } => write!(f, "DeleteUserPolicy {name}"),
            AttachUserPolicy { arn } => write!(f, "AttachUserPolicy {arn}"),
            DetachUserPolicy { arn } => write!(f, "DetachUserPolicy {arn}"),
            PutUserPermissionsBoundary { arn } => write!(f, "PutUserPermissionsBoundary {arn}"),
            DeleteUserPermissionsBoundary => f.write_str("DeleteUserPermissionsBoundary"),
            AddUserToGroup { group } => write!(f, "AddUserToGroup {group}"),
            RemoveUserFromGroup { group } => write!(f, "RemoveUserFromGroup {group}"),
            DeleteLoginProfile => f.write_str("DeleteLoginProfile"),
            UpdateAccessKey { id, status } => write!(f, "UpdateAccessKey {id} {status}"),
            TagUser { tags: t } => write!(f, "TagUser {}", tags(t)),
            UntagUser { keys } => write!(f, "UntagUser {}", keys.join(",")),
        }
    }
}

/// Which principal the shared planners act for.
#[derive(Clone, Copy)]
enum Principal {
    Role,
    User,
}

/// Inline policies: put missing or changed ones first, delete extra ones
/// last, so permissions are never briefly narrower than the baseline.
fn plan_inline(
    who: Principal,
    desired: &BTreeMap<String, Value>,
    current: &BTreeMap<String, Value>,
    puts: &mut Vec<IamAction>,
    removes: &mut Vec<IamAction>,
) {
    for (name, doc) in desired {
        if current.get(name) != Some(doc) {
            puts.push(match who {
                Principal::Role => IamAction::PutRolePolicy {
                    name: name.clone(),
                    document: doc.clone(),
                },
                Principal::User => IamAction::PutUserPolicy {
                    name: name.clone(),
                    document: doc.clone(),
                },
            });
        }
    }
    for name in current.keys().filter(|n| !desired.contains_key(*n)) {
        removes.push(match who {
            Principal::Role => IamAction::DeleteRolePolicy { name: name.clone() },
            Principal::User => IamAction::DeleteUserPolicy { name: name.clone() },
        });
    }
}

fn plan_attached(
    who: Principal,
    desired: &Set,
    current: &Set,
    puts: &mut Vec<IamAction>,
    removes: &mut Vec<IamAction>,
) {
    for arn in desired.keys().filter(|a| !current.contains_key(*a)) {
        puts.push(match who {
            Principal::Role => IamAction::AttachRolePolicy { arn: arn.clone() },
            Principal::User => IamAction::AttachUserPolicy { arn: arn.clone() },
        });
    }
    for arn in current.keys().filter(|a| !desired.contains_key(*a)) {
        removes.push(match who {
            Principal::Role => IamAction::DetachRolePolicy { arn: arn.clone() },
            Principal::User => IamAction::DetachUserPolicy { arn: arn.clone() },
        });
    }
}

fn plan_boundary(
    who: Principal,
    desired: &Setting<String>,
    current: &Setting<String>,
    out: &mut Vec<IamAction>,
) {
    if desired == current {
        return;
    }
    out.push(match (who, desired) {
        (Principal::Role, Setting::Set(arn)) => {
            IamAction::PutRolePermissionsBoundary { arn: arn.clone() }
        }
        (Principal::Role, Setting::None) => IamAction::DeleteRolePermissionsBoundary,
        (Principal::User, Setting::Set(arn)) => {
            IamAction::PutUserPermissionsBoundary { arn: arn.clone() }
        }
        (Principal::User, Setting::None) => IamAction::DeleteUserPermissionsBoundary,
    });
}

/// Tags to set (missing or different) and keys to remove.
fn tag_changes(
    desired: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    (set, removed)
}

fn unchangeable(what: &str, name: &str, field: &str, want: &str, have: &str) -> PlanError {
    PlanError::Unenforceable(format!(
        "the {field} of {what} {name} cannot be changed in place ({have:?} should be {want:?})"
    ))
}

/// The calls that restore a role's drifted attributes.
pub fn plan_role(desired: &Role, current: &Role) -> Result<Vec<IamAction>, PlanError> {
    if desired.path != current.path {
        return Err(unchangeable(
            "role",
            &desired.name,
            "path",
            &desired.path,
            &current.path,
        ));
    }
    let (mut puts, mut removes) = (Vec::new(), Vec::new());
    if desired.trust_policy != current.trust_policy {
        puts.push(IamAction::UpdateAssumeRolePolicy {
            document: desired.trust_policy.clone(),
        });
    }
    if desired.description != current.description
        || desired.max_session_duration != current.max_session_duration
    {
        puts.push(IamAction::UpdateRole {
            description: desired.description.clone(),
            max_session_duration: desired.max_session_duration,
        });
    }
    plan_inline(
        Principal::Role,
        &desired.inline_policies,
        &current.inline_policies,
        &mut puts,
        &mut removes,
    );
    plan_attached(
        Principal::Role,
        &desired.attached_policies,
        &current.attached_policies,
        &mut puts,
        &mut removes,
    );
    plan_boundary(
        Principal::Role,
        &desired.permissions_boundary,
        &current.permissions_boundary,
        &mut puts,
    );
    let (set, removed) = tag_changes(&desired.tags, &current.tags);
    puts.extend(removes);
    if !set.is_empty() {
        puts.push(IamAction::TagRole { tags: set });
    }
    if !removed.is_empty() {
        puts.push(IamAction::UntagRole { keys: removed });
    }
    Ok(puts)
}

/// The calls that restore a customer-managed policy.
pub fn plan_policy(
    desired: &ManagedPolicy,
    current: &ManagedPolicy,
) -> Result<Vec<IamAction>, PlanError> {
    for (field, want, have) in [
        ("path", &desired.path, &current.path),
        ("description", &desired.description, &current.description),
        ("ARN", &desired.arn, &current.arn),
    ] {
        if want != have {
            return Err(unchangeable("policy", &desired.name, field, want, have));
        }
    }
    let mut out = Vec::new();
    if desired.document != current.document {
        out.push(IamAction::CreatePolicyVersion {
            document: desired.document.clone(),
        });
    }
    let (set, removed) = tag_changes(&desired.tags, &current.tags);
    if !set.is_empty() {
        out.push(IamAction::TagPolicy { tags: set });
    }
    if !removed.is_empty() {
        out.push(IamAction::UntagPolicy { keys: removed });
    }
    Ok(out)
}

/// The calls that restore a user's drifted attributes.
pub fn plan_user(desired: &User, current: &User) -> Result<Vec<IamAction>, PlanError> {
    let name = &desired.name;
    if desired.path != current.path {
        return Err(unchangeable(
            "user",
            name,
            "path",
            &desired.path,
            &current.path,
        ));
    }
    if desired.console_login && !current.console_login {
        return Err(PlanError::Unenforceable(format!(
            "user {name} lost console access; a password cannot be restored by holdfast"
        )));
    }
    if let Some(id) = desired
        .access_keys
        .keys()
        .find(|k| !current.access_keys.contains_key(*k))
    {
        return Err(PlanError::Unenforceable(format!(
            "access key {id} of user {name} was deleted; a deleted key cannot be recreated"
        )));
    }
    if let Some(id) = current
        .access_keys
        .keys()
        .find(|k| !desired.access_keys.contains_key(*k))
    {
        return Err(PlanError::Unenforceable(format!(
            "access key {id} of user {name} is not in the baseline; holdfast does not delete keys: deactivate or delete it, or approve a new baseline"
        )));
    }
    if desired.mfa_devices != current.mfa_devices {
        return Err(PlanError::Unenforceable(format!(
            "MFA devices of user {name} changed; a device can only be enrolled or removed with its codes"
        )));
    }
    let (mut puts, mut removes) = (Vec::new(), Vec::new());
    plan_inline(
        Principal::User,
        &desired.inline_policies,
        &current.inline_policies,
        &mut puts,
        &mut removes,
    );
    plan_attached(
        Principal::User,
        &desired.attached_policies,
        &current.attached_policies,
        &mut puts,
        &mut removes,
    );
    for g in desired
        .groups
        .keys()
        .filter(|g| !current.groups.contains_key(*g))
    {
        puts.push(IamAction::AddUserToGroup { group: g.clone() });
    }
    for g in current
        .groups
        .keys()
        .filter(|g| !desired.groups.contains_key(*g))
    {
        removes.push(IamAction::RemoveUserFromGroup { group: g.clone() });
    }
    plan_boundary(
        Principal::User,
        &desired.permissions_boundary,
        &current.permissions_boundary,
        &mut puts,
    );
    if !desired.console_login && current.console_login {
        removes.push(IamAction::DeleteLoginProfile);
    }
    for (id, key) in &desired.access_keys {
        if current.access_keys.get(id).map(|k| &k.status) != Some(&key.status) {
            puts.push(IamAction::UpdateAccessKey {
                id: id.clone(),
                status: key.status.clone(),
            });
        }
    }
    let (set, removed) = tag_changes(&desired.tags, &current.tags);
    puts.extend(removes);
    if !set.is_empty() {
        puts.push(IamAction::TagUser { tags: set });
    }
    if !removed.is_empty() {
        puts.push(IamAction::UntagUser { keys: removed });
    }
    Ok(puts)
}

fn planned(actions: Result<Vec<IamAction>, PlanError>) -> Result<Vec<PlannedAction>, PlanError> {
    Ok(actions?
        .into_iter()
        .map(|a| PlannedAction {
            summary: a.to_string(),
            action: serde_json::to_value(&a).expect("an action always serializes"),
        })
        .collect())
}

#[cfg(test)]
mod tests;
