//! The account's IAM password policy: GetAccountPasswordPolicy (no policy:
//! `none`), restored by UpdateAccountPasswordPolicy or
//! DeleteAccountPasswordPolicy.

use async_trait::async_trait;
use holdfast_core::password_policy::{PasswordPolicy, PasswordPolicyAction, Rules, ID, TYPE};
use holdfast_core::setting::Setting;
use serde_json::Value;

use super::{call_failed, error_code, CloudError, Driver};
use crate::aws::Cloud;

pub struct PasswordPolicies {
    cloud: Cloud,
}

impl PasswordPolicies {
    pub fn new(cloud: Cloud) -> PasswordPolicies {
        PasswordPolicies { cloud }
    }

    async fn get(&self) -> Result<PasswordPolicy, CloudError> {
        match self.cloud.iam().get_account_password_policy().send().await {
            Ok(out) => {
                let p = out.password_policy().ok_or_else(|| {
                    CloudError("GetAccountPasswordPolicy: the reply has no policy".into())
                })?;
                Ok(PasswordPolicy {
                    policy: Setting::Set(Rules {
                        minimum_password_length: p.minimum_password_length().unwrap_or(6),
                        require_symbols: p.require_symbols(),
                        require_numbers: p.require_numbers(),
                        require_uppercase_characters: p.require_uppercase_characters(),
                        require_lowercase_characters: p.require_lowercase_characters(),
                        allow_users_to_change_password: p.allow_users_to_change_password(),
                        max_password_age: if p.expire_passwords() {
                            p.max_password_age().unwrap_or(0)
                        } else {
                            0
                        },
                        password_reuse_prevention: p.password_reuse_prevention().unwrap_or(0),
                        hard_expiry: p.hard_expiry().unwrap_or(false),
                    }),
                })
            }
            Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(PasswordPolicy {
                policy: Setting::None,
            }),
            Err(e) => Err(call_failed("GetAccountPasswordPolicy", "", e)),
        }
    }
}

#[async_trait]
impl Driver for PasswordPolicies {
    fn resource_type(&self) -> &'static str {
        TYPE
    }

    async fn collect(&self, _region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        Ok(vec![(ID.to_string(), self.get().await?.to_value())])
    }

    async fn read(&self, _region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        if id != ID {
            return Ok(None);
        }
        Ok(Some(self.get().await?.to_value()))
    }

    async fn apply(
        &self,
        _region: &str,
        _id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = PasswordPolicy::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = PasswordPolicy::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let iam = self.cloud.iam();
        let mut done = Vec::new();
        for action in holdfast_core::password_policy::plan(&desired, &current) {
            let line = action.to_string();
            let result = match &action {
                PasswordPolicyAction::Update { rules: r } => {
                    let mut req = iam
                        .update_account_password_policy()
                        .minimum_password_length(r.minimum_password_length)
                        .require_symbols(r.require_symbols)
                        .require_numbers(r.require_numbers)
                        .require_uppercase_characters(r.require_uppercase_characters)
                        .require_lowercase_characters(r.require_lowercase_characters)
                        .allow_users_to_change_password(r.allow_users_to_change_password)
                        .hard_expiry(r.hard_expiry);
                    // Omitted: never expire / no reuse limit.
                    if r.max_password_age > 0 {
                        req = req.max_password_age(r.max_password_age);
                    }
                    if r.password_reuse_prevention > 0 {
                        req = req.password_reuse_prevention(r.password_reuse_prevention);
                    }
                    req.send()
                        .await
                        .map(drop)
                        .map_err(|e| call_failed("UpdateAccountPasswordPolicy", "", e))
                }
                PasswordPolicyAction::DeleteAccountPasswordPolicy => iam
                    .delete_account_password_policy()
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| call_failed("DeleteAccountPasswordPolicy", "", e)),
            };
            if let Err(e) = result {
                return Err((done, e));
            }
            done.push(line);
        }
        Ok(done)
    }
}
