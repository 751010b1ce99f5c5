//! Conversions between wire messages and the controller's records, and the
//! validation of everything an agent sends.

use std::sync::Arc;

use holdfast_core::{Hash, ObservedResource};
use holdfast_proto::admin::v1 as admin;
use holdfast_proto::agent::v1 as agent;

use crate::hub::{EnvView, PartitionData};
use crate::records::{
    BaselineInfo, DriftRecord, DriftStatus, Environment, Mode, RemediationRecord, ResourceRef,
};

/// Turns a wire partition into a validated one. A partition that fails
/// validation is kept as a *failed* partition with the reason, so bad input
/// is visible and never read as deletions.
pub fn partition_from_wire(p: agent::Partition, account: &str) -> PartitionData {
    let collected_at = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(p.collected_at_unix_ms) * 1_000_000,
    )
    .map(crate::records::format_time)
    .unwrap_or_else(|_| crate::records::now());
    let mut data = PartitionData {
        collection_id: p.collection_id,
        account: account.to_string(),
        region: p.region,
        resource_type: p.resource_type,
        complete: p.complete,
        error: p.error,
        resources: Arc::new(Vec::new()),
        collected_at,
    };
    if !data.complete {
        if data.error.is_empty() {
            data.error = "collection failed (no reason given)".to_string();
        }
        return data;
    }
    match validate_resources(
        &data.resource_type,
        &data.region,
        &p.account_id,
        account,
        p.resources,
    ) {
        Ok(resources) => data.resources = Arc::new(resources),
        Err(e) => {
            tracing::warn!(account, region = %data.region, resource_type = %data.resource_type, error = %e,
                "rejected a partition from the agent");
            data.complete = false;
            data.error = format!("rejected by the controller: {e}");
        }
    }
    data
}

fn validate_resources(
    resource_type: &str,
    region: &str,
    claimed_account: &str,
    account: &str,
    resources: Vec<agent::Resource>,
) -> Result<Vec<ObservedResource>, String> {
    let info = holdfast_core::type_info(resource_type)
        .ok_or_else(|| format!("unsupported resource type {resource_type:?}"))?;
    if region.is_empty() {
        return Err("partition has an empty region".to_string());
    }
    if !claimed_account.is_empty() && claimed_account != account {
        return Err(format!(
            "partition claims account {claimed_account} but the stream is for {account}"
        ));
    }
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
        if r.id.is_empty() {
            return Err("a resource has an empty id".to_string());
        }
        let value: serde_json::Value = serde_json::from_slice(&r.attributes_json)
            .map_err(|e| format!("resource {}: attributes are not JSON: {e}", r.id))?;
        let canonical = (info.validate)(&value).map_err(|e| format!("resource {}: {e}", r.id))?;
        let hash = Hash::of(&canonical);
        let claimed = Hash::from_slice(&r.hash).map_err(|e| format!("resource {}: {e}", r.id))?;
        if claimed != hash {
            return Err(format!(
                "resource {}: hash {} does not match its attributes ({})",
                r.id, claimed, hash
            ));
        }
        out.push(ObservedResource {
            id: r.id,
            hash,
            attributes: Arc::new(canonical),
        });
    }
    holdfast_core::resource::sort_by_id(&mut out)
        .map_err(|id| format!("resource {id} appears twice"))?;
    Ok(out)
}

pub fn mode_to_wire(m: Mode) -> admin::EnforcementMode {
    match m {
        Mode::Off => admin::EnforcementMode::Off,
        Mode::Notify => admin::EnforcementMode::Notify,
        Mode::Enforce => admin::EnforcementMode::Enforce,
    }
}

pub fn mode_from_wire(m: i32) -> Result<Option<Mode>, String> {
    match admin::EnforcementMode::try_from(m) {
        Ok(admin::EnforcementMode::Unspecified) => Ok(None),
        Ok(admin::EnforcementMode::Off) => Ok(Some(Mode::Off)),
        Ok(admin::EnforcementMode::Notify) => Ok(Some(Mode::Notify)),
        Ok(admin::EnforcementMode::Enforce) => Ok(Some(Mode::Enforce)),
        Err(_) => Err(format!("unknown enforcement mode {m}")),
    }
}

pub fn env_to_wire(
    e: &Environment,
    current: u64,
    connected: bool,
    view: &EnvView,
) -> admin::Environment {
    admin::Environment {
        name: e.name.clone(),
        account_id: e.account.clone(),
        regions: e.regions.clone(),
        resource_types: e.resource_types.clone(),
        enforcement: mode_to_wire(e.mode) as i32,
        current_baseline: current,
        created_at: e.created_at.clone(),
        agent_connected: connected,
        decider: String::new(),
        pauses: e
            .active_pauses(&crate::records::now())
            .into_iter()
            .map(|p| admin::Pause {
                id: p.id.clone(),
                until: p.until.clone(),
                reason: p.reason.clone(),
                by: p.by.clone(),
                resource_types: p.resource_types.clone(),
                resources: p.resources.clone(),
                created_at: p.created_at.clone(),
            })
            .collect(),
        safety: Some(admin::Safety {
            max_remediations_per_minute: e.safety.max_remediations_per_minute,
            flap_threshold: e.safety.flap_threshold,
            flap_window_seconds: e.safety.flap_window_seconds,
            enforce_types: e.safety.enforce_types.clone(),
            ignore_paths: e.safety.ignore_paths.clone(),
            delete_added: e.safety.delete_added,
            recreate_removed: e.safety.recreate_removed,
        }),
        webhooks: e
            .webhooks
            .iter()
            .map(|w| admin::Webhook {
                id: w.id.clone(),
                url: w.url.clone(),
                format: w.format.clone(),
                by: w.by.clone(),
                created_at: w.created_at.clone(),
            })
            .collect(),
        open_drift: view.open_drift,
        partitions: view
            .partitions
            .iter()
            .map(|((region, rtype), p)| admin::PartitionStatus {
                region: region.clone(),
                resource_type: rtype.clone(),
                complete: p.complete,
                error: p.error.clone(),
                resources: p.resources,
                collected_at: p.collected_at.clone(),
            })
            .collect(),
        compliance: Some(admin::ComplianceSettings {
            frameworks: e.compliance.frameworks.clone(),
            scan_interval_seconds: e.compliance.scan_interval_seconds,
            keep_scans: e.compliance.keep_scans,
        }),
        waivers: {
            let at = crate::records::now();
            e.waivers
                .iter()
                .filter(|w| w.expires > at)
                .map(waiver_to_wire)
                .collect()
        },
    }
}

pub fn waiver_to_wire(w: &holdfast_policy::report::Waiver) -> admin::Waiver {
    admin::Waiver {
        id: w.id.clone(),
        rule: w.rule.clone(),
        resource: w.resource.clone(),
        reason: w.reason.clone(),
        expires: w.expires.clone(),
        by: w.by.clone(),
        created_at: w.created_at.clone(),
    }
}

pub fn key_to_wire(r: &ResourceRef) -> admin::ResourceKey {
    admin::ResourceKey {
        resource_type: r.resource_type.clone(),
        id: r.id.clone(),
        account_id: r.account.clone(),
        region: r.region.clone(),
    }
}

pub fn summary_to_wire(info: &BaselineInfo, current: u64) -> admin::BaselineSummary {
    let m = &info.meta;
    admin::BaselineSummary {
        environment: m.env.clone(),
        version: m.version,
        created_at: m.created_at.clone(),
        reason: m.reason.clone(),
        resources: m.resources,
        current: m.version == current,
        status: if info.approved() {
            "approved"
        } else {
            "candidate"
        }
        .to_string(),
        rolled_back_from: m.rolled_back_from.unwrap_or(0),
        approved_at: info
            .approval
            .as_ref()
            .map(|a| a.at.clone())
            .unwrap_or_else(|| {
                if m.candidate {
                    String::new()
                } else {
                    m.created_at.clone()
                }
            }),
        created_by: m.created_by.clone(),
        approved_by: info
            .approval
            .as_ref()
            .map(|a| a.by.clone())
            .unwrap_or_else(|| {
                if m.candidate {
                    String::new()
                } else {
                    m.created_by.clone()
                }
            }),
    }
}

pub fn change_to_wire(c: &holdfast_core::Change) -> admin::Change {
    admin::Change {
        path: c.path.clone(),
        old_json: c.old.to_string(),
        new_json: c.new.to_string(),
    }
}

pub fn drift_to_wire(d: &DriftRecord) -> admin::DriftRecord {
    admin::DriftRecord {
        id: d.id.clone(),
        environment: d.env.clone(),
        resource: Some(key_to_wire(&d.resource)),
        kind: d.kind.as_str().to_string(),
        changes: d.changes.iter().map(change_to_wire).collect(),
        status: match d.status {
            DriftStatus::Open => "open",
            DriftStatus::Healed => "healed",
        }
        .to_string(),
        detected_at: d.detected_at.clone(),
        updated_at: d.updated_at.clone(),
        healed_at: d.healed_at.clone().unwrap_or_default(),
        baseline_version: d.baseline_version,
        revision: d.revision,
        note: d.note.clone().unwrap_or_default(),
        decided_by: d.decided_by.clone(),
        newly_failing: d
            .compliance
            .newly_failing
            .iter()
            .map(|f| admin::RuleFinding {
                rule: f.rule.clone(),
                severity: f.severity.clone(),
                message: f.message.clone(),
            })
            .collect(),
        newly_passing: d.compliance.newly_passing.clone(),
    }
}

pub fn remediation_to_wire(r: &RemediationRecord) -> admin::RemediationRecord {
    admin::RemediationRecord {
        id: r.id.clone(),
        environment: r.env.clone(),
        resource: Some(key_to_wire(&r.resource)),
        drift_id: r.drift_id.clone(),
        baseline_version: r.baseline_version,
        status: r.status.as_str().to_string(),
        planned_actions: r.planned_actions.clone(),
        actions: r.actions.clone(),
        journal: r
            .journal
            .iter()
            .map(|j| admin::JournalEntry {
                at: j.at.clone(),
                step: j.step.clone(),
                detail: j.detail.clone(),
            })
            .collect(),
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
        desired_json: r.desired.to_string(),
        expected_json: r.expected.to_string(),
        decided_by: r.decided_by.clone(),
    }
}
