//! Policy as code: rules written in Rego, each mapped to the compliance
//! controls it supports, evaluated in-process (regorus, no OPA server) over
//! holdfast's canonical resources — the same input whether the resource
//! was read from a live account or from a Terraform plan.
//!
//! A rule is one Rego package under `holdfast.rules.` with
//! - `metadata`: `id`, `title`, `description`, `severity`
//!   (`low|medium|high|critical`), `resource_types`, `remediation` and
//!   `controls` (framework → control ids, frameworks from [`FRAMEWORKS`]);
//! - `deny`: a set of messages, one per violation, for `input` =
//!   `{"type", "id", "account", "region", "attributes"}` (canonical
//!   attributes).
//!
//! Shared helpers live in packages under `holdfast.lib.`. The built-in
//! library is compiled in from `policies/`; users add rules from a
//! directory, and a file that does not load is reported with its file,
//! line and reason while every other rule keeps working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The compliance frameworks rules map to, by key.
pub const FRAMEWORKS: &[(&str, &str)] = &[
    (
        "cis-aws",
        "CIS Amazon Web Services Foundations Benchmark v4.0.1",
    ),
    ("pci-dss-v4", "PCI DSS v4.0"),
    ("hipaa", "HIPAA Security Rule (45 CFR Part 164)"),
    ("nist-800-53-r5", "NIST SP 800-53 Rev. 5"),
    ("soc2", "SOC 2 Trust Services Criteria"),
    ("iso27001-2022", "ISO/IEC 27001:2022 Annex A"),
    ("gdpr", "GDPR"),
];

/// The built-in rule library (file name, source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("lib/sg.rego", include_str!("../../policies/lib/sg.rego")),
    ("lib/iam.rego", include_str!("../../policies/lib/iam.rego")),
    (
        "lib/password.rego",
        include_str!("../../policies/lib/password.rego"),
    ),
    (
        "sg_no_world_ssh_ipv4.rego",
        include_str!("../../policies/sg_no_world_ssh_ipv4.rego"),
    ),
    (
        "sg_no_world_ssh_ipv6.rego",
        include_str!("../../policies/sg_no_world_ssh_ipv6.rego"),
    ),
    (
        "sg_no_world_rdp_ipv4.rego",
        include_str!("../../policies/sg_no_world_rdp_ipv4.rego"),
    ),
    (
        "sg_no_world_rdp_ipv6.rego",
        include_str!("../../policies/sg_no_world_rdp_ipv6.rego"),
    ),
    (
        "sg_default_restricts_all.rego",
        include_str!("../../policies/sg_default_restricts_all.rego"),
    ),
    (
        "sg_no_world_all_ports.rego",
        include_str!("../../policies/sg_no_world_all_ports.rego"),
    ),
    (
        "sg_no_world_db_ports.rego",
        include_str!("../../policies/sg_no_world_db_ports.rego"),
    ),
    (
        "s3_default_encryption.rego",
        include_str!("../../policies/s3_default_encryption.rego"),
    ),
    (
        "s3_public_access_block.rego",
        include_str!("../../policies/s3_public_access_block.rego"),
    ),
    (
        "s3_deny_insecure_transport.rego",
        include_str!("../../policies/s3_deny_insecure_transport.rego"),
    ),
    (
        "s3_versioning.rego",
        include_str!("../../policies/s3_versioning.rego"),
    ),
    (
        "s3_access_logging.rego",
        include_str!("../../policies/s3_access_logging.rego"),
    ),
    (
        "s3_no_public_acl.rego",
        include_str!("../../policies/s3_no_public_acl.rego"),
    ),
    (
        "iam_no_admin_star.rego",
        include_str!("../../policies/iam_no_admin_star.rego"),
    ),
    (
        "iam_user_no_direct_policies.rego",
        include_str!("../../policies/iam_user_no_direct_policies.rego"),
    ),
    (
        "iam_console_user_mfa.rego",
        include_str!("../../policies/iam_console_user_mfa.rego"),
    ),
    (
        "iam_trust_no_public_principal.rego",
        include_str!("../../policies/iam_trust_no_public_principal.rego"),
    ),
    (
        "sg_unrestricted_egress.rego",
        include_str!("../../policies/sg_unrestricted_egress.rego"),
    ),
    (
        "sg_no_world_any_port.rego",
        include_str!("../../policies/sg_no_world_any_port.rego"),
    ),
    (
        "sg_no_world_high_risk_ports.rego",
        include_str!("../../policies/sg_no_world_high_risk_ports.rego"),
    ),
    (
        "s3_kms_encryption.rego",
        include_str!("../../policies/s3_kms_encryption.rego"),
    ),
    (
        "s3_mfa_delete.rego",
        include_str!("../../policies/s3_mfa_delete.rego"),
    ),
    (
        "s3_policy_no_public_principal.rego",
        include_str!("../../policies/s3_policy_no_public_principal.rego"),
    ),
    (
        "s3_acls_disabled.rego",
        include_str!("../../policies/s3_acls_disabled.rego"),
    ),
    (
        "s3_policy_cross_account.rego",
        include_str!("../../policies/s3_policy_cross_account.rego"),
    ),
    (
        "iam_no_administratoraccess.rego",
        include_str!("../../policies/iam_no_administratoraccess.rego"),
    ),
    (
        "iam_one_active_access_key.rego",
        include_str!("../../policies/iam_one_active_access_key.rego"),
    ),
    (
        "iam_role_max_session.rego",
        include_str!("../../policies/iam_role_max_session.rego"),
    ),
    (
        "iam_permissions_boundary.rego",
        include_str!("../../policies/iam_permissions_boundary.rego"),
    ),
    (
        "iam_no_service_wildcard.rego",
        include_str!("../../policies/iam_no_service_wildcard.rego"),
    ),
    (
        "iam_no_cloudshell_fullaccess.rego",
        include_str!("../../policies/iam_no_cloudshell_fullaccess.rego"),
    ),
    (
        "sg_no_world_remote_admin.rego",
        include_str!("../../policies/sg_no_world_remote_admin.rego"),
    ),
    (
        "iam_access_keys_rotated.rego",
        include_str!("../../policies/iam_access_keys_rotated.rego"),
    ),
    (
        "iam_role_no_inline_policies.rego",
        include_str!("../../policies/iam_role_no_inline_policies.rego"),
    ),
    (
        "iam_trust_cross_account_external_id.rego",
        include_str!("../../policies/iam_trust_cross_account_external_id.rego"),
    ),
    (
        "iam_no_passrole_star.rego",
        include_str!("../../policies/iam_no_passrole_star.rego"),
    ),
    (
        "acct_password_min_length.rego",
        include_str!("../../policies/acct_password_min_length.rego"),
    ),
    (
        "acct_password_reuse.rego",
        include_str!("../../policies/acct_password_reuse.rego"),
    ),
    (
        "acct_password_complexity.rego",
        include_str!("../../policies/acct_password_complexity.rego"),
    ),
    (
        "acct_password_expiry.rego",
        include_str!("../../policies/acct_password_expiry.rego"),
    ),
    (
        "acct_password_policy_strong.rego",
        include_str!("../../policies/acct_password_policy_strong.rego"),
    ),
];

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// A rule's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub resource_types: Vec<String>,
    pub remediation: String,
    /// Framework key → control ids.
    pub controls: BTreeMap<String, Vec<String>>,
    /// The Rego package (`holdfast.rules.x`), and the file it came from.
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub file: String,
    /// The attribute paths (at most two segments, e.g. `acl.grants`) the
    /// rule reads, found in its source and the helpers it imports; None
    /// when it reads `input.attributes` as a whole. A result that depends
    /// on a value unknown until apply is reported as unknown.
    #[serde(default, skip_deserializing)]
    pub inputs: Option<Vec<String>>,
    /// Whether the rule reads `input.account` (unknown in a plan).
    #[serde(default, skip_deserializing)]
    pub reads_account: bool,
}

impl Rule {
    /// Whether the rule reads any of `unknown` (attribute paths).
    pub fn reads_any(&self, unknown: &[String]) -> bool {
        let Some(inputs) = &self.inputs else {
            return !unknown.is_empty();
        };
        let overlaps = |a: &str, b: &str| {
            let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            b == a || b.starts_with(&format!("{a}."))
        };
        unknown
            .iter()
            .any(|u| inputs.iter().any(|i| overlaps(i, u)))
    }
}

/// The attribute paths a Rego source reads (`input.attributes.a.b…`, cut
/// to two segments); None if it reads `input.attributes` whole.
fn attribute_paths(source: &str) -> Option<Vec<String>> {
    const ROOT: &str = "input.attributes";
    let mut out = std::collections::BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find(ROOT) {
        rest = &rest[i + ROOT.len()..];
        if !rest.starts_with('.') {
            return None;
        }
        let path: String = rest[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).take(2).collect();
        if segments.is_empty() {
            return None;
        }
        out.insert(segments.join("."));
    }
    Some(out.into_iter().collect())
}

/// One resource as rules see it.
#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
    /// The account the resource belongs to (empty when not known yet,
    /// e.g. in a plan).
    pub account: String,
    pub region: String,
    pub attributes: Value,
}

/// A rule that a resource fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub resource_type: String,
    pub resource: String,
    pub region: String,
    pub message: String,
}

/// A rule file that could not be loaded, or a failed evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    pub file: String,
    pub line: Option<u32>,
    pub reason: String,
}

/// Loaded rules, ready to evaluate. Cloning is cheap enough to give a
/// long evaluation its own engine.
#[derive(Clone)]
pub struct Policies {
    engine: regorus::Engine,
    rules: Vec<Rule>,
}

/// The line a regorus message points at (`file:LINE:COL: …`).
fn line_of(message: &str, file: &str) -> Option<u32> {
    let rest = message.split(file).nth(1)?;
    rest.strip_prefix(':')?
        .split(':')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn load_error(file: &str, e: impl std::fmt::Display) -> PolicyError {
    let reason = e.to_string();
    PolicyError {
        file: file.to_string(),
        line: line_of(&reason, file),
        // regorus quotes the source around the error; keep its reason.
        reason: match reason.rfind("error: ") {
            Some(i) => reason[i + "error: ".len()..].trim().to_string(),
            None => reason
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        },
    }
}

impl Policies {
    /// The built-in rules only.
    pub fn builtin() -> Result<Policies, PolicyError> {
        let (p, errors) = Policies::load(None)?;
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(p),
        }
    }

    /// The built-in rules and the `.rego` files of `extra` (if given).
    /// A broken built-in is an error; broken user files are returned and
    /// left out, so everything else keeps working.
    pub fn load(extra: Option<&Path>) -> Result<(Policies, Vec<PolicyError>), PolicyError> {
        let mut sources: Vec<(String, String, bool)> = BUILTIN
            .iter()
            .map(|(f, s)| (format!("policies/{f}"), s.to_string(), true))
            .collect();
        let mut errors = Vec::new();
        if let Some(dir) = extra {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| PolicyError {
                    file: dir.display().to_string(),
                    line: None,
                    reason: format!("cannot read the policy directory: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rego"))
                .collect();
            files.sort();
            for f in files {
                match std::fs::read_to_string(&f) {
                    Ok(s) => sources.push((f.display().to_string(), s, false)),
                    Err(e) => errors.push(load_error(&f.display().to_string(), e)),
                }
            }
        }
        let mut engine = regorus::Engine::new();
        let mut rules = Vec::new();
        // Helper packages and the attribute paths they read.
        let mut libs: BTreeMap<String, (Option<Vec<String>>, bool)> = BTreeMap::new();
        for (file, source, builtin) in sources {
            // Each file is tried on a copy first, so a broken one leaves the
            // engine as it was.
            let mut trial = engine.clone();
            let loaded = trial
                .add_policy(file.clone(), source.clone())
                .map_err(|e| load_error(&file, e))
                .and_then(|package| {
                    let package = package.trim_start_matches("data.").to_string();
                    if !package.starts_with("holdfast.rules.") {
                        libs.insert(
                            package,
                            (attribute_paths(&source), source.contains("input.account")),
                        );
                        return Ok(None);
                    }
                    let meta = trial
                        .eval_rule(format!("data.{package}.metadata"))
                        .map_err(|e| load_error(&file, e))?;
                    let json = meta.to_json_str().map_err(|e| load_error(&file, e))?;
                    let mut rule: Rule = serde_json::from_str(&json).map_err(|e| PolicyError {
                        file: file.clone(),
                        line: None,
                        reason: format!("metadata: {e}"),
                    })?;
                    rule.package = package;
                    rule.file = file.clone();
                    let mut inputs = attribute_paths(&source);
                    rule.reads_account = source.contains("input.account");
                    for (lib, (paths, account)) in &libs {
                        if source.contains(&format!("data.{lib}")) {
                            rule.reads_account |= *account;
                            inputs = match (inputs, paths) {
                                (Some(mut a), Some(b)) => {
                                    a.extend(b.iter().cloned());
                                    a.sort();
                                    a.dedup();
                                    Some(a)
                                }
                                _ => None,
                            };
                        }
                    }
                    rule.inputs = inputs;
                    validate(&rule)?;
                    Ok(Some(rule))
                });
            match loaded {
                Ok(rule) => {
                    if let Some(rule) = rule {
                        if rules.iter().any(|r: &Rule| r.id == rule.id) {
                            let e = PolicyError {
                                file: file.clone(),
                                line: None,
                                reason: format!("rule id {} is already defined", rule.id),
                            };
                            if builtin {
                                return Err(e);
                            }
                            errors.push(e);
                            continue;
                        }
                        rules.push(rule);
                    }
                    engine = trial;
                }
                Err(e) if builtin => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        Ok((Policies { engine, rules }, errors))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Keeps only the rules `keep` accepts (e.g. one framework's).
    pub fn retain(&mut self, keep: impl Fn(&Rule) -> bool) {
        self.rules.retain(|r| keep(r));
    }

    /// Every finding of every rule over `resources`. A rule that fails to
    /// evaluate (e.g. a user rule meeting an input it did not expect) is
    /// reported once in `errors` and skipped; the other rules still run.
    pub fn evaluate(&mut self, resources: &[Resource]) -> Result<Vec<Finding>, PolicyError> {
        let (findings, errors) = self.evaluate_all(resources)?;
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(findings),
        }
    }

    /// Like [`Policies::evaluate`], returning rule errors beside the
    /// findings instead of failing.
    pub fn evaluate_all(
        &mut self,
        resources: &[Resource],
    ) -> Result<(Vec<Finding>, Vec<PolicyError>), PolicyError> {
        let mut errors: Vec<PolicyError> = Vec::new();
        let mut findings = Vec::new();
        for r in resources {
            let input = serde_json::to_string(r).expect("a resource always serializes");
            self.engine
                .set_input_json(&input)
                .map_err(|e| load_error("input", e))?;
            for rule in &self.rules {
                if !rule.resource_types.contains(&r.resource_type) {
                    continue;
                }
                if errors.iter().any(|e| e.file == rule.file) {
                    continue;
                }
                let deny = match self.engine.eval_rule(format!("data.{}.deny", rule.package)) {
                    Ok(d) => d,
                    Err(e) => {
                        errors.push(load_error(&rule.file, e));
                        continue;
                    }
                };
                let json = deny.to_json_str().map_err(|e| load_error(&rule.file, e))?;
                let messages: Vec<String> = match serde_json::from_str::<Value>(&json) {
                    Ok(Value::Array(items)) => items
                        .into_iter()
                        .map(|m| {
                            m.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| m.to_string())
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for message in messages {
                    findings.push(Finding {
                        rule: rule.id.clone(),
                        severity: rule.severity,
                        resource_type: r.resource_type.clone(),
                        resource: r.id.clone(),
                        region: r.region.clone(),
                        message,
                    });
                }
            }
        }
        Ok((findings, errors))
    }
}

fn validate(rule: &Rule) -> Result<(), PolicyError> {
    let err = |reason: String| PolicyError {
        file: rule.file.clone(),
        line: None,
        reason,
    };
    if rule.id.trim().is_empty() || rule.title.trim().is_empty() {
        return Err(err("metadata: id and title are required".into()));
    }
    if rule.resource_types.is_empty() {
        return Err(err(format!(
            "metadata of {}: resource_types is empty",
            rule.id
        )));
    }
    for f in rule.controls.keys() {
        if !FRAMEWORKS.iter().any(|(k, _)| k == f) {
            return Err(err(format!(
                "metadata of {}: unknown framework {f:?}; known: {}",
                rule.id,
                FRAMEWORKS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

pub mod report;
pub mod tfplan;
