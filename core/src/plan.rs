//! Remediation planning: the API actions that make a resource equal to its
//! baseline again. Type-specific planners are registered in [`crate::types`];
//! the controller uses them for journals and dry runs, the agent to act.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::type_info;

/// One planned API action: a line for people and the typed action as JSON
/// for the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub summary: String,
    pub action: Value,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The baseline cannot be restored through the API (the reason says why).
    #[error("unenforceable: {0}")]
    Unenforceable(String),
    /// A value was not valid canonical form for its type.
    #[error("invalid resource: {0}")]
    Invalid(String),
    #[error("unsupported resource type {0:?}")]
    UnsupportedType(String),
}

/// Plans the actions that turn `current` into `desired` for a resource type.
pub fn plan_remediation(
    resource_type: &str,
    desired: &Value,
    current: &Value,
) -> Result<Vec<PlannedAction>, PlanError> {
    let info =
        type_info(resource_type).ok_or_else(|| PlanError::UnsupportedType(resource_type.into()))?;
    (info.plan)(desired, current)
}

/// Creating or deleting a whole resource: an `added` resource deleted, a
/// `removed` one recreated (only where an environment allows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Delete,
    Recreate,
}

impl Lifecycle {
    /// One planned step; the agent's driver runs the whole operation.
    pub fn step(self, summary: impl Into<String>) -> PlannedAction {
        PlannedAction {
            summary: summary.into(),
            action: serde_json::json!({ "op": self }),
        }
    }
}

/// Plans deleting (`attributes` = what is there) or recreating
/// (`attributes` = the baseline) a resource of `resource_type`.
pub fn plan_lifecycle(
    resource_type: &str,
    op: Lifecycle,
    attributes: &Value,
) -> Result<Vec<PlannedAction>, PlanError> {
    let info =
        type_info(resource_type).ok_or_else(|| PlanError::UnsupportedType(resource_type.into()))?;
    (info.lifecycle)(op, attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sg(name: &str) -> Value {
        json!({"group_id": "sg-1", "name": name, "description": "d", "vpc_id": "vpc-1", "tags": {}, "ingress": {}, "egress": {}})
    }

    #[test]
    fn whole_resources_plan_only_what_can_be_done() {
        let sg_type = crate::sg::TYPE;
        assert_eq!(
            plan_lifecycle(sg_type, Lifecycle::Delete, &sg("rogue")).unwrap()[0].summary,
            "DeleteSecurityGroup sg-1"
        );
        for (op, v, why) in [
            (Lifecycle::Recreate, sg("web"), "new id"),
            (Lifecycle::Delete, sg("default"), "default group"),
        ] {
            match plan_lifecycle(sg_type, op, &v) {
                Err(PlanError::Unenforceable(r)) => assert!(r.contains(why), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        let user = json!({"name": "alice", "path": "/", "inline_policies": {}, "attached_policies": {}, "groups": {},
            "console_login": false, "access_keys": {"AKIA1": {"status": "Active", "created": "2026-01-01T00:00:00Z"}},
            "mfa_devices": {}, "permissions_boundary": "none", "tags": {}});
        assert!(matches!(
            plan_lifecycle(crate::iam::USER, Lifecycle::Recreate, &user),
            Err(PlanError::Unenforceable(_))
        ));
        assert!(plan_lifecycle(crate::iam::USER, Lifecycle::Delete, &user).is_ok());
        assert!(matches!(
            plan_lifecycle("aws.nope", Lifecycle::Delete, &user),
            Err(PlanError::UnsupportedType(_))
        ));
    }
}
