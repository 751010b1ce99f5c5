//! The account's IAM password policy (`aws.iam.password_policy`): one
//! resource per account, id [`ID`]. "No policy set" is a value (`policy:
//! "none"`, AWS's defaults apply), restored by deleting the policy.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{PlanError, PlannedAction};
use crate::setting::Setting;
use crate::types::{Scope, TypeInfo};

pub const TYPE: &str = "aws.iam.password_policy";
/// The one resource of an account.
pub const ID: &str = "account";

pub(crate) const TYPE_INFO: TypeInfo = TypeInfo {
    name: TYPE,
    scope: Scope::Global,
    validate: validate_value,
    plan: plan_value,
    lifecycle: |_, _| {
        Err(PlanError::Unenforceable(
            "an account always has exactly one password policy resource".into(),
        ))
    },
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    pub policy: Setting<Rules>,
}

/// What UpdateAccountPasswordPolicy sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// 6 to 128.
    pub minimum_password_length: i32,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase_characters: bool,
    pub require_lowercase_characters: bool,
    pub allow_users_to_change_password: bool,
    /// Days a password lasts (1 to 1095); 0: passwords never expire.
    pub max_password_age: i32,
    /// Earlier passwords a user may not reuse (1 to 24); 0: no limit.
    pub password_reuse_prevention: i32,
    /// An expired password can only be reset by an administrator.
    pub hard_expiry: bool,
}

impl PasswordPolicy {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a password policy always serializes")
    }

    pub fn from_value(value: &Value) -> Result<PasswordPolicy, String> {
        let p: PasswordPolicy = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a canonical {TYPE}: {e}"))?;
        if let Some(r) = p.policy.get() {
            if !(6..=128).contains(&r.minimum_password_length) {
                return Err(format!(
                    "{TYPE}: minimum_password_length must be 6 to 128, got {}",
                    r.minimum_password_length
                ));
            }
            if !(0..=1095).contains(&r.max_password_age) {
                return Err(format!(
                    "{TYPE}: max_password_age must be 0 (never) to 1095 days, got {}",
                    r.max_password_age
                ));
            }
            if !(0..=24).contains(&r.password_reuse_prevention) {
                return Err(format!(
                    "{TYPE}: password_reuse_prevention must be 0 to 24, got {}",
                    r.password_reuse_prevention
                ));
            }
        }
        Ok(p)
    }
}

fn validate_value(value: &Value) -> Result<Value, String> {
    PasswordPolicy::from_value(value).map(|p| p.to_value())
}

/// One API action on the account's password policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PasswordPolicyAction {
    /// UpdateAccountPasswordPolicy with every field (it replaces the policy).
    Update {
        rules: Rules,
    },
    DeleteAccountPasswordPolicy,
}

impl std::fmt::Display for PasswordPolicyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordPolicyAction::Update { rules: r } => write!(
                f,
                "UpdateAccountPasswordPolicy min {} symbols {} numbers {} upper {} lower {} change {} max-age {} reuse {} hard-expiry {}",
                r.minimum_password_length,
                r.require_symbols,
                r.require_numbers,
                r.require_uppercase_characters,
                r.require_lowercase_characters,
                r.allow_users_to_change_password,
                r.max_password_age,
                r.password_reuse_prevention,
                r.hard_expiry
            ),
            PasswordPolicyAction::DeleteAccountPasswordPolicy => {
                f.write_str("DeleteAccountPasswordPolicy")
            }
        }
    }
}

/// One call restores any difference: the update replaces the whole policy.
pub fn plan(desired: &PasswordPolicy, current: &PasswordPolicy) -> Vec<PasswordPolicyAction> {
    if desired == current {
        return Vec::new();
    }
    match &desired.policy {
        Setting::Set(rules) => vec![PasswordPolicyAction::Update {
            rules: rules.clone(),
        }],
        Setting::None => vec![PasswordPolicyAction::DeleteAccountPasswordPolicy],
    }
}

fn plan_value(desired: &Value, current: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let desired = PasswordPolicy::from_value(desired).map_err(PlanError::Invalid)?;
    let current = PasswordPolicy::from_value(current).map_err(PlanError::Invalid)?;
    Ok(plan(&desired, &current)
        .into_iter()
        .map(|a| PlannedAction {
            summary: a.to_string(),
            action: serde_json::to_value(&a).expect("an action always serializes"),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Rules {
        Rules {
            minimum_password_length: 14,
            require_symbols: true,
            require_numbers: true,
            require_uppercase_characters: true,
            require_lowercase_characters: true,
            allow_users_to_change_password: true,
            max_password_age: 90,
            password_reuse_prevention: 24,
            hard_expiry: false,
        }
    }

    #[test]
    fn one_call_restores_any_change_and_none_is_a_deletion() {
        let base = PasswordPolicy {
            policy: Setting::Set(strict()),
        };
        assert!(plan(&base, &base).is_empty());
        let mut weaker = strict();
        weaker.minimum_password_length = 8;
        weaker.require_symbols = false;
        let current = PasswordPolicy {
            policy: Setting::Set(weaker),
        };
        assert_eq!(
            plan(&base, &current),
            [PasswordPolicyAction::Update { rules: strict() }]
        );
        let none = PasswordPolicy {
            policy: Setting::None,
        };
        assert_eq!(
            plan(&base, &none),
            [PasswordPolicyAction::Update { rules: strict() }]
        );
        assert_eq!(
            plan(&none, &base),
            [PasswordPolicyAction::DeleteAccountPasswordPolicy]
        );
        assert_eq!(none.to_value(), serde_json::json!({"policy": "none"}));
    }

    #[test]
    fn out_of_range_values_are_rejected_with_the_field() {
        for (field, v) in [
            ("minimum_password_length", 5),
            ("max_password_age", 2000),
            ("password_reuse_prevention", 25),
        ] {
            let mut value = PasswordPolicy {
                policy: Setting::Set(strict()),
            }
            .to_value();
            value["policy"][field] = v.into();
            let e = validate_value(&value).unwrap_err();
            assert!(e.contains(field), "{e}");
        }
        assert!(validate_value(&serde_json::json!({"policy": "none", "x": 1})).is_err());
    }
}
