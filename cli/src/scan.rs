//! `holdfast scan PLAN.json`: the environment's rules on a Terraform plan,
//! offline, before deploy. Exit 0: nothing at or above the threshold;
//! 1: findings at or above it; 2: bad input (not a plan, unreadable, an
//! unsupported version, broken rules, unknown framework).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use holdfast_policy::tfplan::{self, Plan, Verdicts};
use holdfast_policy::{Policies, Rule, Severity};
use serde_json::{json, Value};

use crate::{usage, Failure};

#[derive(Clone, Copy, clap::ValueEnum, PartialEq)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

pub struct Scan<'a> {
    pub plan: &'a Path,
    pub policies: Option<&'a Path>,
    pub fail_on: Severity,
    pub format: ScanFormat,
    pub framework: Option<&'a str>,
}

pub fn run(s: Scan<'_>) -> Result<(), Failure> {
    if let Some(f) = s.framework {
        holdfast_policy::report::check_framework(f).map_err(usage)?;
    }
    let text = std::fs::read_to_string(s.plan)
        .map_err(|e| usage(format!("cannot read {}: {e}", s.plan.display())))?;
    let plan = tfplan::parse(&text).map_err(|e| usage(format!("{}: {e}", s.plan.display())))?;
    let (mut policies, broken) = Policies::load(s.policies).map_err(|e| usage(e.to_string()))?;
    if !broken.is_empty() {
        let list: Vec<String> = broken.iter().map(|e| e.to_string()).collect();
        return Err(usage(format!(
            "{} rule file(s) do not load: {}",
            broken.len(),
            list.join("; ")
        )));
    }
    if let Some(f) = s.framework {
        // Only the rules mapped to the framework.
        let keep: Vec<String> = policies
            .rules()
            .iter()
            .filter(|r| r.controls.contains_key(f))
            .map(|r| r.id.clone())
            .collect();
        policies.retain(|r| keep.contains(&r.id));
    }
    let mut v = tfplan::judge(&mut policies, &plan).map_err(|e| usage(e.to_string()))?;
    sort(&mut v);
    let rules: BTreeMap<&str, &Rule> = policies
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let uri = s.plan.display().to_string();
    match s.format {
        ScanFormat::Text => text_report(&plan, &v, &rules, s.fail_on),
        ScanFormat::Json => print(&json_report(&plan, &v, &rules, s.fail_on, s.framework)),
        ScanFormat::Sarif => print(&sarif(&v, &rules, &uri)),
        ScanFormat::Junit => println!("{}", junit(&plan, &v, &rules, &uri)),
    }
    if !v.errors.is_empty() {
        let list: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
        return Err(usage(format!(
            "{} rule(s) failed to evaluate: {}",
            v.errors.len(),
            list.join("; ")
        )));
    }
    let blocking = v
        .findings
        .iter()
        .filter(|f| f.severity >= s.fail_on)
        .count();
    if blocking > 0 {
        return Err(Failure {
            code: 1,
            message: format!("{blocking} finding(s) at or above {}", s.fail_on.as_str()),
        });
    }
    Ok(())
}

fn sort(v: &mut Verdicts) {
    v.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.rule.cmp(&b.rule))
            .then(a.resource.cmp(&b.resource))
            .then(a.message.cmp(&b.message))
    });
    v.undecided
        .sort_by(|a, b| a.rule.cmp(&b.rule).then(a.resource.cmp(&b.resource)));
}

fn print(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values always serialize")
    );
}

fn text_report(plan: &Plan, v: &Verdicts, rules: &BTreeMap<&str, &Rule>, fail_on: Severity) {
    for f in &v.findings {
        let title = rules.get(f.rule.as_str()).map_or("", |r| r.title.as_str());
        println!(
            "{:<8} {:<7} {}  {}: {}",
            f.severity.as_str().to_uppercase(),
            f.rule,
            f.resource,
            title,
            f.message
        );
    }
    if !v.undecided.is_empty() {
        println!();
        println!("Unknown until apply (not judged):");
        for u in &v.undecided {
            println!(
                "  {:<7} {}  reads {}",
                u.rule,
                u.resource,
                u.attributes.join(", ")
            );
        }
    }
    for n in &plan.notes {
        println!("note: {n}");
    }
    if !plan.not_judged.is_empty() {
        let list: Vec<String> = plan
            .not_judged
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect();
        println!("note: no rules for {}", list.join(", "));
    }
    println!();
    println!(
        "{} resource(s), {} finding(s) ({} at or above {}), {} passed, {} unknown until apply",
        plan.resources.len(),
        v.findings.len(),
        v.findings.iter().filter(|f| f.severity >= fail_on).count(),
        fail_on.as_str(),
        v.passed.len(),
        v.undecided.len()
    );
}

fn json_report(
    plan: &Plan,
    v: &Verdicts,
    rules: &BTreeMap<&str, &Rule>,
    fail_on: Severity,
    framework: Option<&str>,
) -> Value {
    let mut by_severity: BTreeMap<&str, u32> = BTreeMap::new();
    for f in &v.findings {
        *by_severity.entry(f.severity.as_str()).or_default() += 1;
    }
    json!({
        "plan": {"format_version": plan.format_version, "terraform_version": plan.terraform_version},
        "framework": framework,
        "fail_on": fail_on.as_str(),
        "resources": plan.resources.iter().map(|r| json!({
            "address": r.address,
            "type": r.resource.resource_type,
            "name": r.name,
            "region": r.resource.region,
            "joined": r.joined,
            "unknown": r.unknown,
        })).collect::<Vec<_>>(),
        "findings": v.findings.iter().map(|f| json!({
            "rule": f.rule,
            "severity": f.severity.as_str(),
            "title": rules.get(f.rule.as_str()).map(|r| r.title.clone()),
            "resource_type": f.resource_type,
            "address": f.resource,
            "message": f.message,
            "controls": rules.get(f.rule.as_str()).map(|r| &r.controls),
        })).collect::<Vec<_>>(),
        "unknown": v.undecided.iter().map(|u| json!({
            "rule": u.rule,
            "severity": u.severity.as_str(),
            "resource_type": u.resource_type,
            "address": u.resource,
            "attributes": u.attributes,
        })).collect::<Vec<_>>(),
        "passed": v.passed.iter().map(|(rule, address)| json!({"rule": rule, "address": address})).collect::<Vec<_>>(),
        "notes": plan.notes,
        "not_judged": plan.not_judged,
        "summary": {
            "resources": plan.resources.len(),
            "rules": rules.len(),
            "findings": v.findings.len(),
            "by_severity": by_severity,
            "at_or_above_threshold": v.findings.iter().filter(|f| f.severity >= fail_on).count(),
            "passed": v.passed.len(),
            "unknown": v.undecided.len(),
        },
    })
}

/// SARIF level of a severity.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub code scanning reads `security-severity` (0.0–10.0).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// SARIF 2.1.0: one run, the rules that produced a result as the
/// driver's rules, one result per finding (and a `note`-level result with
/// kind `review` per rule left unknown until apply).
fn sarif(v: &Verdicts, rules: &BTreeMap<&str, &Rule>, uri: &str) -> Value {
    let used: BTreeSet<&str> = v
        .findings
        .iter()
        .map(|f| f.rule.as_str())
        .chain(v.undecided.iter().map(|u| u.rule.as_str()))
        .collect();
    let listed: Vec<&Rule> = used
        .iter()
        .filter_map(|id| rules.get(id).copied())
        .collect();
    let index: BTreeMap<&str, usize> = listed
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let location = |address: &str| {
        json!([{
            "physicalLocation": {"artifactLocation": {"uri": uri}},
            "logicalLocations": [{"fullyQualifiedName": address, "kind": "resource"}],
        }])
    };
    let mut results: Vec<Value> = v
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": index.get(f.rule.as_str()).copied().unwrap_or(0),
                "kind": "fail",
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.resource, f.message)},
                "locations": location(&f.resource),
            })
        })
        .collect();
    results.extend(v.undecided.iter().map(|u| {
        json!({
            "ruleId": u.rule,
            "ruleIndex": index.get(u.rule.as_str()).copied().unwrap_or(0),
            "kind": "review",
            "level": "none",
            "message": {"text": format!(
                "{}: not judged: {} unknown until apply", u.resource, u.attributes.join(", ")
            )},
            "locations": location(&u.resource),
        })
    }));
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "holdfast",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/holdfast/holdfast",
                "rules": listed.iter().map(|r| json!({
                    "id": r.id,
                    "name": r.id.replace('-', ""),
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.description},
                    "help": {"text": r.remediation},
                    "defaultConfiguration": {"level": level(r.severity)},
                    "properties": {
                        "severity": r.severity.as_str(),
                        "security-severity": security_severity(r.severity),
                        "tags": r.controls.iter().flat_map(|(f, ids)| ids.iter().map(move |c| format!("{f}:{c}"))).collect::<Vec<_>>(),
                    },
                })).collect::<Vec<_>>(),
            }},
            "artifacts": [{"location": {"uri": uri}}],
            "results": results,
        }],
    })
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML as CI systems read it: one test suite per rule, one test case
/// per resource the rule applies to — failed, skipped (unknown until
/// apply) or passed.
fn junit(plan: &Plan, v: &Verdicts, rules: &BTreeMap<&str, &Rule>, uri: &str) -> String {
    #[derive(Default)]
    struct Suite<'a> {
        failed: BTreeMap<&'a str, Vec<&'a str>>,
        skipped: BTreeMap<&'a str, String>,
        passed: BTreeSet<&'a str>,
    }
    let mut suites: BTreeMap<&str, Suite> = BTreeMap::new();
    for f in &v.findings {
        suites
            .entry(f.rule.as_str())
            .or_default()
            .failed
            .entry(f.resource.as_str())
            .or_default()
            .push(f.message.as_str());
    }
    for u in &v.undecided {
        suites.entry(u.rule.as_str()).or_default().skipped.insert(
            u.resource.as_str(),
            format!("unknown until apply: {}", u.attributes.join(", ")),
        );
    }
    for (rule, address) in &v.passed {
        suites
            .entry(rule.as_str())
            .or_default()
            .passed
            .insert(address.as_str());
    }
    let tests: usize = suites
        .values()
        .map(|s| s.failed.len() + s.skipped.len() + s.passed.len())
        .sum();
    let failures: usize = suites.values().map(|s| s.failed.len()).sum();
    let skipped: usize = suites.values().map(|s| s.skipped.len()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"holdfast scan {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
        xml(uri)
    ));
    let types: BTreeMap<&str, &str> = plan
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r.resource.resource_type.as_str()))
        .collect();
    for (rule, s) in &suites {
        let title = rules.get(rule).map_or("", |r| r.title.as_str());
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
            xml(&format!("{rule} {title}")),
            s.failed.len() + s.skipped.len() + s.passed.len(),
            s.failed.len(),
            s.skipped.len()
        ));
        let case = |address: &str| {
            format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&format!(
                    "{rule}.{}",
                    types.get(address).copied().unwrap_or("")
                )),
                xml(address)
            )
        };
        for (address, messages) in &s.failed {
            let severity = rules.get(rule).map_or("", |r| r.severity.as_str());
            out.push_str(&format!(
                "{}>\n      <failure message=\"{}\" type=\"{severity}\">{}</failure>\n    </testcase>\n",
                case(address),
                xml(messages.first().copied().unwrap_or("")),
                xml(&messages.join("\n"))
            ));
        }
        for (address, why) in &s.skipped {
            out.push_str(&format!(
                "{}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                case(address),
                xml(why)
            ));
        }
        for address in &s.passed {
            out.push_str(&format!("{}/>\n", case(address)));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
