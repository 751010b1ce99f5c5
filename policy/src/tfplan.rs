//! Terraform plans (`terraform show -json PLANFILE`) as canonical resources,
//! so that a plan is judged by the very rules that judge a live account.
//!
//! Read: `resource_changes` (the planned `after` values with
//! `after_unknown`; every module instance is listed there with its full
//! address), or `planned_values` (root and child modules) when a plan has
//! no `resource_changes`. Resources being deleted are not judged.
//!
//! Joined: the split configuration resources to the resource they
//! configure — `aws_s3_bucket_*` to their bucket, `aws_security_group_rule`
//! and `aws_vpc_security_group_{ingress,egress}_rule` to their group,
//! `aws_iam_role_policy(_attachment)` to their role, `aws_iam_user_policy`,
//! `aws_iam_user_policy_attachment`, `aws_iam_user_login_profile`,
//! `aws_iam_access_key` and `aws_iam_user_group_membership` to their user —
//! by the known value (bucket name, group id, role or user name), or, when
//! that is unknown until apply, by the reference in the configuration
//! (`aws_s3_bucket.this[0].id`), within the same module instance.
//!
//! Unknown values are never guessed: an attribute whose planned value is
//! unknown (or cannot be joined) is listed in the resource's `unknown`
//! paths, and a rule that reads one is reported as unknown for that
//! resource, neither passed nor failed.

use std::collections::{BTreeMap, BTreeSet};

use holdfast_core::iam::{self, AccessKey, ManagedPolicy, Role, User};
use holdfast_core::s3::{self, Bucket, Encryption, Logging, PublicAccessBlock, RawGrant};
use holdfast_core::setting::Setting;
use holdfast_core::sg::{RawPermission, RawSecurityGroup, SecurityGroup};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Finding, Resource};

/// A plan that cannot be read, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// One resource of the plan, in canonical form.
#[derive(Clone, Debug, Serialize)]
pub struct PlanResource {
    /// The Terraform address (`module.sg["a"].aws_security_group.this`).
    pub address: String,
    /// The resource's own name (group, bucket, role, policy or user name),
    /// or its address while the name is unknown.
    pub name: String,
    /// The split resources joined into it (their addresses).
    pub joined: Vec<String>,
    /// Canonical attribute paths unknown until apply.
    pub unknown: Vec<String>,
    #[serde(skip)]
    pub resource: Resource,
}

/// What was read from a plan.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub format_version: String,
    pub terraform_version: String,
    pub resources: Vec<PlanResource>,
    /// Resource types holdfast has no canonical model for: type → count.
    pub not_judged: BTreeMap<String, u32>,
    /// Split resources that could not be joined, and why.
    pub notes: Vec<String>,
}

/// A resource instance as the plan lists it.
#[derive(Clone, Debug)]
struct Inst {
    address: String,
    /// With instance keys (`module.sg["a"]`), empty at the root.
    module: String,
    rtype: String,
    name: String,
    index: Option<Value>,
    after: Value,
    unknown: Value,
    create: bool,
}

impl Inst {
    fn str(&self, key: &str) -> Option<String> {
        match self.after.get(key) {
            Some(Value::String(s)) if !self.is_unknown(key) => Some(s.clone()),
            _ => None,
        }
    }

    fn is_unknown(&self, key: &str) -> bool {
        self.unknown.get(key).is_some_and(any_true)
    }

    /// Whether a computed attribute stays unknown: the provider computes it
    /// when the configuration leaves it out, and then split resources
    /// (`has_split`) say what it will be; partly unknown values stay
    /// unknown.
    fn unknown_unless_split(&self, key: &str, has_split: bool) -> bool {
        let whole = self.unknown.get(key) == Some(&Value::Bool(true));
        self.is_unknown(key) && (!whole || !has_split)
    }
}

fn any_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Array(a) => a.iter().any(any_true),
        Value::Object(o) => o.values().any(any_true),
        _ => false,
    }
}

/// The module path without instance keys: `module.a["x"].module.b[0]` →
/// `module.a.module.b`.
fn module_path(module: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut in_str = false;
    for c in module.chars() {
        match c {
            '"' if depth > 0 => in_str = !in_str,
            '[' if !in_str => depth += 1,
            ']' if !in_str => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn index_suffix(index: &Option<Value>) -> String {
    match index {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => format!("[{}]", serde_json::to_string(s).unwrap_or_default()),
        Some(v) => format!("[{v}]"),
    }
}

/// Reads a plan document.
pub fn parse(text: &str) -> Result<Plan, PlanError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        PlanError(format!(
            "not JSON ({e}); give the output of `terraform show -json PLANFILE`"
        ))
    })?;
    let Some(obj) = doc.as_object() else {
        return Err(PlanError(
            "not a Terraform plan: the document is not a JSON object".into(),
        ));
    };
    let format_version = obj
        .get("format_version")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            PlanError(
                "not a Terraform plan: no format_version; give the output of `terraform show -json PLANFILE`"
                    .into(),
            )
        })?
        .to_string();
    let major = format_version.split('.').next().unwrap_or("");
    if major != "0" && major != "1" {
        return Err(PlanError(format!(
            "unsupported plan format_version {format_version:?}: this holdfast reads 0.x and 1.x"
        )));
    }
    if !obj.contains_key("planned_values") && !obj.contains_key("resource_changes") {
        let hint = if obj.contains_key("values") {
            " (this looks like a state: `terraform show -json` of a plan file is needed)"
        } else {
            ""
        };
        return Err(PlanError(format!(
            "not a Terraform plan: neither planned_values nor resource_changes{hint}"
        )));
    }
    let terraform_version = obj
        .get("terraform_version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let insts = instances(&doc)?;
    let config = configuration(&doc);
    let region = doc
        .pointer("/configuration/provider_config/aws/expressions/region/constant_value")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(build(
        insts,
        &config,
        &region,
        format_version,
        terraform_version,
    ))
}

fn instances(doc: &Value) -> Result<Vec<Inst>, PlanError> {
    let mut out = Vec::new();
    if let Some(changes) = doc.get("resource_changes") {
        let changes = changes
            .as_array()
            .ok_or_else(|| PlanError("resource_changes is not a list".into()))?;
        for (i, rc) in changes.iter().enumerate() {
            let field = |k: &str| {
                rc.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| PlanError(format!("resource_changes[{i}] has no {k}")))
            };
            if rc.get("mode").and_then(Value::as_str) != Some("managed") {
                continue;
            }
            let address = field("address")?.to_string();
            let actions: Vec<&str> = rc
                .pointer("/change/actions")
                .and_then(Value::as_array)
                .ok_or_else(|| PlanError(format!("{address}: change.actions is missing")))?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if actions == ["delete"] {
                continue;
            }
            out.push(Inst {
                module: rc
                    .get("module_address")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                rtype: field("type")?.to_string(),
                name: field("name")?.to_string(),
                index: rc.get("index").cloned(),
                after: rc.pointer("/change/after").cloned().unwrap_or(Value::Null),
                unknown: rc
                    .pointer("/change/after_unknown")
                    .cloned()
                    .unwrap_or(Value::Null),
                create: actions.contains(&"create"),
                address,
            });
        }
        return Ok(out);
    }
    fn walk(m: &Value, module: &str, out: &mut Vec<Inst>) {
        for r in m["resources"].as_array().into_iter().flatten() {
            if r["mode"] != "managed" {
                continue;
            }
            out.push(Inst {
                address: r["address"].as_str().unwrap_or("").to_string(),
                module: module.to_string(),
                rtype: r["type"].as_str().unwrap_or("").to_string(),
                name: r["name"].as_str().unwrap_or("").to_string(),
                index: r.get("index").cloned(),
                after: r["values"].clone(),
                unknown: Value::Null,
                create: true,
            });
        }
        for c in m["child_modules"].as_array().into_iter().flatten() {
            walk(c, c["address"].as_str().unwrap_or(""), out);
        }
    }
    walk(&doc["planned_values"]["root_module"], "", &mut out);
    Ok(out)
}

/// Configuration expressions by `{module path}.{type}.{name}`.
fn configuration(doc: &Value) -> BTreeMap<String, Value> {
    fn walk(m: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
        for r in m["resources"].as_array().into_iter().flatten() {
            if let Some(a) = r["address"].as_str() {
                out.insert(format!("{prefix}{a}"), r["expressions"].clone());
            }
        }
        for (name, call) in m["module_calls"].as_object().into_iter().flatten() {
            walk(&call["module"], &format!("{prefix}module.{name}."), out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&doc["configuration"]["root_module"], "", &mut out);
    out
}

/// How a split resource names what it configures.
struct Join {
    /// Its field that holds the parent's key.
    field: &'static str,
    /// The parent's type; the parent fields its key may match are in
    /// [`Index::new`].
    parent: &'static str,
}

fn join_of(rtype: &str) -> Option<Join> {
    let j = |field, parent| Some(Join { field, parent });
    match rtype {
        "aws_s3_bucket_server_side_encryption_configuration"
        | "aws_s3_bucket_versioning"
        | "aws_s3_bucket_public_access_block"
        | "aws_s3_bucket_policy"
        | "aws_s3_bucket_ownership_controls"
        | "aws_s3_bucket_acl"
        | "aws_s3_bucket_logging" => j("bucket", "aws_s3_bucket"),
        "aws_security_group_rule" => j("security_group_id", "aws_security_group"),
        "aws_vpc_security_group_ingress_rule" | "aws_vpc_security_group_egress_rule" => {
            j("security_group_id", "aws_security_group")
        }
        "aws_iam_role_policy" | "aws_iam_role_policy_attachment" => j("role", "aws_iam_role"),
        "aws_iam_user_policy"
        | "aws_iam_user_policy_attachment"
        | "aws_iam_user_login_profile"
        | "aws_iam_access_key"
        | "aws_iam_user_group_membership" => j("user", "aws_iam_user"),
        _ => None,
    }
}

const JUDGED: &[&str] = &[
    "aws_security_group",
    "aws_s3_bucket",
    "aws_iam_role",
    "aws_iam_policy",
    "aws_iam_user",
    "aws_iam_account_password_policy",
];

fn build(
    insts: Vec<Inst>,
    config: &BTreeMap<String, Value>,
    region: &str,
    format_version: String,
    terraform_version: String,
) -> Plan {
    let index = Index::new(&insts);
    let mut children: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut not_judged: BTreeMap<String, u32> = BTreeMap::new();
    for (i, inst) in insts.iter().enumerate() {
        let Some(join) = join_of(&inst.rtype) else {
            if !JUDGED.contains(&inst.rtype.as_str()) && inst.rtype.starts_with("aws_") {
                *not_judged.entry(inst.rtype.clone()).or_default() += 1;
            }
            continue;
        };
        match resolve(inst, &join, &index, config) {
            Ok(p) => children.entry(p).or_default().push(i),
            Err(why) => notes.push(format!("{}: {why}; not joined", inst.address)),
        }
    }
    let mut resources = Vec::new();
    for (i, inst) in insts.iter().enumerate() {
        let kids: Vec<&Inst> = children
            .get(&i)
            .map(|k| k.iter().map(|c| &insts[*c]).collect())
            .unwrap_or_default();
        let mut unknown = BTreeSet::new();
        let built = match inst.rtype.as_str() {
            "aws_security_group" => security_group(inst, &kids, &mut unknown, &mut notes),
            "aws_s3_bucket" => bucket(inst, &kids, &mut unknown, &mut notes),
            "aws_iam_role" => role(inst, &kids, &mut unknown, &mut notes),
            "aws_iam_policy" => policy(inst, &mut unknown, &mut notes),
            "aws_iam_user" => user(inst, &kids, &mut unknown, &mut notes),
            "aws_iam_account_password_policy" => {
                password_policy(inst, config_of(inst, config), &mut unknown)
            }
            _ => continue,
        };
        let Some((resource_type, attributes)) = built else {
            continue;
        };
        let name = attributes["name"]
            .as_str()
            .filter(|_| !unknown.contains("name"))
            .unwrap_or(&inst.address)
            .to_string();
        let region = inst.str("region").unwrap_or_else(|| region.to_string());
        resources.push(PlanResource {
            address: inst.address.clone(),
            name,
            joined: kids.iter().map(|k| k.address.clone()).collect(),
            unknown: unknown.into_iter().collect(),
            resource: Resource {
                resource_type: resource_type.to_string(),
                id: inst.address.clone(),
                account: String::new(),
                region,
                attributes,
            },
        });
    }
    Plan {
        format_version,
        terraform_version,
        resources,
        not_judged,
        notes,
    }
}

/// Where parents are found: by address, by the value split resources name
/// them with, and by (module instance, type, name).
struct Index<'a> {
    by_address: BTreeMap<&'a str, usize>,
    /// (parent type, key value) → instance (bucket name or id, group id,
    /// role or user name).
    by_key: std::collections::HashMap<(&'a str, String), usize>,
    by_name: std::collections::HashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(insts: &'a [Inst]) -> Index<'a> {
        let mut index = Index {
            by_address: BTreeMap::new(),
            by_key: std::collections::HashMap::new(),
            by_name: std::collections::HashMap::new(),
        };
        for (i, p) in insts.iter().enumerate() {
            index.by_address.insert(p.address.as_str(), i);
            index
                .by_name
                .entry((p.module.as_str(), p.rtype.as_str(), p.name.as_str()))
                .or_default()
                .push(i);
            let keys: &[&str] = match p.rtype.as_str() {
                "aws_s3_bucket" => &["bucket", "id"],
                "aws_security_group" => &["id"],
                "aws_iam_role" | "aws_iam_user" => &["name"],
                _ => &[],
            };
            for k in keys {
                if let Some(v) = p.str(k) {
                    index.by_key.entry((p.rtype.as_str(), v)).or_insert(i);
                }
            }
        }
        index
    }
}

/// The parent a split resource configures.
fn resolve(
    inst: &Inst,
    join: &Join,
    index: &Index<'_>,
    config: &BTreeMap<String, Value>,
) -> Result<usize, String> {
    if let Some(key) = inst.str(join.field).filter(|k| !k.is_empty()) {
        return index
            .by_key
            .get(&(join.parent, key.clone()))
            .copied()
            .ok_or_else(|| {
                format!(
                    "it configures {} {key:?}, which this plan does not manage",
                    join.parent
                )
            });
    }
    let refs: Vec<String> = config_of(inst, config)
        .and_then(|e| e.get(join.field))
        .and_then(|f| f.get("references"))
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let module = if inst.module.is_empty() {
        String::new()
    } else {
        format!("{}.", inst.module)
    };
    let wanted = format!("{}.", join.parent);
    for r in &refs {
        let Some(rest) = r.strip_prefix(&wanted) else {
            continue;
        };
        // NAME, NAME[INDEX] or NAME[INDEX].attr / NAME.attr
        let name_end = rest.find(['[', '.']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        let subscript = rest[name_end..]
            .strip_prefix('[')
            .and_then(|s| s.find(']').map(|e| &s[..e]));
        let base = format!("{module}{}{name}", wanted);
        let mut candidates = Vec::new();
        if let Some(ix) = subscript {
            candidates.push(format!("{base}[{ix}]"));
        } else {
            candidates.push(format!("{base}{}", index_suffix(&inst.index)));
            candidates.push(base.clone());
        }
        for c in &candidates {
            if let Some(i) = index.by_address.get(c.as_str()) {
                return Ok(*i);
            }
        }
        // The only instance of that resource in the module instance.
        if let Some([one]) = index
            .by_name
            .get(&(inst.module.as_str(), join.parent, name))
            .map(Vec::as_slice)
        {
            return Ok(*one);
        }
    }
    Err(format!(
        "its {} is unknown until apply and its configuration references no {} of this plan",
        join.field, join.parent
    ))
}

type Built = Option<(&'static str, Value)>;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .collect()
}

fn tags(inst: &Inst) -> BTreeMap<String, String> {
    inst.after["tags"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

fn port(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|p| i32::try_from(p).ok())
}

/// An inline `ingress`/`egress` block of `aws_security_group`, or an
/// `aws_security_group_rule`.
fn permission(b: &Value, group_id: &str) -> RawPermission {
    let d = b["description"].as_str().map(String::from);
    let mut groups: Vec<(String, Option<String>, Option<String>)> = strings(&b["security_groups"])
        .into_iter()
        .map(|g| (g, None, d.clone()))
        .collect();
    if let Some(g) = b["source_security_group_id"].as_str() {
        groups.push((g.to_string(), None, d.clone()));
    }
    if b["self"].as_bool() == Some(true) {
        groups.push((group_id.to_string(), None, d.clone()));
    }
    RawPermission {
        protocol: b["protocol"].as_str().unwrap_or("").to_string(),
        from_port: port(&b["from_port"]),
        to_port: port(&b["to_port"]),
        ipv4: strings(&b["cidr_blocks"])
            .into_iter()
            .map(|c| (c, d.clone()))
            .collect(),
        ipv6: strings(&b["ipv6_cidr_blocks"])
            .into_iter()
            .map(|c| (c, d.clone()))
            .collect(),
        prefix_lists: strings(&b["prefix_list_ids"])
            .into_iter()
            .map(|c| (c, d.clone()))
            .collect(),
        groups,
    }
}

/// An `aws_vpc_security_group_{ingress,egress}_rule`.
fn vpc_rule(b: &Value) -> RawPermission {
    let d = b["description"].as_str().map(String::from);
    let one = |k: &str| -> Vec<(String, Option<String>)> {
        b[k].as_str()
            .filter(|s| !s.is_empty())
            .map(|s| vec![(s.to_string(), d.clone())])
            .unwrap_or_default()
    };
    RawPermission {
        protocol: b["ip_protocol"].as_str().unwrap_or("").to_string(),
        from_port: port(&b["from_port"]),
        to_port: port(&b["to_port"]),
        ipv4: one("cidr_ipv4"),
        ipv6: one("cidr_ipv6"),
        prefix_lists: one("prefix_list_id"),
        groups: b["referenced_security_group_id"]
            .as_str()
            .map(|g| vec![(g.to_string(), None, d.clone())])
            .unwrap_or_default(),
    }
}

fn security_group(
    inst: &Inst,
    kids: &[&Inst],
    unknown: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Built {
    let group_id = inst.str("id").unwrap_or_else(|| inst.address.clone());
    if inst.str("id").is_none() {
        unknown.insert("group_id".into());
    }
    for (attr, canon) in [
        ("name", "name"),
        ("description", "description"),
        ("vpc_id", "vpc_id"),
        ("tags", "tags"),
    ] {
        if inst.is_unknown(attr) {
            unknown.insert(canon.into());
        }
    }
    let mut raw = RawSecurityGroup {
        group_id: group_id.clone(),
        name: inst.str("name").unwrap_or_default(),
        description: inst.str("description").unwrap_or_default(),
        vpc_id: inst.str("vpc_id"),
        owner_account: String::new(),
        tags: tags(inst).into_iter().collect(),
        ingress: Vec::new(),
        egress: Vec::new(),
    };
    for (dir, list) in [("ingress", &mut raw.ingress), ("egress", &mut raw.egress)] {
        let split: Vec<&&Inst> = kids
            .iter()
            .filter(|k| match k.rtype.as_str() {
                "aws_security_group_rule" => k.after["type"] == dir,
                "aws_vpc_security_group_ingress_rule" => dir == "ingress",
                "aws_vpc_security_group_egress_rule" => dir == "egress",
                _ => false,
            })
            .collect();
        if inst.unknown_unless_split(dir, !split.is_empty()) {
            // Unknown inline rules (or a computed attribute with no split
            // rules to tell what it will be).
            unknown.insert(dir.into());
        } else {
            for b in inst.after[dir].as_array().into_iter().flatten() {
                list.push(permission(b, &group_id));
            }
        }
        for k in split {
            if k.unknown.as_object().is_some_and(|o| {
                o.iter().any(|(f, v)| {
                    f != "id"
                        && f != "arn"
                        && f != "security_group_rule_id"
                        && f != "tags_all"
                        && f != "security_group_id"
                        && any_true(v)
                })
            }) {
                unknown.insert(dir.into());
                continue;
            }
            list.push(if k.rtype == "aws_security_group_rule" {
                permission(&k.after, &group_id)
            } else {
                vpc_rule(&k.after)
            });
        }
    }
    match SecurityGroup::from_raw(raw) {
        Ok(sg) => Some((holdfast_core::sg::TYPE, sg.to_value())),
        Err(e) => {
            notes.push(format!("{}: {e}; not judged", inst.address));
            None
        }
    }
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";
/// The bucket owner's canonical id is not in a plan.
const OWNER_UNKNOWN: &str = "unknown-until-apply";

/// The grants of a canned ACL (None: not one holdfast knows).
fn canned(acl: &str) -> Option<Vec<RawGrant>> {
    let owner = RawGrant {
        grantee_type: "CanonicalUser".into(),
        id: Some(OWNER_UNKNOWN.into()),
        permission: "FULL_CONTROL".into(),
        ..RawGrant::default()
    };
    let group = |uri: &str, permission: &str| RawGrant {
        grantee_type: "Group".into(),
        uri: Some(uri.into()),
        permission: permission.into(),
        ..RawGrant::default()
    };
    Some(match acl {
        "private" | "bucket-owner-read" | "bucket-owner-full-control" => vec![owner],
        "public-read" => vec![owner, group(ALL_USERS, "READ")],
        "public-read-write" => vec![owner, group(ALL_USERS, "READ"), group(ALL_USERS, "WRITE")],
        "authenticated-read" => vec![owner, group(AUTHENTICATED, "READ")],
        "log-delivery-write" => vec![
            owner,
            group(LOG_DELIVERY, "WRITE"),
            group(LOG_DELIVERY, "READ_ACP"),
        ],
        _ => return None,
    })
}

/// Explicit grants (`grant` blocks of the bucket, or an
/// `access_control_policy` of `aws_s3_bucket_acl`).
fn explicit_grants(blocks: &Value) -> Vec<RawGrant> {
    let mut out = Vec::new();
    for g in blocks.as_array().into_iter().flatten() {
        // aws_s3_bucket `grant`: {type, id, uri, permissions: [..]};
        // access_control_policy `grant`: {grantee: [{type, id, uri, email_address}], permission}.
        let grantee = g["grantee"].get(0).unwrap_or(g);
        let perms: Vec<String> = if g["permissions"].is_array() {
            strings(&g["permissions"])
        } else {
            g["permission"]
                .as_str()
                .map(|p| vec![p.to_string()])
                .unwrap_or_default()
        };
        for p in perms {
            out.push(RawGrant {
                grantee_type: grantee["type"].as_str().unwrap_or("").to_string(),
                id: grantee["id"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(String::from),
                uri: grantee["uri"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(String::from),
                email: grantee["email_address"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(String::from),
                permission: p,
            });
        }
    }
    out
}

fn document(text: &str) -> Result<Value, String> {
    holdfast_core::policy_doc::parse(text).map_err(|e| e.to_string())
}

fn bucket(
    inst: &Inst,
    kids: &[&Inst],
    unknown: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Built {
    let kid = |t: &str| kids.iter().find(|k| k.rtype == t).copied();
    let name = inst.str("bucket").unwrap_or_else(|| {
        unknown.insert("name".into());
        inst.address.clone()
    });
    if inst.is_unknown("tags") {
        unknown.insert("tags".into());
    }

    // Default encryption.
    let sse = |rules: &Value| -> Setting<Encryption> {
        let Some(r) = rules.get(0) else {
            return Setting::None;
        };
        let d = &r["apply_server_side_encryption_by_default"][0];
        Setting::Set(Encryption {
            algorithm: d["sse_algorithm"].as_str().unwrap_or("").to_string(),
            kms_key_id: d["kms_master_key_id"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
            bucket_key: r["bucket_key_enabled"].as_bool().unwrap_or(false),
        })
    };
    let encryption = match kid("aws_s3_bucket_server_side_encryption_configuration") {
        Some(k) if k.is_unknown("rule") => {
            unknown.insert("encryption".into());
            Setting::None
        }
        Some(k) => sse(&k.after["rule"]),
        None if inst.is_unknown("server_side_encryption_configuration") => {
            unknown.insert("encryption".into());
            Setting::None
        }
        None => sse(&inst.after["server_side_encryption_configuration"][0]["rule"]),
    };

    // Versioning.
    let mut versioning = s3::Versioning {
        status: s3::VersioningStatus::Disabled,
        mfa_delete: false,
    };
    match kid("aws_s3_bucket_versioning") {
        Some(k) if k.is_unknown("versioning_configuration") => {
            unknown.insert("versioning".into());
        }
        Some(k) => {
            let c = &k.after["versioning_configuration"][0];
            versioning.status = match c["status"].as_str() {
                Some("Enabled") => s3::VersioningStatus::Enabled,
                Some("Suspended") => s3::VersioningStatus::Suspended,
                _ => s3::VersioningStatus::Disabled,
            };
            versioning.mfa_delete = c["mfa_delete"].as_str() == Some("Enabled");
        }
        None if inst.is_unknown("versioning") => {
            unknown.insert("versioning".into());
        }
        None => {
            let v = &inst.after["versioning"][0];
            if v["enabled"].as_bool() == Some(true) {
                versioning.status = s3::VersioningStatus::Enabled;
            } else if !inst.create && v.is_object() {
                // Turned off on an existing bucket: suspended, or never on.
                unknown.insert("versioning.status".into());
            }
            versioning.mfa_delete = v["mfa_delete"].as_bool().unwrap_or(false);
        }
    }

    // Public access block: only a split resource sets one.
    let public_access_block = match kid("aws_s3_bucket_public_access_block") {
        Some(k) => {
            let mut flag = |f: &str| {
                if k.is_unknown(f) {
                    unknown.insert("public_access_block".into());
                }
                k.after[f].as_bool().unwrap_or(false)
            };
            Setting::Set(PublicAccessBlock {
                block_public_acls: flag("block_public_acls"),
                ignore_public_acls: flag("ignore_public_acls"),
                block_public_policy: flag("block_public_policy"),
                restrict_public_buckets: flag("restrict_public_buckets"),
            })
        }
        None => {
            // Not managed by this plan: S3 applies its own default to a new
            // bucket (blocked, since April 2023) and keeps an existing
            // bucket's; the plan does not say which.
            unknown.insert("public_access_block".into());
            Setting::None
        }
    };

    // Bucket policy.
    fn text_policy(
        src: &Inst,
        field: &str,
        unknown: &mut BTreeSet<String>,
        notes: &mut Vec<String>,
    ) -> Setting<Value> {
        if src.is_unknown(field) {
            unknown.insert("policy".into());
            return Setting::None;
        }
        match src.after[field].as_str().filter(|s| !s.trim().is_empty()) {
            None => Setting::None,
            Some(t) => match document(t) {
                Ok(d) => Setting::Set(d),
                Err(e) => {
                    notes.push(format!(
                        "{}: policy is not a valid IAM document: {e}",
                        src.address
                    ));
                    unknown.insert("policy".into());
                    Setting::None
                }
            },
        }
    }
    let policy = match kid("aws_s3_bucket_policy") {
        Some(k) => text_policy(k, "policy", unknown, notes),
        None => text_policy(inst, "policy", unknown, notes),
    };

    // Object ownership.
    let ownership_controls = match kid("aws_s3_bucket_ownership_controls") {
        Some(k) if k.is_unknown("rule") => {
            unknown.insert("ownership_controls".into());
            Setting::None
        }
        Some(k) => k.after["rule"][0]["object_ownership"]
            .as_str()
            .map(|s| Setting::Set(s.to_string()))
            .unwrap_or(Setting::None),
        None => {
            // Likewise: S3's default for a new bucket, or whatever an
            // existing bucket has.
            unknown.insert("ownership_controls".into());
            Setting::None
        }
    };

    // ACL: canned or explicit grants; the owner's id is never in a plan.
    unknown.insert("acl.owner".into());
    let (acl_src, canned_field, grants_field) = match kid("aws_s3_bucket_acl") {
        Some(k) => (k, "acl", "access_control_policy"),
        None => (inst, "acl", "grant"),
    };
    let raw_grants = if acl_src.is_unknown(canned_field) && acl_src.is_unknown(grants_field) {
        unknown.insert("acl".into());
        Vec::new()
    } else {
        let explicit = if grants_field == "access_control_policy" {
            explicit_grants(&acl_src.after["access_control_policy"][0]["grant"])
        } else {
            explicit_grants(&acl_src.after["grant"])
        };
        match acl_src.after[canned_field]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            Some(c) if !acl_src.is_unknown(canned_field) => match canned(c) {
                Some(g) => g,
                None => {
                    notes.push(format!(
                        "{}: acl: canned ACL {c:?} is not one holdfast models",
                        inst.address
                    ));
                    unknown.insert("acl".into());
                    Vec::new()
                }
            },
            _ if !explicit.is_empty() => explicit,
            _ if acl_src.is_unknown(canned_field) || acl_src.is_unknown(grants_field) => {
                unknown.insert("acl".into());
                Vec::new()
            }
            // Neither set: a new bucket's ACL is private; an existing
            // bucket keeps whatever it has.
            _ if acl_src.create => canned("private").unwrap_or_default(),
            _ => {
                unknown.insert("acl".into());
                Vec::new()
            }
        }
    };
    let grants = match s3::normalize_grants(raw_grants) {
        Ok(g) => g,
        Err(e) => {
            notes.push(format!("{}: acl: {e}", inst.address));
            unknown.insert("acl".into());
            BTreeMap::new()
        }
    };

    // Server access logging.
    let log = |b: &Value| -> Setting<Logging> {
        match b.as_object() {
            Some(_) => Setting::Set(Logging {
                target_bucket: b["target_bucket"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("arn:aws:s3:::")
                    .to_string(),
                target_prefix: b["target_prefix"].as_str().unwrap_or("").to_string(),
            }),
            None => Setting::None,
        }
    };
    let logging = match kid("aws_s3_bucket_logging") {
        Some(k) if k.is_unknown("target_bucket") || k.is_unknown("target_prefix") => {
            unknown.insert("logging".into());
            Setting::None
        }
        Some(k) => log(&k.after),
        None if inst.is_unknown("logging") => {
            unknown.insert("logging".into());
            Setting::None
        }
        None => log(&inst.after["logging"][0]),
    };

    let b = Bucket {
        name,
        encryption,
        versioning,
        public_access_block,
        policy,
        ownership_controls,
        acl: s3::Acl {
            owner: OWNER_UNKNOWN.into(),
            grants,
        },
        logging,
        tags: tags(inst),
    };
    Some((s3::TYPE, b.to_value()))
}

/// A policy document attribute (JSON text).
fn doc_attr(
    src: &Inst,
    field: &str,
    canon: &str,
    unknown: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Value {
    if src.is_unknown(field) {
        unknown.insert(canon.into());
        return json!({"Version": "2012-10-17", "Statement": []});
    }
    match document(src.after[field].as_str().unwrap_or("")) {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!(
                "{}: {field} is not a valid IAM document: {e}",
                src.address
            ));
            unknown.insert(canon.into());
            json!({"Version": "2012-10-17", "Statement": []})
        }
    }
}

fn role(
    inst: &Inst,
    kids: &[&Inst],
    unknown: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Built {
    let name = inst.str("name").unwrap_or_else(|| {
        unknown.insert("name".into());
        inst.address.clone()
    });
    for (attr, canon) in [
        ("path", "path"),
        ("description", "description"),
        ("max_session_duration", "max_session_duration"),
        ("permissions_boundary", "permissions_boundary"),
        ("tags", "tags"),
    ] {
        if inst.is_unknown(attr) {
            unknown.insert(canon.into());
        }
    }
    let trust_policy = doc_attr(inst, "assume_role_policy", "trust_policy", unknown, notes);
    // Inline policies: the role's inline_policy blocks and its
    // aws_iam_role_policy resources.
    let mut inline: BTreeMap<String, Value> = BTreeMap::new();
    let split: Vec<&&Inst> = kids
        .iter()
        .filter(|k| k.rtype == "aws_iam_role_policy")
        .collect();
    if inst.unknown_unless_split("inline_policy", !split.is_empty()) {
        unknown.insert("inline_policies".into());
    } else {
        for b in inst.after["inline_policy"].as_array().into_iter().flatten() {
            let Some(n) = b["name"].as_str().filter(|n| !n.is_empty()) else {
                continue;
            };
            match document(b["policy"].as_str().unwrap_or("")) {
                Ok(d) => {
                    inline.insert(n.to_string(), d);
                }
                Err(e) => {
                    notes.push(format!("{}: inline policy {n}: {e}", inst.address));
                    unknown.insert("inline_policies".into());
                }
            }
        }
    }
    for k in split {
        match k.str("name") {
            Some(n) => {
                let d = doc_attr(k, "policy", "inline_policies", unknown, notes);
                inline.insert(n, d);
            }
            None => {
                unknown.insert("inline_policies".into());
            }
        }
    }
    let mut attached: Vec<String> = Vec::new();
    let split: Vec<&&Inst> = kids
        .iter()
        .filter(|k| k.rtype == "aws_iam_role_policy_attachment")
        .collect();
    if inst.unknown_unless_split("managed_policy_arns", !split.is_empty()) {
        unknown.insert("attached_policies".into());
    } else {
        attached.extend(strings(&inst.after["managed_policy_arns"]));
    }
    for k in split {
        match k.str("policy_arn") {
            Some(a) => attached.push(a),
            None => {
                unknown.insert("attached_policies".into());
            }
        }
    }
    let r = Role {
        name,
        path: inst.str("path").unwrap_or_else(|| "/".into()),
        description: inst.str("description").unwrap_or_default(),
        max_session_duration: inst.after["max_session_duration"]
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(3600),
        trust_policy,
        inline_policies: inline,
        attached_policies: iam::set(attached),
        permissions_boundary: inst
            .str("permissions_boundary")
            .filter(|s| !s.is_empty())
            .into(),
        tags: tags(inst),
    };
    Some((iam::ROLE, r.to_value()))
}

fn policy(inst: &Inst, unknown: &mut BTreeSet<String>, notes: &mut Vec<String>) -> Built {
    let name = inst.str("name").unwrap_or_else(|| {
        unknown.insert("name".into());
        inst.address.clone()
    });
    let arn = inst.str("arn").unwrap_or_else(|| {
        unknown.insert("arn".into());
        format!("arn:aws:iam::{OWNER_UNKNOWN}:policy/{name}")
    });
    if inst.is_unknown("tags") {
        unknown.insert("tags".into());
    }
    let p = ManagedPolicy {
        name,
        arn,
        path: inst.str("path").unwrap_or_else(|| "/".into()),
        description: inst.str("description").unwrap_or_default(),
        document: doc_attr(inst, "policy", "document", unknown, notes),
        tags: tags(inst),
    };
    Some((iam::POLICY, p.to_value()))
}

fn user(
    inst: &Inst,
    kids: &[&Inst],
    unknown: &mut BTreeSet<String>,
    notes: &mut Vec<String>,
) -> Built {
    let name = inst.str("name").unwrap_or_else(|| {
        unknown.insert("name".into());
        inst.address.clone()
    });
    if inst.is_unknown("tags") {
        unknown.insert("tags".into());
    }
    fn of<'a>(kids: &'a [&'a Inst], t: &'a str) -> impl Iterator<Item = &'a &'a Inst> + 'a {
        kids.iter().filter(move |k| k.rtype == t)
    }
    let mut inline = BTreeMap::new();
    for k in of(kids, "aws_iam_user_policy") {
        match k.str("name") {
            Some(n) => {
                let d = doc_attr(k, "policy", "inline_policies", unknown, notes);
                inline.insert(n, d);
            }
            None => {
                unknown.insert("inline_policies".into());
            }
        }
    }
    let mut attached = Vec::new();
    for k in of(kids, "aws_iam_user_policy_attachment") {
        match k.str("policy_arn") {
            Some(a) => attached.push(a),
            None => {
                unknown.insert("attached_policies".into());
            }
        }
    }
    let mut groups = Vec::new();
    for k in of(kids, "aws_iam_user_group_membership") {
        if k.is_unknown("groups") {
            unknown.insert("groups".into());
        }
        groups.extend(strings(&k.after["groups"]));
    }
    // Access keys: their ids are not known before apply; each is keyed by
    // its address (rules count keys and read their status).
    // A key this plan creates is created by the apply: no older than now.
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut keys = BTreeMap::new();
    for k in of(kids, "aws_iam_access_key") {
        let status = k.str("status").unwrap_or_else(|| "Active".into());
        if !k.create {
            unknown.insert("access_keys".into());
        }
        keys.insert(
            k.address.clone(),
            AccessKey {
                status,
                created: now.clone(),
            },
        );
    }
    if !inst.create {
        // An existing user may have keys, MFA devices or a password that
        // Terraform does not manage.
        unknown.insert("access_keys".into());
        unknown.insert("mfa_devices".into());
        unknown.insert("console_login".into());
    }
    let u = User {
        name,
        path: inst.str("path").unwrap_or_else(|| "/".into()),
        inline_policies: inline,
        attached_policies: iam::set(attached),
        groups: iam::set(groups),
        console_login: of(kids, "aws_iam_user_login_profile").next().is_some(),
        access_keys: keys,
        mfa_devices: BTreeMap::new(),
        permissions_boundary: inst
            .str("permissions_boundary")
            .filter(|s| !s.is_empty())
            .into(),
        tags: tags(inst),
    };
    Some((iam::USER, u.to_value()))
}

/// The configuration expressions of an instance's resource block.
fn config_of<'a>(inst: &Inst, config: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
    let prefix = if inst.module.is_empty() {
        String::new()
    } else {
        format!("{}.", module_path(&inst.module))
    };
    config.get(&format!("{prefix}{}.{}", inst.rtype, inst.name))
}

/// `aws_iam_account_password_policy`: the account's one policy. An
/// argument the configuration leaves out is IAM's default (the provider
/// shows such optional, computed arguments as unknown); one it sets from a
/// value unknown until apply is unknown.
fn password_policy(inst: &Inst, exprs: Option<&Value>, unknown: &mut BTreeSet<String>) -> Built {
    use holdfast_core::password_policy::{PasswordPolicy, Rules, TYPE};
    let set_unknown = |k: &str| inst.is_unknown(k) && exprs.is_some_and(|e| e.get(k).is_some());
    let mut int = |k: &str, default: i64| {
        if set_unknown(k) {
            unknown.insert(format!("policy.{k}"));
        }
        inst.after[k]
            .as_i64()
            .unwrap_or(default)
            .clamp(0, i64::from(i32::MAX)) as i32
    };
    let minimum_password_length = int("minimum_password_length", 6);
    let max_password_age = int("max_password_age", 0);
    let password_reuse_prevention = int("password_reuse_prevention", 0);
    let mut flag = |k: &str, default: bool| {
        if set_unknown(k) {
            unknown.insert(format!("policy.{k}"));
        }
        inst.after[k].as_bool().unwrap_or(default)
    };
    let rules = Rules {
        minimum_password_length,
        require_symbols: flag("require_symbols", false),
        require_numbers: flag("require_numbers", false),
        require_uppercase_characters: flag("require_uppercase_characters", false),
        require_lowercase_characters: flag("require_lowercase_characters", false),
        allow_users_to_change_password: flag("allow_users_to_change_password", true),
        max_password_age,
        password_reuse_prevention,
        hard_expiry: flag("hard_expiry", false),
    };
    let p = PasswordPolicy {
        policy: Setting::Set(rules),
    };
    Some((TYPE, p.to_value()))
}

/// A rule that cannot be judged on a resource because it reads values
/// unknown until apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Undecided {
    pub rule: String,
    pub severity: crate::Severity,
    pub resource_type: String,
    pub resource: String,
    /// The unknown attribute paths the rule reads.
    pub attributes: Vec<String>,
}

/// Every rule's verdict on every resource of a plan.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    pub findings: Vec<Finding>,
    pub undecided: Vec<Undecided>,
    /// (rule, resource address) pairs judged and passed.
    pub passed: Vec<(String, String)>,
    /// Rules that failed to evaluate (skipped).
    pub errors: Vec<crate::PolicyError>,
}

/// Judges a plan's resources with `policies`.
pub fn judge(policies: &mut crate::Policies, plan: &Plan) -> Result<Verdicts, crate::PolicyError> {
    let resources: Vec<Resource> = plan.resources.iter().map(|r| r.resource.clone()).collect();
    let (findings, errors) = policies.evaluate_all(&resources)?;
    let mut by_pair: BTreeMap<(&str, &str), Vec<&Finding>> = BTreeMap::new();
    for f in &findings {
        by_pair
            .entry((f.rule.as_str(), f.resource.as_str()))
            .or_default()
            .push(f);
    }
    let broken: BTreeSet<&str> = errors.iter().map(|e| e.file.as_str()).collect();
    let mut v = Verdicts::default();
    for r in &plan.resources {
        for rule in policies.rules() {
            if !rule.resource_types.contains(&r.resource.resource_type)
                || broken.contains(rule.file.as_str())
            {
                continue;
            }
            let account_unknown = rule.reads_account && r.resource.account.is_empty();
            if rule.reads_any(&r.unknown) || account_unknown {
                let mut attributes = match &rule.inputs {
                    None => r.unknown.clone(),
                    Some(_) => r
                        .unknown
                        .iter()
                        .filter(|u| rule.reads_any(std::slice::from_ref(*u)))
                        .cloned()
                        .collect(),
                };
                if account_unknown {
                    attributes.push("account".into());
                }
                v.undecided.push(Undecided {
                    rule: rule.id.clone(),
                    severity: rule.severity,
                    resource_type: r.resource.resource_type.clone(),
                    resource: r.address.clone(),
                    attributes,
                });
                continue;
            }
            match by_pair.get(&(rule.id.as_str(), r.address.as_str())) {
                Some(found) => v.findings.extend(found.iter().map(|f| (*f).clone())),
                None => v.passed.push((rule.id.clone(), r.address.clone())),
            }
        }
    }
    v.errors = errors;
    Ok(v)
}

#[cfg(test)]
mod tests;
