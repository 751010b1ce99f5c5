//! Compliance scans: every rule over an environment's latest complete
//! snapshot, with waivers applied and totals per framework control, stored
//! as history (`scans/{env}/{id}` plus its findings in chunks) and compared
//! with the scan before it.
//!
//! The decider of an environment runs its scans (on its schedule and on
//! demand), because it holds the latest complete observation of every
//! partition and the environment's fence: one writer per environment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use holdfast_core::ObservedResource;
use holdfast_policy::report::{self, FindingKey, Scan, SnapshotPart};
use holdfast_policy::{Finding, Policies, PolicyError, Resource, Severity};
use serde::{Deserialize, Serialize};

use crate::records::Environment;

/// How an environment is judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Frameworks reported on (empty: every framework).
    #[serde(default)]
    pub frameworks: Vec<String>,
    /// Seconds between scheduled scans (0: on demand only).
    pub scan_interval_seconds: u64,
    /// Scans kept in history; older ones are pruned (recorded in the audit
    /// chain).
    pub keep_scans: u32,
}

impl Default for Settings {
    /// Hourly, a month of history.
    fn default() -> Self {
        Settings {
            frameworks: Vec::new(),
            scan_interval_seconds: 3600,
            keep_scans: 720,
        }
    }
}

/// The resources of a snapshot as rules see them.
pub fn resources<'a>(
    account: &str,
    parts: impl IntoIterator<Item = (&'a str, &'a str, &'a [ObservedResource])>,
) -> Vec<Resource> {
    let mut out = Vec::new();
    for (region, resource_type, items) in parts {
        for r in items {
            out.push(Resource {
                resource_type: resource_type.to_string(),
                id: r.id.clone(),
                account: account.to_string(),
                region: region.to_string(),
                attributes: (*r.attributes).clone(),
            });
        }
    }
    out
}

/// Every finding over `resources`; rules that fail to evaluate are
/// returned as errors (and skipped).
pub fn evaluate(policies: &mut Policies, resources: &[Resource]) -> (Vec<Finding>, Vec<String>) {
    match policies.evaluate_all(resources) {
        Ok((findings, errors)) => (
            findings,
            errors.iter().map(PolicyError::to_string).collect(),
        ),
        Err(e) => (Vec::new(), vec![e.to_string()]),
    }
}

/// What a scan needs besides the rules.
pub struct ScanInput<'a> {
    pub id: u64,
    pub env: &'a Environment,
    pub trigger: &'a str,
    pub by: &'a str,
    pub baseline_version: u64,
    pub snapshot: &'a [(SnapshotPart, Arc<Vec<ObservedResource>>)],
    /// The unwaived findings of the previous scan (None: first scan).
    pub previous: Option<&'a BTreeSet<FindingKey>>,
    pub now: &'a str,
}

/// Runs one scan (CPU-bound: call it off the async threads).
pub fn scan(policies: &mut Policies, input: ScanInput<'_>) -> Scan {
    let resources = resources(
        &input.env.account,
        input
            .snapshot
            .iter()
            .map(|(p, r)| (p.region.as_str(), p.resource_type.as_str(), r.as_slice())),
    );
    let (findings, errors) = evaluate(policies, &resources);
    let assessed = report::assess(findings, &input.env.waivers, input.now);
    let failing = report::failing(&assessed);
    let (newly_failing, newly_passing) = match input.previous {
        Some(prev) => (
            failing.difference(prev).cloned().collect(),
            prev.difference(&failing).cloned().collect(),
        ),
        // The first scan has nothing to compare with.
        None => (Vec::new(), Vec::new()),
    };
    let failed = failing.len() as u32;
    Scan {
        id: input.id,
        env: input.env.name.clone(),
        at: input.now.to_string(),
        trigger: input.trigger.to_string(),
        by: input.by.to_string(),
        baseline_version: input.baseline_version,
        frameworks: if input.env.compliance.frameworks.is_empty() {
            holdfast_policy::FRAMEWORKS
                .iter()
                .map(|(k, _)| k.to_string())
                .collect()
        } else {
            input.env.compliance.frameworks.clone()
        },
        snapshot: input.snapshot.iter().map(|(p, _)| p.clone()).collect(),
        resources: resources.len() as u32,
        rules: policies.rules().len() as u32,
        failed,
        waived: assessed.len() as u32 - failed,
        failed_by_severity: report::by_severity(&assessed),
        totals: report::totals(
            policies.rules(),
            &assessed,
            &input.env.compliance.frameworks,
        ),
        errors,
        newly_failing,
        newly_passing,
        findings: assessed,
    }
}

/// The unwaived findings at or above `min` of a snapshot about to become a
/// baseline, as lines naming rule, severity, resource and message.
pub fn gate(
    policies: &mut Policies,
    env: &Environment,
    parts: &BTreeMap<(String, String), Arc<Vec<ObservedResource>>>,
    min: Severity,
    now: &str,
) -> Result<Vec<String>, Vec<String>> {
    let resources = resources(
        &env.account,
        parts
            .iter()
            .map(|((region, t), r)| (region.as_str(), t.as_str(), r.as_slice())),
    );
    let (findings, errors) = evaluate(policies, &resources);
    if !errors.is_empty() {
        // A rule that cannot judge the snapshot cannot vouch for it.
        return Err(errors);
    }
    let assessed = report::assess(findings, &env.waivers, now);
    Ok(report::blocking(&assessed, min)
        .into_iter()
        .map(|a| {
            format!(
                "{} ({}) on {} {}: {}",
                a.finding.rule,
                a.finding.severity.as_str(),
                a.finding.resource_type,
                a.finding.resource,
                a.finding.message
            )
        })
        .collect())
}
