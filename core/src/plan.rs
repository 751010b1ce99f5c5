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
