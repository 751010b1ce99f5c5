//! Small helpers on generated wire types: stable names for the wire enums.

use crate::admin::v1::EnforcementMode;
use crate::agent::v1::RemediationOutcome;

impl EnforcementMode {
    /// The user-facing name (`off`, `notify`, `enforce`).
    pub fn label(self) -> &'static str {
        match self {
            EnforcementMode::Unspecified => "unspecified",
            EnforcementMode::Off => "off",
            EnforcementMode::Notify => "notify",
            EnforcementMode::Enforce => "enforce",
        }
    }

    /// Parses a user-facing name.
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "off" => Some(EnforcementMode::Off),
            "notify" => Some(EnforcementMode::Notify),
            "enforce" => Some(EnforcementMode::Enforce),
            _ => None,
        }
    }
}

impl RemediationOutcome {
    /// The journal's name for the outcome.
    pub fn label(self) -> &'static str {
        match self {
            RemediationOutcome::Unspecified => "unspecified",
            RemediationOutcome::Applied => "applied",
            RemediationOutcome::Conflict => "conflict",
            RemediationOutcome::Failed => "failed",
            RemediationOutcome::Noop => "noop",
        }
    }
}
