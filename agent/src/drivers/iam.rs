//! IAM roles, customer-managed policies and users: account-wide, collected
//! once per account into the `global` partition of each type.
//!
//! Collection follows the API budget of the architecture: one paged
//! GetAccountAuthorizationDetails per type (filtered to it) carries the
//! documents, attachments, groups, boundaries and tags; ListRoles adds the
//! role description and session duration; only what no bulk call returns is
//! read per resource, with a bounded number in flight (a user's access
//! keys, MFA devices and login profile; a policy's tags). A remediation's
//! targeted re-read uses the per-resource calls instead, which produce the
//! same canonical form.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::{EntityType, PolicyScopeType, StatusType, Tag};
use futures::stream::{FuturesUnordered, StreamExt};
use holdfast_core::iam::{set, AccessKey, IamAction, ManagedPolicy, Role, User};
use serde_json::Value;

use super::{call_failed, created, error_code, prefixed, CloudError, Driver, SdkError};
use crate::aws::Cloud;

fn not_found<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    error_code(e) == Some("NoSuchEntity")
}

/// A policy document as IAM returns it (URL-encoded JSON), normalized.
fn doc(what: &str, name: &str, text: Option<&str>) -> Result<Value, CloudError> {
    let text = text.ok_or_else(|| CloudError(format!("{what} {name}: no policy document")))?;
    holdfast_core::policy_doc::parse(text).map_err(|e| CloudError(format!("{what} {name}: {e}")))
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn tag_list(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError(format!("tag {k}: {e}")))
        })
        .collect()
}

/// The details of one type from GetAccountAuthorizationDetails, all pages.
async fn authorization_details(
    cloud: &Cloud,
    filter: EntityType,
) -> Result<Vec<aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput>, CloudError>
{
    let mut pages = cloud
        .iam()
        .get_account_authorization_details()
        .filter(filter)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.push(page.map_err(|e| call_failed("GetAccountAuthorizationDetails", "", e))?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- roles

pub struct Roles {
    cloud: Cloud,
}

impl Roles {
    pub fn new(cloud: Cloud) -> Self {
        Roles { cloud }
    }

    /// One role through the per-role calls; `None` if it does not exist.
    async fn read_role(&self, name: &str) -> Result<Option<Role>, CloudError> {
        let iam = self.cloud.iam();
        let _permit = self
            .cloud
            .iam_limit
            .acquire()
            .await
            .expect("semaphore open");
        let role = match iam.get_role().role_name(name).send().await {
            Ok(out) => out
                .role
                .ok_or_else(|| CloudError(format!("GetRole {name}: empty reply")))?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(call_failed("GetRole", name, e)),
        };
        let mut inline = BTreeMap::new();
        let mut pages = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for p in page
                .map_err(|e| call_failed("ListRolePolicies", name, e))?
                .policy_names()
            {
                let out = iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await
                    .map_err(|e| call_failed("GetRolePolicy", name, e))?;
                inline.insert(
                    p.clone(),
                    doc("role policy", p, Some(out.policy_document()))?,
                );
            }
        }
        let mut attached = Vec::new();
        let mut pages = iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListAttachedRolePolicies", name, e))?;
            attached.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|a| a.policy_arn().map(String::from)),
            );
        }
        Ok(Some(Role {
            name: role.role_name().to_string(),
            path: role.path().to_string(),
            description: role.description().unwrap_or_default().to_string(),
            max_session_duration: role.max_session_duration().unwrap_or(3600),
            trust_policy: doc("role", name, role.assume_role_policy_document())?,
            inline_policies: inline,
            attached_policies: set(attached),
            permissions_boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn().map(String::from))
                .into(),
            tags: tag_map(role.tags()),
        }))
    }
}

#[async_trait]
impl Driver for Roles {
    fn resource_type(&self) -> &'static str {
        holdfast_core::iam::ROLE
    }

    async fn collect(&self, _region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        let details = authorization_details(&self.cloud, EntityType::Role).await?;
        let mut meta: HashMap<String, (String, i32)> = HashMap::new();
        let mut pages = self.cloud.iam().list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            for r in page.map_err(|e| call_failed("ListRoles", "", e))?.roles() {
                meta.insert(
                    r.role_name().to_string(),
                    (
                        r.description().unwrap_or_default().to_string(),
                        r.max_session_duration().unwrap_or(3600),
                    ),
                );
            }
        }
        let mut out = Vec::new();
        for d in details.iter().flat_map(|p| p.role_detail_list()) {
            let name = d.role_name().unwrap_or_default();
            let Some((description, max)) = meta.get(name).cloned() else {
                // Created between the two listings: read it on its own.
                if let Some(r) = self.read_role(name).await? {
                    out.push((r.name.clone(), r.to_value()));
                }
                continue;
            };
            let mut inline = BTreeMap::new();
            for p in d.role_policy_list() {
                let pname = p.policy_name().unwrap_or_default();
                inline.insert(
                    pname.to_string(),
                    doc("role policy", pname, p.policy_document())?,
                );
            }
            let role = Role {
                name: name.to_string(),
                path: d.path().unwrap_or("/").to_string(),
                description,
                max_session_duration: max,
                trust_policy: doc("role", name, d.assume_role_policy_document())?,
                inline_policies: inline,
                attached_policies: set(d
                    .attached_managed_policies()
                    .iter()
                    .filter_map(|a| a.policy_arn().map(String::from))),
                permissions_boundary: d
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn().map(String::from))
                    .into(),
                tags: tag_map(d.tags()),
            };
            out.push((role.name.clone(), role.to_value()));
        }
        Ok(out)
    }

    async fn read(&self, _region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        Ok(self.read_role(id).await?.map(|r| r.to_value()))
    }

    async fn create(
        &self,
        _region: &str,
        id: &str,
        desired: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let want = Role::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let mut req = self
            .cloud
            .iam()
            .create_role()
            .role_name(id)
            .path(&want.path)
            .assume_role_policy_document(want.trust_policy.to_string())
            .max_session_duration(want.max_session_duration);
        if !want.description.is_empty() {
            req = req.description(&want.description);
        }
        req.send()
            .await
            .map_err(|e| (vec![], call_failed("CreateRole", id, e)))?;
        let done = vec![format!("CreateRole {id}")];
        let current = created(&done, id, "CreateRole", self.read_role(id).await)?;
        let actions = holdfast_core::iam::plan_role(&want, &current)
            .map_err(|e| (done.clone(), CloudError(e.to_string())))?;
        prefixed(done, apply_all(&self.cloud, id, actions).await)
    }

    async fn delete(
        &self,
        _region: &str,
        id: &str,
        _current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let iam = self.cloud.iam();
        let mut done = Vec::new();
        let attached = iam
            .list_attached_role_policies()
            .role_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListAttachedRolePolicies", id, e)))?;
        for p in attached.attached_policies() {
            let arn = p.policy_arn().unwrap_or_default();
            iam.detach_role_policy()
                .role_name(id)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DetachRolePolicy", id, e)))?;
            done.push(format!("DetachRolePolicy {arn}"));
        }
        let inline = iam
            .list_role_policies()
            .role_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListRolePolicies", id, e)))?;
        for name in inline.policy_names() {
            iam.delete_role_policy()
                .role_name(id)
                .policy_name(name)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DeleteRolePolicy", id, e)))?;
            done.push(format!("DeleteRolePolicy {name}"));
        }
        let profiles = iam
            .list_instance_profiles_for_role()
            .role_name(id)
            .send()
            .await
            .map_err(|e| {
                (
                    done.clone(),
                    call_failed("ListInstanceProfilesForRole", id, e),
                )
            })?;
        for p in profiles.instance_profiles() {
            let name = p.instance_profile_name();
            iam.remove_role_from_instance_profile()
                .role_name(id)
                .instance_profile_name(name)
                .send()
                .await
                .map_err(|e| {
                    (
                        done.clone(),
                        call_failed("RemoveRoleFromInstanceProfile", id, e),
                    )
                })?;
            done.push(format!("RemoveRoleFromInstanceProfile {name}"));
        }
        iam.delete_role()
            .role_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("DeleteRole", id, e)))?;
        done.push(format!("DeleteRole {id}"));
        Ok(done)
    }

    async fn apply(
        &self,
        _region: &str,
        id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = Role::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = Role::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let actions = holdfast_core::iam::plan_role(&desired, &current)
            .map_err(|e| (vec![], CloudError(e.to_string())))?;
        apply_all(&self.cloud, id, actions).await
    }
}

// ------------------------------------------------------------- policies

pub struct Policies {
    cloud: Cloud,
    /// Policy name → ARN from the latest collection.
    arns: Mutex<HashMap<String, String>>,
}

impl Policies {
    pub fn new(cloud: Cloud) -> Self {
        Policies {
            cloud,
            arns: Mutex::new(HashMap::new()),
        }
    }

    async fn tags(&self, arn: &str) -> Result<Option<BTreeMap<String, String>>, CloudError> {
        let _permit = self
            .cloud
            .iam_limit
            .acquire()
            .await
            .expect("semaphore open");
        let mut tags = BTreeMap::new();
        let mut pages = self
            .cloud
            .iam()
            .list_policy_tags()
            .policy_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => tags.extend(tag_map(p.tags())),
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(call_failed("ListPolicyTags", arn, e)),
            }
        }
        Ok(Some(tags))
    }

    async fn arn_of(&self, name: &str) -> Result<Option<String>, CloudError> {
        if let Some(a) = self.arns.lock().expect("arns lock").get(name) {
            return Ok(Some(a.clone()));
        }
        let mut pages = self
            .cloud
            .iam()
            .list_policies()
            .scope(PolicyScopeType::Local)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListPolicies", "", e))?;
            if let Some(p) = page
                .policies()
                .iter()
                .find(|p| p.policy_name() == Some(name))
            {
                return Ok(p.arn().map(String::from));
            }
        }
        Ok(None)
    }

    async fn read_policy(&self, name: &str) -> Result<Option<ManagedPolicy>, CloudError> {
        let Some(arn) = self.arn_of(name).await? else {
            return Ok(None);
        };
        let iam = self.cloud.iam();
        let policy = match iam.get_policy().policy_arn(&arn).send().await {
            Ok(out) => out
                .policy
                .ok_or_else(|| CloudError(format!("GetPolicy {arn}: empty reply")))?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(call_failed("GetPolicy", &arn, e)),
        };
        let version = policy.default_version_id().unwrap_or("v1");
        let out = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| call_failed("GetPolicyVersion", &arn, e))?;
        let document = doc(
            "policy",
            name,
            out.policy_version().and_then(|v| v.document()),
        )?;
        let Some(tags) = self.tags(&arn).await? else {
            return Ok(None);
        };
        Ok(Some(ManagedPolicy {
            name: name.to_string(),
            arn: arn.clone(),
            path: policy.path().unwrap_or("/").to_string(),
            description: policy.description().unwrap_or_default().to_string(),
            document,
            tags,
        }))
    }
}

#[async_trait]
impl Driver for Policies {
    fn resource_type(&self) -> &'static str {
        holdfast_core::iam::POLICY
    }

    async fn collect(&self, _region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        let details = authorization_details(&self.cloud, EntityType::LocalManagedPolicy).await?;
        let mut found = Vec::new();
        for p in details.iter().flat_map(|p| p.policies()) {
            let arn = p.arn().unwrap_or_default().to_string();
            let name = match p.policy_name() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => self
                    .cloud
                    .compat
                    .then(|| crate::compat::policy_name_from_arn(&arn))
                    .flatten()
                    .ok_or_else(|| {
                        CloudError(format!(
                            "GetAccountAuthorizationDetails: policy {arn:?} has no name"
                        ))
                    })?,
            };
            let default = p
                .policy_version_list()
                .iter()
                .find(|v| v.is_default_version())
                .ok_or_else(|| CloudError(format!("policy {name}: no default version listed")))?;
            found.push(ManagedPolicy {
                document: doc("policy", &name, default.document())?,
                path: p.path().unwrap_or("/").to_string(),
                description: p.description().unwrap_or_default().to_string(),
                tags: BTreeMap::new(),
                name,
                arn,
            });
        }
        *self.arns.lock().expect("arns lock") = found
            .iter()
            .map(|p| (p.name.clone(), p.arn.clone()))
            .collect();
        let mut tagged: FuturesUnordered<_> = found
            .into_iter()
            .map(|mut p| async move {
                let tags = self.tags(&p.arn).await?;
                Ok::<_, CloudError>(tags.map(|t| {
                    p.tags = t;
                    p
                }))
            })
            .collect();
        let mut out = Vec::new();
        while let Some(p) = tagged.next().await {
            // A policy deleted meanwhile is simply not there.
            if let Some(p) = p? {
                out.push((p.name.clone(), p.to_value()));
            }
        }
        Ok(out)
    }

    async fn read(&self, _region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        Ok(self.read_policy(id).await?.map(|p| p.to_value()))
    }

    async fn create(
        &self,
        _region: &str,
        id: &str,
        desired: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let want = ManagedPolicy::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let mut req = self
            .cloud
            .iam()
            .create_policy()
            .policy_name(id)
            .path(&want.path)
            .policy_document(want.document.to_string());
        if !want.description.is_empty() {
            req = req.description(&want.description);
        }
        let out = req
            .send()
            .await
            .map_err(|e| (vec![], call_failed("CreatePolicy", id, e)))?;
        let done = vec![format!("CreatePolicy {id}")];
        let arn = out
            .policy()
            .and_then(|p| p.arn())
            .unwrap_or_default()
            .to_string();
        if arn != want.arn {
            return Err((
                done,
                CloudError(format!(
                    "the new policy's ARN is {arn}, not the baseline's {}",
                    want.arn
                )),
            ));
        }
        let current = created(&done, id, "CreatePolicy", self.read_policy(id).await)?;
        let actions = holdfast_core::iam::plan_policy(&want, &current)
            .map_err(|e| (done.clone(), CloudError(e.to_string())))?;
        prefixed(done, apply_all(&self.cloud, &want.arn, actions).await)
    }

    async fn delete(
        &self,
        _region: &str,
        id: &str,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let p = ManagedPolicy::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let iam = self.cloud.iam();
        let arn = p.arn.as_str();
        let mut done = Vec::new();
        let entities = iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListEntitiesForPolicy", id, e)))?;
        for r in entities.policy_roles() {
            let name = r.role_name().unwrap_or_default();
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DetachRolePolicy", name, e)))?;
            done.push(format!("DetachRolePolicy {name}"));
        }
        for u in entities.policy_users() {
            let name = u.user_name().unwrap_or_default();
            iam.detach_user_policy()
                .user_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DetachUserPolicy", name, e)))?;
            done.push(format!("DetachUserPolicy {name}"));
        }
        for g in entities.policy_groups() {
            let name = g.group_name().unwrap_or_default();
            iam.detach_group_policy()
                .group_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DetachGroupPolicy", name, e)))?;
            done.push(format!("DetachGroupPolicy {name}"));
        }
        let versions = iam
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListPolicyVersions", id, e)))?;
        for v in versions.versions() {
            if v.is_default_version() {
                continue;
            }
            let vid = v.version_id().unwrap_or_default();
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(vid)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DeletePolicyVersion", id, e)))?;
            done.push(format!("DeletePolicyVersion {vid}"));
        }
        iam.delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("DeletePolicy", id, e)))?;
        done.push(format!("DeletePolicy {arn}"));
        Ok(done)
    }

    async fn apply(
        &self,
        _region: &str,
        _id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = ManagedPolicy::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = ManagedPolicy::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let actions = holdfast_core::iam::plan_policy(&desired, &current)
            .map_err(|e| (vec![], CloudError(e.to_string())))?;
        apply_all(&self.cloud, &desired.arn, actions).await
    }
}

// ---------------------------------------------------------------- users

pub struct Users {
    cloud: Cloud,
}

/// What only per-user calls return.
struct Credentials {
    console_login: bool,
    access_keys: BTreeMap<String, AccessKey>,
    mfa_devices: Vec<String>,
}

impl Users {
    pub fn new(cloud: Cloud) -> Self {
        Users { cloud }
    }

    /// `None` when the user no longer exists.
    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, CloudError> {
        let iam = self.cloud.iam();
        let _permit = self
            .cloud
            .iam_limit
            .acquire()
            .await
            .expect("semaphore open");
        let console_login = match iam.get_login_profile().user_name(name).send().await {
            Ok(_) => true,
            Err(e) if not_found(&e) => {
                // No login profile, or no user: tell them apart below.
                false
            }
            Err(e) => return Err(call_failed("GetLoginProfile", name, e)),
        };
        let mut access_keys = BTreeMap::new();
        let mut pages = iam
            .list_access_keys()
            .user_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => {
                    for k in p.access_key_metadata() {
                        let id = k.access_key_id().unwrap_or_default().to_string();
                        let status = match k.status() {
                            Some(StatusType::Inactive) => "Inactive",
                            _ => "Active",
                        };
                        access_keys.insert(
                            id,
                            AccessKey {
                                status: status.to_string(),
                                created: k
                                    .create_date()
                                    .and_then(|d| {
                                        d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()
                                    })
                                    .map(|d| utc_second(&d))
                                    .unwrap_or_default(),
                            },
                        );
                    }
                }
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(call_failed("ListAccessKeys", name, e)),
            }
        }
        let mut mfa_devices = Vec::new();
        let mut pages = iam
            .list_mfa_devices()
            .user_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => mfa_devices.extend(
                    p.mfa_devices()
                        .iter()
                        .map(|d| d.serial_number().to_string()),
                ),
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(call_failed("ListMFADevices", name, e)),
            }
        }
        Ok(Some(Credentials {
            console_login,
            access_keys,
            mfa_devices,
        }))
    }

    async fn read_user(&self, name: &str) -> Result<Option<User>, CloudError> {
        let iam = self.cloud.iam();
        let user = match iam.get_user().user_name(name).send().await {
            Ok(out) => out
                .user
                .ok_or_else(|| CloudError(format!("GetUser {name}: empty reply")))?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(call_failed("GetUser", name, e)),
        };
        let mut inline = BTreeMap::new();
        let mut pages = iam
            .list_user_policies()
            .user_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for p in page
                .map_err(|e| call_failed("ListUserPolicies", name, e))?
                .policy_names()
            {
                let out = iam
                    .get_user_policy()
                    .user_name(name)
                    .policy_name(p)
                    .send()
                    .await
                    .map_err(|e| call_failed("GetUserPolicy", name, e))?;
                inline.insert(
                    p.clone(),
                    doc("user policy", p, Some(out.policy_document()))?,
                );
            }
        }
        let mut attached = Vec::new();
        let mut pages = iam
            .list_attached_user_policies()
            .user_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListAttachedUserPolicies", name, e))?;
            attached.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|a| a.policy_arn().map(String::from)),
            );
        }
        let mut groups = Vec::new();
        let mut pages = iam
            .list_groups_for_user()
            .user_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListGroupsForUser", name, e))?;
            groups.extend(page.groups().iter().map(|g| g.group_name().to_string()));
        }
        let Some(creds) = self.credentials(name).await? else {
            return Ok(None);
        };
        Ok(Some(User {
            name: user.user_name().to_string(),
            path: user.path().to_string(),
            inline_policies: inline,
            attached_policies: set(attached),
            groups: set(groups),
            console_login: creds.console_login,
            access_keys: creds.access_keys,
            mfa_devices: set(creds.mfa_devices),
            permissions_boundary: user
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn().map(String::from))
                .into(),
            tags: tag_map(user.tags()),
        }))
    }
}

#[async_trait]
impl Driver for Users {
    fn resource_type(&self) -> &'static str {
        holdfast_core::iam::USER
    }

    async fn collect(&self, _region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        let details = authorization_details(&self.cloud, EntityType::User).await?;
        let mut partial = Vec::new();
        for d in details.iter().flat_map(|p| p.user_detail_list()) {
            let name = d.user_name().unwrap_or_default().to_string();
            let mut inline = BTreeMap::new();
            for p in d.user_policy_list() {
                let pname = p.policy_name().unwrap_or_default();
                inline.insert(
                    pname.to_string(),
                    doc("user policy", pname, p.policy_document())?,
                );
            }
            partial.push(User {
                path: d.path().unwrap_or("/").to_string(),
                inline_policies: inline,
                attached_policies: set(d
                    .attached_managed_policies()
                    .iter()
                    .filter_map(|a| a.policy_arn().map(String::from))),
                groups: set(d.group_list().iter().cloned()),
                console_login: false,
                access_keys: BTreeMap::new(),
                mfa_devices: BTreeMap::new(),
                permissions_boundary: d
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn().map(String::from))
                    .into(),
                tags: tag_map(d.tags()),
                name,
            });
        }
        let mut complete: FuturesUnordered<_> = partial
            .into_iter()
            .map(|mut u| async move {
                let creds = self.credentials(&u.name).await?;
                Ok::<_, CloudError>(creds.map(|c| {
                    u.console_login = c.console_login;
                    u.access_keys = c.access_keys;
                    u.mfa_devices = set(c.mfa_devices);
                    u
                }))
            })
            .collect();
        let mut out = Vec::new();
        while let Some(u) = complete.next().await {
            if let Some(u) = u? {
                out.push((u.name.clone(), u.to_value()));
            }
        }
        Ok(out)
    }

    async fn read(&self, _region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        Ok(self.read_user(id).await?.map(|u| u.to_value()))
    }

    async fn create(
        &self,
        _region: &str,
        id: &str,
        desired: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let want = User::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        self.cloud
            .iam()
            .create_user()
            .user_name(id)
            .path(&want.path)
            .send()
            .await
            .map_err(|e| (vec![], call_failed("CreateUser", id, e)))?;
        let done = vec![format!("CreateUser {id}")];
        let current = created(&done, id, "CreateUser", self.read_user(id).await)?;
        let actions = holdfast_core::iam::plan_user(&want, &current)
            .map_err(|e| (done.clone(), CloudError(e.to_string())))?;
        prefixed(done, apply_all(&self.cloud, id, actions).await)
    }

    async fn delete(
        &self,
        _region: &str,
        id: &str,
        _current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let iam = self.cloud.iam();
        let mut done = Vec::new();
        match iam.delete_login_profile().user_name(id).send().await {
            Ok(_) => done.push("DeleteLoginProfile".to_string()),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err((done, call_failed("DeleteLoginProfile", id, e))),
        }
        let keys = iam
            .list_access_keys()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListAccessKeys", id, e)))?;
        for k in keys.access_key_metadata() {
            let kid = k.access_key_id().unwrap_or_default();
            iam.delete_access_key()
                .user_name(id)
                .access_key_id(kid)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DeleteAccessKey", id, e)))?;
            done.push(format!("DeleteAccessKey {kid}"));
        }
        let mfa = iam
            .list_mfa_devices()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListMFADevices", id, e)))?;
        for d in mfa.mfa_devices() {
            let serial = d.serial_number();
            iam.deactivate_mfa_device()
                .user_name(id)
                .serial_number(serial)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DeactivateMFADevice", id, e)))?;
            done.push(format!("DeactivateMFADevice {serial}"));
        }
        let inline = iam
            .list_user_policies()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListUserPolicies", id, e)))?;
        for name in inline.policy_names() {
            iam.delete_user_policy()
                .user_name(id)
                .policy_name(name)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DeleteUserPolicy", id, e)))?;
            done.push(format!("DeleteUserPolicy {name}"));
        }
        let attached = iam
            .list_attached_user_policies()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListAttachedUserPolicies", id, e)))?;
        for p in attached.attached_policies() {
            let arn = p.policy_arn().unwrap_or_default();
            iam.detach_user_policy()
                .user_name(id)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("DetachUserPolicy", id, e)))?;
            done.push(format!("DetachUserPolicy {arn}"));
        }
        let groups = iam
            .list_groups_for_user()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("ListGroupsForUser", id, e)))?;
        for g in groups.groups() {
            let name = g.group_name();
            iam.remove_user_from_group()
                .user_name(id)
                .group_name(name)
                .send()
                .await
                .map_err(|e| (done.clone(), call_failed("RemoveUserFromGroup", id, e)))?;
            done.push(format!("RemoveUserFromGroup {name}"));
        }
        iam.delete_user()
            .user_name(id)
            .send()
            .await
            .map_err(|e| (done.clone(), call_failed("DeleteUser", id, e)))?;
        done.push(format!("DeleteUser {id}"));
        Ok(done)
    }

    async fn apply(
        &self,
        _region: &str,
        id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = User::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = User::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let actions = holdfast_core::iam::plan_user(&desired, &current)
            .map_err(|e| (vec![], CloudError(e.to_string())))?;
        apply_all(&self.cloud, id, actions).await
    }
}

// ---------------------------------------------------------------- apply

/// Applies the actions in order; `target` is the role or user name, or the
/// policy ARN.
async fn apply_all(
    cloud: &Cloud,
    target: &str,
    actions: Vec<IamAction>,
) -> Result<Vec<String>, (Vec<String>, CloudError)> {
    let mut done = Vec::new();
    for action in actions {
        let line = action.to_string();
        if let Err(e) = apply_one(cloud, target, &action).await {
            return Err((done, e));
        }
        done.push(line);
    }
    Ok(done)
}

async fn apply_one(cloud: &Cloud, t: &str, action: &IamAction) -> Result<(), CloudError> {
    let iam = cloud.iam();
    macro_rules! call {
        ($name:literal, $req:expr) => {
            $req.send()
                .await
                .map(drop)
                .map_err(|e| call_failed($name, t, e))
        };
    }
    match action {
        IamAction::UpdateAssumeRolePolicy { document } => call!(
            "UpdateAssumeRolePolicy",
            iam.update_assume_role_policy()
                .role_name(t)
                .policy_document(document.to_string())
        ),
        IamAction::UpdateRole {
            description,
            max_session_duration,
        } => call!(
            "UpdateRole",
            iam.update_role()
                .role_name(t)
                .description(description)
                .max_session_duration(*max_session_duration)
        ),
        IamAction::PutRolePolicy { name, document } => call!(
            "PutRolePolicy",
            iam.put_role_policy()
                .role_name(t)
                .policy_name(name)
                .policy_document(document.to_string())
        ),
        IamAction::DeleteRolePolicy { name } => call!(
            "DeleteRolePolicy",
            iam.delete_role_policy().role_name(t).policy_name(name)
        ),
        IamAction::AttachRolePolicy { arn } => call!(
            "AttachRolePolicy",
            iam.attach_role_policy().role_name(t).policy_arn(arn)
        ),
        IamAction::DetachRolePolicy { arn } => call!(
            "DetachRolePolicy",
            iam.detach_role_policy().role_name(t).policy_arn(arn)
        ),
        IamAction::PutRolePermissionsBoundary { arn } => call!(
            "PutRolePermissionsBoundary",
            iam.put_role_permissions_boundary()
                .role_name(t)
                .permissions_boundary(arn)
        ),
        IamAction::DeleteRolePermissionsBoundary => call!(
            "DeleteRolePermissionsBoundary",
            iam.delete_role_permissions_boundary().role_name(t)
        ),
        IamAction::TagRole { tags } => call!(
            "TagRole",
            iam.tag_role().role_name(t).set_tags(Some(tag_list(tags)?))
        ),
        IamAction::UntagRole { keys } => call!(
            "UntagRole",
            iam.untag_role()
                .role_name(t)
                .set_tag_keys(Some(keys.clone()))
        ),
        IamAction::CreatePolicyVersion { document } => {
            // IAM keeps at most five versions: make room by deleting the
            // oldest one that is not the default.
            let out = iam
                .list_policy_versions()
                .policy_arn(t)
                .send()
                .await
                .map_err(|e| call_failed("ListPolicyVersions", t, e))?;
            let versions = out.versions();
            if versions.len() >= 5 {
                let oldest = versions
                    .iter()
                    .filter(|v| !v.is_default_version())
                    .min_by_key(|v| v.create_date().map(|d| (d.secs(), d.subsec_nanos())))
                    .and_then(|v| v.version_id());
                if let Some(v) = oldest {
                    call!(
                        "DeletePolicyVersion",
                        iam.delete_policy_version().policy_arn(t).version_id(v)
                    )?;
                }
            }
            call!(
                "CreatePolicyVersion",
                iam.create_policy_version()
                    .policy_arn(t)
                    .policy_document(document.to_string())
                    .set_as_default(true)
            )
        }
        IamAction::TagPolicy { tags } => call!(
            "TagPolicy",
            iam.tag_policy()
                .policy_arn(t)
                .set_tags(Some(tag_list(tags)?))
        ),
        IamAction::UntagPolicy { keys } => call!(
            "UntagPolicy",
            iam.untag_policy()
                .policy_arn(t)
                .set_tag_keys(Some(keys.clone()))
        ),
        IamAction::PutUserPolicy { name, document } => call!(
            "PutUserPolicy",
            iam.put_user_policy()
                .user_name(t)
                .policy_name(name)
                .policy_document(document.to_string())
        ),
        IamAction::DeleteUserPolicy { name } => call!(
            "DeleteUserPolicy",
            iam.delete_user_policy().user_name(t).policy_name(name)
        ),
        IamAction::AttachUserPolicy { arn } => call!(
            "AttachUserPolicy",
            iam.attach_user_policy().user_name(t).policy_arn(arn)
        ),
        IamAction::DetachUserPolicy { arn } => call!(
            "DetachUserPolicy",
            iam.detach_user_policy().user_name(t).policy_arn(arn)
        ),
        IamAction::PutUserPermissionsBoundary { arn } => call!(
            "PutUserPermissionsBoundary",
            iam.put_user_permissions_boundary()
                .user_name(t)
                .permissions_boundary(arn)
        ),
        IamAction::DeleteUserPermissionsBoundary => call!(
            "DeleteUserPermissionsBoundary",
            iam.delete_user_permissions_boundary().user_name(t)
        ),
        IamAction::AddUserToGroup { group } => call!(
            "AddUserToGroup",
            iam.add_user_to_group().user_name(t).group_name(group)
        ),
        IamAction::RemoveUserFromGroup { group } => call!(
            "RemoveUserFromGroup",
            iam.remove_user_from_group().user_name(t).group_name(group)
        ),
        IamAction::DeleteLoginProfile => {
            call!(
                "DeleteLoginProfile",
                iam.delete_login_profile().user_name(t)
            )
        }
        IamAction::UpdateAccessKey { id, status } => call!(
            "UpdateAccessKey",
            iam.update_access_key()
                .user_name(t)
                .access_key_id(id)
                .status(StatusType::from(status.as_str()))
        ),
        IamAction::TagUser { tags } => call!(
            "TagUser",
            iam.tag_user().user_name(t).set_tags(Some(tag_list(tags)?))
        ),
        IamAction::UntagUser { keys } => call!(
            "UntagUser",
            iam.untag_user()
                .user_name(t)
                .set_tag_keys(Some(keys.clone()))
        ),
    }
}

/// `2026-01-31T12:00:00.123Z` → `2026-01-31T12:00:00Z`: the canonical
/// form keeps whole seconds.
fn utc_second(t: &str) -> String {
    match t.find('.') {
        Some(i) => format!("{}Z", &t[..i]),
        None => t.to_string(),
    }
}
