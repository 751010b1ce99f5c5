//! The registry of resource types. A type is data: its name, whether it is
//! regional or account-wide, and the functions that know its attributes.
//! Code elsewhere looks types up here instead of matching on them.

use serde_json::Value;

use crate::plan::{Lifecycle, PlanError, PlannedAction};

/// Whether a type's resources live in a region or once per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Regional,
    /// Collected once per account; its partition region is `global`.
    Global,
}

/// What holdfast knows about one resource type.
pub struct TypeInfo {
    /// Stable name used on the wire, in the store and in the CLI.
    pub name: &'static str,
    pub scope: Scope,
    /// Validates and re-normalizes canonical attributes received from outside
    /// (an agent, a stored record); returns the canonical form.
    pub validate: fn(&Value) -> Result<Value, String>,
    /// Plans the API actions that turn `current` into `desired`.
    pub plan: fn(desired: &Value, current: &Value) -> Result<Vec<PlannedAction>, PlanError>,
    /// Plans deleting a resource (given what is there) or recreating it
    /// (given the baseline).
    pub lifecycle: fn(Lifecycle, &Value) -> Result<Vec<PlannedAction>, PlanError>,
}

impl std::fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeInfo")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Every type this build supports.
pub static SUPPORTED_TYPES: &[TypeInfo] = &[
    crate::sg::TYPE_INFO,
    crate::s3::TYPE_INFO,
    crate::iam::ROLE_INFO,
    crate::iam::POLICY_INFO,
    crate::iam::USER_INFO,
    crate::password_policy::TYPE_INFO,
];

/// Looks a type up by name.
pub fn type_info(name: &str) -> Option<&'static TypeInfo> {
    SUPPORTED_TYPES.iter().find(|t| t.name == name)
}

/// The names of every supported type, for messages and defaults.
pub fn supported_type_names() -> Vec<&'static str> {
    SUPPORTED_TYPES.iter().map(|t| t.name).collect()
}
