//! From findings to a compliance report: waivers applied, totals per
//! framework control. Pure, shared by the controller's scans, baseline
//! gates and the offline plan scanner.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Finding, Rule, Severity, FRAMEWORKS};

/// An accepted exception: findings of `rule` on resources matching
/// `resource` are reported as waived, not failed, until `expires`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiver {
    pub id: String,
    pub rule: String,
    /// A pattern over the resource id: `*` any run of characters, `?` any
    /// one character, everything else literal.
    pub resource: String,
    pub reason: String,
    /// RFC 3339 UTC with three fractional digits (sorts as a string).
    pub expires: String,
    pub by: String,
    pub created_at: String,
}

impl Waiver {
    /// Whether the waiver covers this finding at time `now` (same format
    /// as `expires`).
    pub fn covers(&self, f: &Finding, now: &str) -> bool {
        self.expires.as_str() > now && self.rule == f.rule && glob(&self.resource, &f.resource)
    }
}

/// `*` matches any run of characters (including none), `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether a finding counts against compliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Failed,
    Waived,
}

/// A finding with its waiver status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessed {
    #[serde(flatten)]
    pub finding: Finding,
    pub status: Status,
    /// The waiver that applies, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<String>,
}

/// Applies the waivers in force at `now`.
pub fn assess(findings: Vec<Finding>, waivers: &[Waiver], now: &str) -> Vec<Assessed> {
    findings
        .into_iter()
        .map(|f| {
            let waiver = waivers
                .iter()
                .find(|w| w.covers(&f, now))
                .map(|w| w.id.clone());
            Assessed {
                status: if waiver.is_some() {
                    Status::Waived
                } else {
                    Status::Failed
                },
                waiver,
                finding: f,
            }
        })
        .collect()
}

/// One control of a framework: the rules mapped to it and how they fared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlTotal {
    pub control: String,
    pub rules: Vec<String>,
    /// Unwaived findings of those rules.
    pub failed: u32,
    pub waived: u32,
    /// No unwaived finding.
    pub passed: bool,
}

/// Totals of one framework.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameworkTotal {
    pub framework: String,
    pub title: String,
    pub controls: Vec<ControlTotal>,
    pub controls_passed: u32,
    pub controls_failed: u32,
}

/// Totals per control of each framework in `frameworks` (empty: every
/// framework), over the rules that were evaluated.
pub fn totals(rules: &[Rule], assessed: &[Assessed], frameworks: &[String]) -> Vec<FrameworkTotal> {
    let mut counts: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for a in assessed {
        let c = counts.entry(a.finding.rule.as_str()).or_default();
        match a.status {
            Status::Failed => c.0 += 1,
            Status::Waived => c.1 += 1,
        }
    }
    FRAMEWORKS
        .iter()
        .filter(|(k, _)| frameworks.is_empty() || frameworks.iter().any(|f| f == k))
        .map(|(key, title)| {
            let mut controls: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for r in rules {
                for c in r.controls.get(*key).into_iter().flatten() {
                    controls
                        .entry(c.as_str())
                        .or_default()
                        .insert(r.id.as_str());
                }
            }
            let mut controls: Vec<(&str, BTreeSet<&str>)> = controls.into_iter().collect();
            // 1.8 before 1.10, A.5.15 before A.8.1.
            controls.sort_by_key(|(c, _)| natural(c));
            let controls: Vec<ControlTotal> = controls
                .into_iter()
                .map(|(control, rules)| {
                    let (failed, waived) = rules.iter().fold((0, 0), |(f, w), r| {
                        let (rf, rw) = counts.get(r).copied().unwrap_or_default();
                        (f + rf, w + rw)
                    });
                    ControlTotal {
                        control: control.to_string(),
                        rules: rules.into_iter().map(String::from).collect(),
                        failed,
                        waived,
                        passed: failed == 0,
                    }
                })
                .collect();
            FrameworkTotal {
                framework: key.to_string(),
                title: title.to_string(),
                controls_passed: controls.iter().filter(|c| c.passed).count() as u32,
                controls_failed: controls.iter().filter(|c| !c.passed).count() as u32,
                controls,
            }
        })
        .collect()
}

/// A control id as a sort key: digit runs compare as numbers.
fn natural(id: &str) -> Vec<(u8, u64, String)> {
    let mut out = Vec::new();
    let mut rest = id;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push((0, rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            out.push((1, 0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    out
}

/// The unwaived findings at or above `min`, most severe first.
pub fn blocking(assessed: &[Assessed], min: Severity) -> Vec<&Assessed> {
    let mut out: Vec<&Assessed> = assessed
        .iter()
        .filter(|a| a.status == Status::Failed && a.finding.severity >= min)
        .collect();
    out.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then(a.finding.rule.cmp(&b.finding.rule))
            .then(a.finding.resource.cmp(&b.finding.resource))
    });
    out
}

/// An unknown framework key, as a message listing the known ones.
pub fn check_framework(f: &str) -> Result<(), String> {
    if FRAMEWORKS.iter().any(|(k, _)| *k == f) {
        Ok(())
    } else {
        Err(format!(
            "unknown framework {f:?}; known: {}",
            FRAMEWORKS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Which rule fails on which resource: how scans are compared.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindingKey {
    pub rule: String,
    pub resource_type: String,
    pub resource: String,
    pub region: String,
    pub severity: Severity,
}

impl FindingKey {
    pub fn of(f: &Finding) -> FindingKey {
        FindingKey {
            rule: f.rule.clone(),
            resource_type: f.resource_type.clone(),
            resource: f.resource.clone(),
            region: f.region.clone(),
            severity: f.severity,
        }
    }
}

/// One partition of the snapshot a scan judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPart {
    pub region: String,
    pub resource_type: String,
    /// When the agent collected it.
    pub collected_at: String,
    pub resources: u32,
}

/// One compliance scan of an environment: its findings (with waivers
/// applied), totals per framework control, and how it compares with the
/// scan before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// 1, 2, … per environment.
    pub id: u64,
    pub env: String,
    pub at: String,
    /// `schedule` or `on demand`.
    pub trigger: String,
    pub by: String,
    /// The baseline current when the scan ran (0: none).
    pub baseline_version: u64,
    /// The frameworks reported on (the environment's selection).
    pub frameworks: Vec<String>,
    pub snapshot: Vec<SnapshotPart>,
    pub resources: u32,
    pub rules: u32,
    /// Unwaived findings, and waived ones.
    pub failed: u32,
    pub waived: u32,
    /// Unwaived findings per severity.
    pub failed_by_severity: BTreeMap<String, u32>,
    pub totals: Vec<FrameworkTotal>,
    /// Rules that could not be evaluated (and were skipped).
    pub errors: Vec<String>,
    /// Unwaived findings that the previous scan did not have, and those it
    /// had that are gone (fixed, waived, or the resource removed); both
    /// empty for the first scan.
    pub newly_failing: Vec<FindingKey>,
    pub newly_passing: Vec<FindingKey>,
    /// The findings (left out of history listings).
    #[serde(default)]
    pub findings: Vec<Assessed>,
}

impl Scan {
    /// The unwaived findings as comparable keys.
    pub fn failing(&self) -> BTreeSet<FindingKey> {
        failing(&self.findings)
    }

    /// Only what concerns `framework`: its totals, and the findings of the
    /// rules mapped to it in this scan.
    pub fn for_framework(mut self, framework: &str) -> Result<Scan, String> {
        check_framework(framework)?;
        let Some(total) = self
            .totals
            .iter()
            .find(|t| t.framework == framework)
            .cloned()
        else {
            return Err(format!(
                "scan {} did not report on {framework} (it covered {})",
                self.id,
                self.frameworks.join(", ")
            ));
        };
        let rules: BTreeSet<&String> = total.controls.iter().flat_map(|c| &c.rules).collect();
        self.findings.retain(|a| rules.contains(&a.finding.rule));
        self.failed = self
            .findings
            .iter()
            .filter(|a| a.status == Status::Failed)
            .count() as u32;
        self.waived = self.findings.len() as u32 - self.failed;
        self.failed_by_severity = by_severity(&self.findings);
        self.newly_failing.retain(|k| rules.contains(&k.rule));
        self.newly_passing.retain(|k| rules.contains(&k.rule));
        self.totals = vec![total];
        self.frameworks = vec![framework.to_string()];
        Ok(self)
    }
}

/// A scan in a history listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub id: u64,
    pub at: String,
    pub trigger: String,
    pub by: String,
    pub baseline_version: u64,
    pub resources: u32,
    pub failed: u32,
    pub waived: u32,
    pub failed_by_severity: BTreeMap<String, u32>,
    /// framework → (controls passed, controls failed).
    pub controls: BTreeMap<String, (u32, u32)>,
    pub newly_failing: u32,
    pub newly_passing: u32,
    pub errors: u32,
    /// SHA-256 over the stored detail parts in order (set by the store),
    /// so the audited summary vouches for the findings too.
    #[serde(default)]
    pub detail_digest: String,
}

impl Scan {
    pub fn summary(&self) -> ScanSummary {
        ScanSummary {
            id: self.id,
            at: self.at.clone(),
            trigger: self.trigger.clone(),
            by: self.by.clone(),
            baseline_version: self.baseline_version,
            resources: self.resources,
            failed: self.failed,
            waived: self.waived,
            failed_by_severity: self.failed_by_severity.clone(),
            controls: self
                .totals
                .iter()
                .map(|t| (t.framework.clone(), (t.controls_passed, t.controls_failed)))
                .collect(),
            newly_failing: self.newly_failing.len() as u32,
            newly_passing: self.newly_passing.len() as u32,
            errors: self.errors.len() as u32,
            detail_digest: String::new(),
        }
    }
}

/// The unwaived findings as comparable keys.
pub fn failing(assessed: &[Assessed]) -> BTreeSet<FindingKey> {
    assessed
        .iter()
        .filter(|a| a.status == Status::Failed)
        .map(|a| FindingKey::of(&a.finding))
        .collect()
}

/// Unwaived findings per severity.
pub fn by_severity(assessed: &[Assessed]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for a in assessed.iter().filter(|a| a.status == Status::Failed) {
        *out.entry(a.finding.severity.as_str().to_string())
            .or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, resource: &str, severity: Severity) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            resource_type: "aws_security_group".into(),
            resource: resource.into(),
            region: "us-east-1".into(),
            message: "m".into(),
        }
    }

    fn waiver(rule: &str, resource: &str, expires: &str) -> Waiver {
        Waiver {
            id: "w1".into(),
            rule: rule.into(),
            resource: resource.into(),
            reason: "r".into(),
            expires: expires.into(),
            by: "me".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn control_ids_sort_by_their_numbers() {
        let mut ids = vec![
            "1.10",
            "1.8",
            "A.8.1",
            "A.5.15",
            "164.312(e)(1)",
            "164.308(a)(1)(ii)(B)",
        ];
        ids.sort_by_key(|c| natural(c));
        assert_eq!(
            ids,
            [
                "1.8",
                "1.10",
                "164.308(a)(1)(ii)(B)",
                "164.312(e)(1)",
                "A.5.15",
                "A.8.1"
            ]
        );
    }

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob("sg-*", "sg-0abc"));
        assert!(glob("*", ""));
        assert!(glob(
            "arn:aws:iam::*:role/ci-*",
            "arn:aws:iam::123:role/ci-deploy"
        ));
        assert!(!glob(
            "arn:aws:iam::*:role/ci-*",
            "arn:aws:iam::123:role/app"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*b*b", "abxbb"));
        assert!(!glob("sg-1", "sg-12"));
    }

    #[test]
    fn waivers_apply_to_their_rule_and_resources_until_they_expire() {
        let w = [waiver("SG-01", "sg-1*", "2026-06-01T00:00:00.000Z")];
        let found = vec![
            finding("SG-01", "sg-10", Severity::High),
            finding("SG-01", "sg-20", Severity::High),
            finding("SG-02", "sg-10", Severity::High),
        ];
        let before = assess(found.clone(), &w, "2026-05-31T23:59:59.999Z");
        assert_eq!(
            before.iter().map(|a| a.status).collect::<Vec<_>>(),
            [Status::Waived, Status::Failed, Status::Failed]
        );
        assert_eq!(before[0].waiver.as_deref(), Some("w1"));
        let after = assess(found, &w, "2026-06-01T00:00:00.000Z");
        assert!(after.iter().all(|a| a.status == Status::Failed));
    }

    #[test]
    fn totals_count_failed_and_waived_per_control() {
        let policies = crate::Policies::builtin().unwrap();
        let rules = policies.rules();
        let sg01 = rules.iter().find(|r| r.id == "SG-01").unwrap();
        let cis = &sg01.controls["cis-aws"];
        let assessed = assess(
            vec![
                finding("SG-01", "sg-1", Severity::High),
                finding("SG-01", "sg-2", Severity::High),
            ],
            &[waiver("SG-01", "sg-2", "9999-01-01T00:00:00.000Z")],
            "2026-01-01T00:00:00.000Z",
        );
        let t = totals(rules, &assessed, &["cis-aws".to_string()]);
        assert_eq!(t.len(), 1);
        let control = t[0].controls.iter().find(|c| c.control == cis[0]).unwrap();
        assert_eq!(
            (control.failed, control.waived, control.passed),
            (1, 1, false)
        );
        assert!(t[0].controls_failed >= 1);
        assert_eq!(
            t[0].controls_passed + t[0].controls_failed,
            t[0].controls.len() as u32
        );
        // With the other finding waived too, the control passes.
        let all_waived = assess(
            vec![finding("SG-01", "sg-2", Severity::High)],
            &[waiver("SG-01", "sg-2", "9999-01-01T00:00:00.000Z")],
            "2026-01-01T00:00:00.000Z",
        );
        let t = totals(rules, &all_waived, &[]);
        assert_eq!(t.len(), FRAMEWORKS.len());
        assert!(t[0].controls.iter().all(|c| c.passed));
    }

    #[test]
    fn blocking_keeps_unwaived_findings_at_or_above_the_threshold() {
        let assessed = assess(
            vec![
                finding("A", "r1", Severity::Low),
                finding("B", "r1", Severity::Critical),
                finding("C", "r1", Severity::High),
                finding("D", "r2", Severity::Critical),
            ],
            &[waiver("D", "r2", "9999-01-01T00:00:00.000Z")],
            "2026-01-01T00:00:00.000Z",
        );
        let b: Vec<&str> = blocking(&assessed, Severity::High)
            .iter()
            .map(|a| a.finding.rule.as_str())
            .collect();
        assert_eq!(b, ["B", "C"]);
    }
}
