//! Rendering: aligned tables for people, JSON for scripts.

use holdfast_proto::admin::v1 as admin;
use serde_json::{json, Value};

pub struct Output {
    json: bool,
}

/// A plain aligned text table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// One row whose last column holds several lines: the first line beside
    /// `cells`, each further line on a row of its own under it.
    pub fn row_lines(&mut self, mut cells: Vec<String>, lines: &[String]) {
        let width = cells.len();
        cells.push(lines.first().cloned().unwrap_or_default());
        self.rows.push(cells);
        for more in lines.iter().skip(1) {
            let mut row = vec![String::new(); width];
            row.push(more.clone());
            self.rows.push(row);
        }
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            println!("{}", parts.join("  ").trim_end());
        };
        line(&self.header);
        for r in &self.rows {
            line(r);
        }
    }
}

fn mode(m: i32) -> &'static str {
    admin::EnforcementMode::try_from(m).map_or("unknown", |m| m.label())
}

fn key_json(k: Option<&admin::ResourceKey>) -> Value {
    match k {
        Some(k) => {
            json!({"type": k.resource_type, "id": k.id, "account": k.account_id, "region": k.region})
        }
        None => Value::Null,
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::String(s.to_string()))
}

fn env_json(e: &admin::Environment) -> Value {
    json!({
        "name": e.name,
        "account": e.account_id,
        "regions": e.regions,
        "resource_types": e.resource_types,
        "enforcement": mode(e.enforcement),
        "current_baseline": if e.current_baseline == 0 { Value::Null } else { json!(e.current_baseline) },
        "created_at": e.created_at,
        "agent_connected": e.agent_connected,
        "open_drift": e.open_drift,
        "decider": if e.decider.is_empty() { Value::Null } else { json!(e.decider) },
        "pauses": e.pauses.iter().map(pause_json).collect::<Vec<_>>(),
        "webhooks": e.webhooks.iter().map(|w| json!({"id": w.id, "url": w.url, "format": w.format, "by": w.by, "created_at": w.created_at})).collect::<Vec<_>>(),
        "safety": e.safety.as_ref().map(|s| json!({
            "max_remediations_per_minute": s.max_remediations_per_minute,
            "flap_threshold": s.flap_threshold,
            "flap_window_seconds": s.flap_window_seconds,
            "enforce_types": s.enforce_types,
            "ignore_paths": s.ignore_paths,
            "delete_added": s.delete_added,
            "recreate_removed": s.recreate_removed,
        })),
        "compliance": e.compliance.as_ref().map(|c| json!({
            "frameworks": c.frameworks,
            "scan_interval_seconds": c.scan_interval_seconds,
            "keep_scans": c.keep_scans,
        })),
        "waivers": e.waivers.iter().map(waiver_json).collect::<Vec<_>>(),
        "partitions": e.partitions.iter().map(|p| json!({
            "region": p.region, "resource_type": p.resource_type, "complete": p.complete,
            "error": if p.error.is_empty() { Value::Null } else { json!(p.error) },
            "resources": p.resources, "collected_at": p.collected_at,
        })).collect::<Vec<_>>(),
    })
}

fn drift_json(d: &admin::DriftRecord) -> Value {
    let mut v = json!({
        "id": d.id,
        "environment": d.environment,
        "resource": key_json(d.resource.as_ref()),
        "kind": d.kind,
        "changes": d.changes.iter().map(|c| json!({"path": c.path, "old": parse(&c.old_json), "new": parse(&c.new_json)})).collect::<Vec<_>>(),
        "status": d.status,
        "detected_at": d.detected_at,
        "updated_at": d.updated_at,
        "baseline_version": d.baseline_version,
        "revision": d.revision,
        "decided_by": d.decided_by,
        "compliance": {
            "newly_failing": d.newly_failing.iter().map(|f| json!({"rule": f.rule, "severity": f.severity, "message": f.message})).collect::<Vec<_>>(),
            "newly_passing": d.newly_passing,
        },
    });
    if !d.healed_at.is_empty() {
        v["healed_at"] = json!(d.healed_at);
    }
    if !d.note.is_empty() {
        v["note"] = json!(d.note);
    }
    v
}

fn waiver_json(w: &admin::Waiver) -> Value {
    json!({"id": w.id, "rule": w.rule, "resource": w.resource, "reason": w.reason,
           "expires": w.expires, "by": w.by, "created_at": w.created_at})
}

fn severities(m: &std::collections::BTreeMap<String, u32>) -> String {
    let order = ["critical", "high", "medium", "low"];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|s| m.get(*s).map(|n| format!("{n} {s}")))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn pause_json(p: &admin::Pause) -> Value {
    json!({"id": p.id, "until": p.until, "reason": p.reason, "by": p.by,
           "resource_types": p.resource_types, "resources": p.resources, "created_at": p.created_at})
}

/// What a pause covers, for people.
fn pause_scope(p: &admin::Pause) -> String {
    if p.resource_types.is_empty() && p.resources.is_empty() {
        return "everything".into();
    }
    let mut parts = p.resource_types.clone();
    parts.extend(p.resources.iter().cloned());
    parts.join(", ")
}

fn summary_json(s: &admin::BaselineSummary) -> Value {
    json!({"environment": s.environment, "version": s.version, "created_at": s.created_at,
           "reason": s.reason, "resources": s.resources, "current": s.current,
           "status": s.status,
           "rolled_back_from": if s.rolled_back_from == 0 { Value::Null } else { json!(s.rolled_back_from) },
           "created_by": s.created_by,
           "approved_at": if s.approved_at.is_empty() { Value::Null } else { json!(s.approved_at) },
           "approved_by": if s.approved_by.is_empty() { Value::Null } else { json!(s.approved_by) }})
}

fn diff_json(d: &admin::ResourceDiff) -> Value {
    json!({
        "resource": key_json(d.resource.as_ref()),
        "kind": d.kind,
        "changes": d.changes.iter().map(|c| json!({"path": c.path, "old": parse(&c.old_json), "new": parse(&c.new_json)})).collect::<Vec<_>>(),
    })
}

fn remediation_json(r: &admin::RemediationRecord) -> Value {
    json!({
        "id": r.id,
        "environment": r.environment,
        "resource": key_json(r.resource.as_ref()),
        "drift_id": r.drift_id,
        "baseline_version": r.baseline_version,
        "status": r.status,
        "planned_actions": r.planned_actions,
        "actions": r.actions,
        "journal": r.journal.iter().map(|j| json!({"at": j.at, "step": j.step, "detail": j.detail})).collect::<Vec<_>>(),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "decided_by": r.decided_by,
    })
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values always serialize")
    );
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// What `holdfast deploy` made: the new baseline and, for scripts, its
    /// diff against the version that was current (people saw it already).
    pub fn deployed(
        &self,
        summary: Option<&admin::BaselineSummary>,
        previous: u64,
        diffs: &[admin::ResourceDiff],
    ) {
        if self.json {
            return print_json(&json!({
                "baseline": summary.map(summary_json),
                "previous": if previous == 0 { Value::Null } else { json!(previous) },
                "diff": diffs.iter().map(diff_json).collect::<Vec<_>>(),
            }));
        }
        self.baseline_summary(summary);
    }

    pub fn env(&self, e: &admin::Environment) {
        if self.json {
            return print_json(&env_json(e));
        }
        println!("name:         {}", e.name);
        println!("account:      {}", e.account_id);
        println!("regions:      {}", e.regions.join(", "));
        println!("types:        {}", e.resource_types.join(", "));
        println!("enforcement:  {}", mode(e.enforcement));
        println!(
            "baseline:     {}",
            if e.current_baseline == 0 {
                "none".to_string()
            } else {
                format!("v{}", e.current_baseline)
            }
        );
        println!(
            "agent:        {}",
            if e.agent_connected {
                "connected"
            } else {
                "not connected"
            }
        );
        println!("open drift:   {}", e.open_drift);
        if let Some(s) = &e.safety {
            println!(
                "safety:       at most {} remediation(s)/min; flapping after {} revert(s) within {}",
                s.max_remediations_per_minute,
                s.flap_threshold,
                humantime::format_duration(std::time::Duration::from_secs(s.flap_window_seconds))
            );
            if !s.enforce_types.is_empty() {
                println!("enforced:     only {}", s.enforce_types.join(", "));
            }
            if !s.ignore_paths.is_empty() {
                println!("ignored:      {}", s.ignore_paths.join(", "));
            }
            println!(
                "lifecycle:    added resources {}, removed ones {}",
                if s.delete_added {
                    "deleted"
                } else {
                    "reported"
                },
                if s.recreate_removed {
                    "recreated"
                } else {
                    "reported"
                }
            );
        }
        for w in &e.webhooks {
            println!("webhook:      {} ({}) id {}", w.url, w.format, w.id);
        }
        if let Some(c) = &e.compliance {
            println!(
                "compliance:   {}; {}",
                if c.frameworks.is_empty() {
                    "every framework".to_string()
                } else {
                    c.frameworks.join(", ")
                },
                if c.scan_interval_seconds == 0 {
                    "scanned on demand only".to_string()
                } else {
                    format!(
                        "scanned every {}",
                        humantime::format_duration(std::time::Duration::from_secs(
                            c.scan_interval_seconds
                        ))
                    )
                }
            );
        }
        for w in &e.waivers {
            println!(
                "waiver:       {} on {} until {} by {}: {} (waiver {})",
                w.rule, w.resource, w.expires, w.by, w.reason, w.id
            );
        }
        for p in &e.pauses {
            println!(
                "paused:       {} until {} by {}: {} (pause {})",
                pause_scope(p),
                p.until,
                p.by,
                p.reason,
                p.id
            );
        }
        if !e.partitions.is_empty() {
            println!();
            let mut t = Table::new(&[
                "REGION",
                "TYPE",
                "STATUS",
                "RESOURCES",
                "COLLECTED",
                "ERROR",
            ]);
            for p in &e.partitions {
                t.row(vec![
                    p.region.clone(),
                    p.resource_type.clone(),
                    if p.complete { "complete" } else { "failed" }.into(),
                    p.resources.to_string(),
                    p.collected_at.clone(),
                    p.error.clone(),
                ]);
            }
            t.print();
        }
    }

    /// One compliance scan: totals per framework, then findings.
    pub fn scan(&self, scan: &holdfast_policy::report::Scan) {
        if self.json {
            return print_json(&serde_json::to_value(scan).expect("scans serialize"));
        }
        println!(
            "scan {} of {} at {} ({}, by {}); baseline v{}",
            scan.id, scan.env, scan.at, scan.trigger, scan.by, scan.baseline_version
        );
        println!(
            "{} resource(s), {} rule(s): {} failed ({}), {} waived",
            scan.resources,
            scan.rules,
            scan.failed,
            severities(&scan.failed_by_severity),
            scan.waived
        );
        if !scan.newly_failing.is_empty() || !scan.newly_passing.is_empty() {
            println!(
                "since the previous scan: {} newly failing, {} newly passing",
                scan.newly_failing.len(),
                scan.newly_passing.len()
            );
        }
        for e in &scan.errors {
            println!("rule error: {e}");
        }
        println!();
        let mut t = Table::new(&[
            "FRAMEWORK",
            "CONTROL",
            "STATUS",
            "FAILED",
            "WAIVED",
            "RULES",
        ]);
        for f in &scan.totals {
            for c in &f.controls {
                t.row(vec![
                    f.framework.clone(),
                    c.control.clone(),
                    if c.passed { "pass" } else { "FAIL" }.into(),
                    c.failed.to_string(),
                    c.waived.to_string(),
                    c.rules.join(","),
                ]);
            }
        }
        t.print();
        for f in &scan.totals {
            println!(
                "{}: {} control(s) pass, {} fail",
                f.framework, f.controls_passed, f.controls_failed
            );
        }
        if !scan.findings.is_empty() {
            println!();
            let mut t = Table::new(&[
                "STATUS", "SEVERITY", "RULE", "TYPE", "RESOURCE", "REGION", "MESSAGE",
            ]);
            let mut findings: Vec<_> = scan.findings.iter().collect();
            findings.sort_by(|a, b| {
                b.finding
                    .severity
                    .cmp(&a.finding.severity)
                    .then(a.finding.rule.cmp(&b.finding.rule))
                    .then(a.finding.resource.cmp(&b.finding.resource))
            });
            for a in findings {
                t.row(vec![
                    match a.status {
                        holdfast_policy::report::Status::Failed => "failed".to_string(),
                        holdfast_policy::report::Status::Waived => "waived".to_string(),
                    },
                    a.finding.severity.as_str().into(),
                    a.finding.rule.clone(),
                    a.finding.resource_type.clone(),
                    a.finding.resource.clone(),
                    a.finding.region.clone(),
                    a.finding.message.clone(),
                ]);
            }
            t.print();
        }
    }

    pub fn scan_history(&self, scans: &[holdfast_policy::report::ScanSummary]) {
        if self.json {
            return print_json(&serde_json::to_value(scans).expect("scans serialize"));
        }
        let mut t = Table::new(&[
            "SCAN",
            "AT",
            "TRIGGER",
            "BASELINE",
            "RESOURCES",
            "FAILED",
            "WAIVED",
            "NEW",
            "FIXED",
            "CONTROLS FAILING",
        ]);
        for s in scans {
            t.row(vec![
                s.id.to_string(),
                s.at.clone(),
                s.trigger.clone(),
                format!("v{}", s.baseline_version),
                s.resources.to_string(),
                format!("{} ({})", s.failed, severities(&s.failed_by_severity)),
                s.waived.to_string(),
                s.newly_failing.to_string(),
                s.newly_passing.to_string(),
                s.controls
                    .iter()
                    .map(|(f, (pass, fail))| format!("{f} {fail}/{}", pass + fail))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        t.print();
    }

    pub fn waiver(&self, w: &admin::Waiver) {
        if self.json {
            return print_json(&waiver_json(w));
        }
        println!(
            "waiver {}: {} on {} until {} ({})",
            w.id, w.rule, w.resource, w.expires, w.reason
        );
    }

    pub fn waivers(&self, list: &[admin::Waiver]) {
        if self.json {
            return print_json(&Value::Array(list.iter().map(waiver_json).collect()));
        }
        let mut t = Table::new(&["ID", "RULE", "RESOURCE", "EXPIRES", "BY", "REASON"]);
        for w in list {
            t.row(vec![
                w.id.clone(),
                w.rule.clone(),
                w.resource.clone(),
                w.expires.clone(),
                w.by.clone(),
                w.reason.clone(),
            ]);
        }
        t.print();
    }

    pub fn envs(&self, envs: &[admin::Environment]) {
        if self.json {
            return print_json(&Value::Array(envs.iter().map(env_json).collect()));
        }
        let mut t = Table::new(&[
            "NAME",
            "ACCOUNT",
            "REGIONS",
            "ENFORCEMENT",
            "BASELINE",
            "AGENT",
            "OPEN DRIFT",
        ]);
        for e in envs {
            t.row(vec![
                e.name.clone(),
                e.account_id.clone(),
                e.regions.join(","),
                mode(e.enforcement).into(),
                if e.current_baseline == 0 {
                    "-".into()
                } else {
                    format!("v{}", e.current_baseline)
                },
                if e.agent_connected { "connected" } else { "-" }.into(),
                e.open_drift.to_string(),
            ]);
        }
        t.print();
    }

    pub fn baseline_summary(&self, s: Option<&admin::BaselineSummary>) {
        let Some(s) = s else { return };
        if self.json {
            return print_json(&summary_json(s));
        }
        let what = match (s.status.as_str(), s.rolled_back_from) {
            ("candidate", _) => "created as a candidate (not in effect until approved)".to_string(),
            (_, 0) => "approved".to_string(),
            (_, from) => format!("approved, restoring v{from}"),
        };
        println!(
            "baseline v{} of {} {what}: {} resource(s) at {}",
            s.version, s.environment, s.resources, s.created_at
        );
    }

    pub fn plan(&self, items: &[admin::PlannedRemediation]) {
        if self.json {
            return print_json(&Value::Array(
                items
                    .iter()
                    .map(|i| {
                        json!({
                            "resource": key_json(i.resource.as_ref()),
                            "drift_id": i.drift_id,
                            "actions": i.actions,
                            "held": if i.held.is_empty() { Value::Null } else { json!(i.held) },
                        })
                    })
                    .collect(),
            ));
        }
        if items.is_empty() {
            println!("no open drift: nothing to do");
            return;
        }
        let mut t = Table::new(&["TYPE", "RESOURCE", "REGION", "WOULD", "CALLS"]);
        for i in items {
            let k = i.resource.clone().unwrap_or_default();
            let would = if i.held.is_empty() {
                "restore".to_string()
            } else {
                format!("hold: {}", i.held)
            };
            t.row_lines(
                vec![
                    k.resource_type.clone(),
                    k.id.clone(),
                    k.region.clone(),
                    would,
                ],
                &i.actions,
            );
        }
        t.print();
    }

    pub fn rules(&self, rules: &[&holdfast_policy::Rule], framework: Option<&str>) {
        if self.json {
            return print_json(&Value::Array(
                rules
                    .iter()
                    .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                    .collect(),
            ));
        }
        let mut t = Table::new(&["ID", "SEVERITY", "TYPES", "TITLE", "CONTROLS"]);
        for r in rules {
            let controls: Vec<String> = r
                .controls
                .iter()
                .filter(|(f, _)| framework.is_none_or(|want| want == f.as_str()))
                .map(|(f, ids)| format!("{f}: {}", ids.join(", ")))
                .collect();
            t.row_lines(
                vec![
                    r.id.clone(),
                    format!("{:?}", r.severity).to_lowercase(),
                    r.resource_types.join(","),
                    r.title.clone(),
                ],
                &controls,
            );
        }
        t.print();
    }

    pub fn audit(&self, entries: &[admin::AuditEntry]) {
        if self.json {
            return print_json(&Value::Array(
                entries
                    .iter()
                    .map(|e| {
                        json!({"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                               "subject": e.subject, "detail": parse(&e.detail_json),
                               "digest": e.digest, "prev": e.prev, "hash": e.hash})
                    })
                    .collect(),
            ));
        }
        let mut t = Table::new(&["SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAIL"]);
        for e in entries {
            let subject = e
                .subject
                .strip_prefix("/holdfast/v1/")
                .unwrap_or(&e.subject);
            let detail = match parse(&e.detail_json) {
                Value::Null => String::new(),
                v => short(&v.to_string()),
            };
            t.row(vec![
                e.seq.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                subject.to_string(),
                detail,
            ]);
        }
        t.print();
    }

    pub fn verify(&self, v: &admin::VerifyAuditResponse) {
        if self.json {
            return print_json(
                &json!({"entries": v.entries, "environments": v.environments, "problems": v.problems, "ok": v.problems.is_empty()}),
            );
        }
        if v.problems.is_empty() {
            println!(
                "verified: {} entries in {} environment(s); every record matches its chain",
                v.entries,
                v.environments.len()
            );
        } else {
            for p in &v.problems {
                println!("{p}");
            }
        }
    }

    pub fn baseline_diff(&self, from: u64, to: &str, diffs: &[admin::ResourceDiff]) {
        if self.json {
            return print_json(&Value::Array(diffs.iter().map(diff_json).collect()));
        }
        if diffs.is_empty() {
            println!("v{from} and {to} are identical");
            return;
        }
        let mut t = Table::new(&["TYPE", "RESOURCE", "REGION", "KIND", "CHANGES"]);
        for d in diffs {
            let k = d.resource.clone().unwrap_or_default();
            t.row_lines(
                vec![
                    k.resource_type.clone(),
                    k.id.clone(),
                    k.region.clone(),
                    d.kind.clone(),
                ],
                &change_lines(&d.changes),
            );
        }
        t.print();
    }

    pub fn baselines(&self, list: &[admin::BaselineSummary]) {
        if self.json {
            return print_json(&Value::Array(list.iter().map(summary_json).collect()));
        }
        let mut t = Table::new(&[
            "VERSION",
            "CURRENT",
            "STATUS",
            "RESOURCES",
            "CREATED",
            "BY",
            "REASON",
        ]);
        for s in list {
            let status = match s.rolled_back_from {
                0 => s.status.clone(),
                from => format!("{} (restores v{from})", s.status),
            };
            t.row(vec![
                s.version.to_string(),
                if s.current { "*" } else { "" }.into(),
                status,
                s.resources.to_string(),
                s.created_at.clone(),
                s.created_by.clone(),
                s.reason.clone(),
            ]);
        }
        t.print();
    }

    pub fn baseline(&self, b: &admin::Baseline) {
        if self.json {
            let mut v = b.summary.as_ref().map(summary_json).unwrap_or(Value::Null);
            v["resources_list"] = Value::Array(
                b.resources
                    .iter()
                    .map(|r| json!({"resource": key_json(r.resource.as_ref()), "hash": r.hash, "attributes": parse(&r.attributes_json)}))
                    .collect(),
            );
            return print_json(&v);
        }
        self.baseline_summary(b.summary.as_ref());
        let mut t = Table::new(&["TYPE", "REGION", "ID", "HASH"]);
        for r in &b.resources {
            let k = r.resource.clone().unwrap_or_default();
            t.row(vec![
                k.resource_type,
                k.region,
                k.id,
                r.hash[..12.min(r.hash.len())].to_string(),
            ]);
        }
        t.print();
    }

    pub fn drift(&self, list: &[admin::DriftRecord]) {
        if self.json {
            return print_json(&Value::Array(list.iter().map(drift_json).collect()));
        }
        if list.is_empty() {
            println!("no drift");
            return;
        }
        let mut t = Table::new(&[
            "TYPE", "RESOURCE", "REGION", "KIND", "STATUS", "DETECTED", "CHANGES",
        ]);
        for d in list {
            let k = d.resource.clone().unwrap_or_default();
            let mut changes: Vec<String> = change_lines(&d.changes);
            if !d.newly_failing.is_empty() {
                let rules: Vec<String> = d
                    .newly_failing
                    .iter()
                    .map(|f| format!("{} ({})", f.rule, f.severity))
                    .collect();
                changes.push(format!("[newly fails {}]", rules.join(", ")));
            }
            if !d.newly_passing.is_empty() {
                changes.push(format!("[newly passes {}]", d.newly_passing.join(", ")));
            }
            if !d.note.is_empty() {
                changes.push(format!("[{}]", d.note));
            }
            let status = if d.healed_at.is_empty() {
                d.status.clone()
            } else {
                format!("{} {}", d.status, d.healed_at)
            };
            t.row_lines(
                vec![
                    k.resource_type.clone(),
                    k.id.clone(),
                    k.region.clone(),
                    d.kind.clone(),
                    status,
                    d.detected_at.clone(),
                ],
                &changes,
            );
        }
        t.print();
    }

    pub fn remediations(&self, list: &[admin::RemediationRecord]) {
        if self.json {
            return print_json(&Value::Array(list.iter().map(remediation_json).collect()));
        }
        if list.is_empty() {
            println!("no remediations");
            return;
        }
        for r in list {
            let k = r.resource.clone().unwrap_or_default();
            println!(
                "{}  {} {}/{}  {}",
                r.id, k.resource_type, k.region, k.id, r.status
            );
            for j in &r.journal {
                println!("    {}  {:<9} {}", j.at, j.step, j.detail);
            }
        }
    }
}

/// `path: old -> new`, one line per change.
fn change_lines(changes: &[admin::Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            format!(
                "{}: {} -> {}",
                c.path,
                short(&c.old_json),
                short(&c.new_json)
            )
        })
        .collect()
}

/// A change value for a table cell: rules are shown compactly.
fn short(json_text: &str) -> String {
    let v = parse(json_text);
    match &v {
        Value::Null => "(none)".into(),
        Value::Object(o) if o.contains_key("protocol") && o.contains_key("source") => {
            let ports = match (o.get("from_port"), o.get("to_port")) {
                (Some(Value::Number(a)), Some(Value::Number(b))) if a == b => a.to_string(),
                (Some(Value::Number(a)), Some(Value::Number(b))) => format!("{a}-{b}"),
                _ => "all".into(),
            };
            let src = o["source"]
                .as_object()
                .and_then(|s| {
                    s.values().find(|v| {
                        v.is_string() && v.as_str() != s.get("kind").and_then(|k| k.as_str())
                    })
                })
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            format!(
                "{} {} from {}",
                o["protocol"].as_str().unwrap_or("?"),
                ports,
                src
            )
        }
        Value::String(s) => s.clone(),
        _ => {
            // Whole documents do not fit a cell: `--output json` has them.
            let text = v.to_string();
            match text.char_indices().nth(MAX_CELL) {
                Some((at, _)) => format!("{}…", &text[..at]),
                None => text,
            }
        }
    }
}

/// The longest change value a table shows.
const MAX_CELL: usize = 80;
