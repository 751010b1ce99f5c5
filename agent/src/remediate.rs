//! The remediation procedure: re-read the resource, act only if it is still
//! in the state the controller decided on, apply the minimal calls, re-read
//! and compare with the baseline.

use holdfast_core::Hash;
use holdfast_proto::agent::v1::{Remediation, RemediationOutcome, RemediationResult};
use serde_json::Value;

use crate::drivers::Drivers;

pub async fn execute(drivers: &Drivers, r: &Remediation) -> RemediationResult {
    let mut result = RemediationResult {
        remediation_id: r.remediation_id.clone(),
        outcome: RemediationOutcome::Failed as i32,
        message: String::new(),
        actions: Vec::new(),
        observed_after_json: Vec::new(),
    };
    let fail = |mut res: RemediationResult, outcome: RemediationOutcome, msg: String| {
        res.outcome = outcome as i32;
        res.message = msg;
        res
    };
    let Some(target) = &r.resource else {
        return fail(
            result,
            RemediationOutcome::Failed,
            "remediation names no resource".into(),
        );
    };
    let Some(driver) = drivers.get(&target.resource_type) else {
        return fail(
            result,
            RemediationOutcome::Failed,
            format!("no driver for {}", target.resource_type),
        );
    };
    let desired: Value = match serde_json::from_slice(&r.desired_json) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                result,
                RemediationOutcome::Failed,
                format!("desired state is not JSON: {e}"),
            )
        }
    };
    let expected_hash = match Hash::from_slice(&r.expected_hash) {
        Ok(h) => h,
        Err(e) => {
            return fail(
                result,
                RemediationOutcome::Failed,
                format!("expected_hash: {e}"),
            )
        }
    };
    let (region, id) = (target.region.as_str(), target.id.as_str());
    // Desired null: delete an added resource; expected null: recreate a
    // removed one.
    let expected: Value = serde_json::from_slice(&r.expected_json).unwrap_or(Value::Null);
    let (delete, recreate) = (desired.is_null(), expected.is_null() && !desired.is_null());

    let current = match driver.read(region, id).await {
        Ok(Some(v)) => v,
        Ok(None) if delete => {
            result.observed_after_json = holdfast_core::canonical_bytes(&Value::Null);
            return fail(
                result,
                RemediationOutcome::Noop,
                format!("{id} is already gone"),
            );
        }
        Ok(None) if recreate => {
            return match driver.create(region, id, &desired).await {
                Ok(actions) => {
                    result.actions = actions;
                    verify(driver.as_ref(), region, id, &desired, result).await
                }
                Err((actions, e)) => {
                    result.actions = actions;
                    let n = result.actions.len();
                    fail(
                        result,
                        RemediationOutcome::Failed,
                        format!("recreating failed after {n} successful call(s): {e}"),
                    )
                }
            };
        }
        Ok(None) => {
            return fail(
                result,
                RemediationOutcome::Conflict,
                format!("{id} no longer exists; nothing changed"),
            )
        }
        Err(e) => {
            return fail(
                result,
                RemediationOutcome::Failed,
                format!("cannot read {id}: {e}"),
            )
        }
    };
    if recreate {
        result.observed_after_json = holdfast_core::canonical_bytes(&current);
        let same = Hash::of(&current) == Hash::of(&desired);
        return fail(
            result,
            if same {
                RemediationOutcome::Noop
            } else {
                RemediationOutcome::Conflict
            },
            if same {
                format!("{id} exists again and matches the baseline")
            } else {
                format!("{id} exists again (made by someone else); nothing changed")
            },
        );
    }
    let current_hash = Hash::of(&current);
    if current_hash == Hash::of(&desired) {
        result.observed_after_json = holdfast_core::canonical_bytes(&current);
        return fail(
            result,
            RemediationOutcome::Noop,
            format!("{id} already matches the baseline"),
        );
    }
    if current_hash != expected_hash {
        let changes = holdfast_core::diff_values(&expected, &current);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        result.observed_after_json = holdfast_core::canonical_bytes(&current);
        return fail(
            result,
            RemediationOutcome::Conflict,
            format!(
                "{id} changed since the decision (now differs at {}); nothing changed",
                if paths.is_empty() {
                    "unknown paths".to_string()
                } else {
                    paths.join(", ")
                }
            ),
        );
    }
    if delete {
        return match driver.delete(region, id, &current).await {
            Ok(actions) => {
                result.actions = actions;
                verify(driver.as_ref(), region, id, &Value::Null, result).await
            }
            Err((actions, e)) => {
                result.actions = actions;
                let n = result.actions.len();
                fail(
                    result,
                    RemediationOutcome::Failed,
                    format!("deleting failed after {n} successful call(s): {e}"),
                )
            }
        };
    }

    match driver.apply(region, id, &desired, &current).await {
        Ok(actions) => result.actions = actions,
        Err((actions, e)) => {
            result.actions = actions;
            let n = result.actions.len();
            return fail(
                result,
                RemediationOutcome::Failed,
                format!("call failed after {n} successful call(s): {e}"),
            );
        }
    }
    verify(driver.as_ref(), region, id, &desired, result).await
}

/// Re-reads the resource after the calls and compares it with `desired`
/// (null: the resource must be gone).
async fn verify(
    driver: &dyn crate::drivers::Driver,
    region: &str,
    id: &str,
    desired: &Value,
    mut result: RemediationResult,
) -> RemediationResult {
    let n = result.actions.len();
    let (outcome, message) = match driver.read(region, id).await {
        Ok(after) => {
            let after = after.unwrap_or(Value::Null);
            result.observed_after_json = holdfast_core::canonical_bytes(&after);
            if Hash::of(&after) == Hash::of(desired) {
                (
                    RemediationOutcome::Applied,
                    if desired.is_null() {
                        format!("{n} call(s); {id} is gone")
                    } else {
                        format!("{n} call(s); re-read matches the baseline")
                    },
                )
            } else if after.is_null() {
                (
                    RemediationOutcome::Failed,
                    format!("{id} disappeared after the calls"),
                )
            } else if desired.is_null() {
                (
                    RemediationOutcome::Failed,
                    format!("{id} still exists after the calls"),
                )
            } else {
                let paths: Vec<String> = holdfast_core::diff_values(desired, &after)
                    .into_iter()
                    .map(|c| c.path)
                    .collect();
                (
                    RemediationOutcome::Failed,
                    format!(
                        "re-read still differs from the baseline at {}",
                        paths.join(", ")
                    ),
                )
            }
        }
        Err(e) => (
            RemediationOutcome::Failed,
            format!("calls made but the re-read failed: {e}"),
        ),
    };
    result.outcome = outcome as i32;
    result.message = message;
    result
}
