//! The canonical S3 bucket (`aws.s3.bucket`), partitioned by the bucket's
//! own region.
//!
//! Every security-relevant setting is an attribute, and "not configured"
//! is an explicit value (see [`Setting`]): default encryption, versioning
//! (never enabled / enabled / suspended, MFA delete), the public access
//! block's four flags, the bucket policy (normalized as an IAM document),
//! object ownership, ACL grants (a set keyed by grantee and permission),
//! server access logging and tags. Display names and dates are left out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{PlanError, PlannedAction};
use crate::setting::Setting;
use crate::types::{Scope, TypeInfo};

/// The type's registry name.
pub const TYPE: &str = "aws.s3.bucket";

pub(crate) const TYPE_INFO: TypeInfo = TypeInfo {
    name: TYPE,
    scope: Scope::Regional,
    validate: validate_value,
    plan: plan_value,
    lifecycle: lifecycle_value,
};

fn lifecycle_value(
    op: crate::plan::Lifecycle,
    value: &Value,
) -> Result<Vec<PlannedAction>, PlanError> {
    let b = Bucket::from_value(value).map_err(PlanError::Invalid)?;
    Ok(match op {
        crate::plan::Lifecycle::Recreate => vec![
            op.step(format!("CreateBucket {}", b.name)),
            op.step("restore its settings from the baseline"),
        ],
        crate::plan::Lifecycle::Delete => vec![op.step(format!(
            "DeleteBucket {} if it holds no object (holdfast never deletes data)",
            b.name
        ))],
    })
}

/// A bucket in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub name: String,
    pub encryption: Setting<Encryption>,
    pub versioning: Versioning,
    pub public_access_block: Setting<PublicAccessBlock>,
    /// The bucket policy, normalized (see [`crate::policy_doc`]).
    pub policy: Setting<Value>,
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    pub ownership_controls: Setting<String>,
    pub acl: Acl,
    pub logging: Setting<Logging>,
    pub tags: BTreeMap<String, String>,
}

/// Default encryption (the bucket's one server-side encryption rule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key: bool,
}

/// Versioning status as a bucket can be in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersioningStatus {
    /// Never enabled: a bucket can never return here once enabled.
    Disabled,
    Enabled,
    Suspended,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versioning {
    pub status: VersioningStatus,
    pub mfa_delete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// The bucket ACL: its owner and a set of grants keyed by
/// `{grantee}:{permission}` (see [`Grant::key`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    /// The owner's canonical user id.
    pub owner: String,
    pub grants: BTreeMap<String, Grant>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// `canonical_user`, `group` or `email`.
    pub grantee_type: String,
    /// The canonical user id, group URI or e-mail address.
    pub grantee: String,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

const GROUP_PREFIX: &str = "http://acs.amazonaws.com/groups/";

impl Grant {
    /// The grant's identity: a short grantee and the permission, e.g.
    /// `group:global/AllUsers:READ` or `user:79a5…:FULL_CONTROL`.
    pub fn key(&self) -> String {
        let who = match self.grantee_type.as_str() {
            "group" => format!(
                "group:{}",
                self.grantee
                    .strip_prefix(GROUP_PREFIX)
                    .unwrap_or(&self.grantee)
            ),
            "canonical_user" => format!("user:{}", self.grantee),
            other => format!("{other}:{}", self.grantee),
        };
        format!("{who}:{}", self.permission)
    }
}

/// Server access logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub target_bucket: String,
    pub target_prefix: String,
}

/// A grant as an API or a plan lists it, before normalization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawGrant {
    /// `CanonicalUser`, `Group` or `AmazonCustomerByEmail` (any case, or
    /// the canonical spelling).
    pub grantee_type: String,
    pub id: Option<String>,
    pub uri: Option<String>,
    pub email: Option<String>,
    pub permission: String,
}

/// Normalizes a list of grants into the canonical set: grantee types and
/// permissions in one spelling, canonical user ids lower-cased, e-mail
/// addresses lower-cased, duplicates collapsed, order irrelevant.
pub fn normalize_grants(raw: Vec<RawGrant>) -> Result<BTreeMap<String, Grant>, String> {
    let mut out = BTreeMap::new();
    for (i, g) in raw.into_iter().enumerate() {
        let kind = g.grantee_type.to_ascii_lowercase().replace(['_', '-'], "");
        let (grantee_type, grantee) = match kind.as_str() {
            "canonicaluser" => ("canonical_user", g.id.map(|s| s.to_ascii_lowercase())),
            "group" => ("group", g.uri),
            "amazoncustomerbyemail" | "email" => ("email", g.email.map(|s| s.to_ascii_lowercase())),
            _ => {
                return Err(format!(
                    "grant {i}: unknown grantee type {:?}",
                    g.grantee_type
                ))
            }
        };
        let grantee = grantee
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("grant {i}: {grantee_type} grantee has no id, URI or e-mail"))?;
        let permission = g.permission.to_ascii_uppercase().replace('-', "_");
        if !matches!(
            permission.as_str(),
            "FULL_CONTROL" | "READ" | "WRITE" | "READ_ACP" | "WRITE_ACP"
        ) {
            return Err(format!("grant {i}: unknown permission {:?}", g.permission));
        }
        let grant = Grant {
            grantee_type: grantee_type.to_string(),
            grantee,
            permission,
        };
        out.insert(grant.key(), grant);
    }
    Ok(out)
}

impl Bucket {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a bucket always serializes")
    }

    /// Reads and checks a canonical value (from an agent or the store).
    pub fn from_value(value: &Value) -> Result<Bucket, String> {
        let b: Bucket = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a canonical {TYPE}: {e}"))?;
        if b.name.is_empty() {
            return Err(format!("{TYPE}: empty bucket name"));
        }
        for (key, grant) in &b.acl.grants {
            if *key != grant.key() {
                return Err(format!(
                    "acl grant key {key:?} does not match its grant (expected {:?})",
                    grant.key()
                ));
            }
        }
        if let Setting::Set(policy) = &b.policy {
            let norm = crate::policy_doc::normalize(policy)
                .map_err(|e| format!("bucket {}: policy: {e}", b.name))?;
            if norm != *policy {
                return Err(format!(
                    "bucket {}: policy is not in canonical form",
                    b.name
                ));
            }
        }
        Ok(b)
    }
}

fn validate_value(value: &Value) -> Result<Value, String> {
    Bucket::from_value(value).map(|b| b.to_value())
}

/// One API action that moves a bucket toward its desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum S3Action {
    PutEncryption {
        encryption: Encryption,
    },
    DeleteEncryption,
    /// `Enabled` or `Suspended`.
    PutVersioning {
        status: String,
    },
    PutPublicAccessBlock {
        block: PublicAccessBlock,
    },
    DeletePublicAccessBlock,
    PutPolicy {
        policy: Value,
    },
    DeletePolicy,
    PutOwnershipControls {
        ownership: String,
    },
    DeleteOwnershipControls,
    PutAcl {
        acl: Acl,
    },
    PutLogging {
        logging: Setting<Logging>,
    },
    PutTagging {
        tags: BTreeMap<String, String>,
    },
    DeleteTagging,
}

impl fmt::Display for S3Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Action::PutEncryption { encryption } => {
                write!(f, "PutBucketEncryption {}", encryption.algorithm)?;
                if let Some(k) = &encryption.kms_key_id {
                    write!(f, " key {k}")?;
                }
                if encryption.bucket_key {
                    write!(f, " (bucket key)")?;
                }
                Ok(())
            }
            S3Action::DeleteEncryption => f.write_str("DeleteBucketEncryption"),
            S3Action::PutVersioning { status } => write!(f, "PutBucketVersioning {status}"),
            S3Action::PutPublicAccessBlock { block } => write!(
                f,
                "PutPublicAccessBlock BlockPublicAcls={} IgnorePublicAcls={} BlockPublicPolicy={} RestrictPublicBuckets={}",
                block.block_public_acls,
                block.ignore_public_acls,
                block.block_public_policy,
                block.restrict_public_buckets
            ),
            S3Action::DeletePublicAccessBlock => f.write_str("DeletePublicAccessBlock"),
            S3Action::PutPolicy { .. } => f.write_str("PutBucketPolicy (baseline document)"),
            S3Action::DeletePolicy => f.write_str("DeleteBucketPolicy"),
            S3Action::PutOwnershipControls { ownership } => {
                write!(f, "PutBucketOwnershipControls {ownership}")
            }
            S3Action::DeleteOwnershipControls => f.write_str("DeleteBucketOwnershipControls"),
            S3Action::PutAcl { acl } => {
                let keys: Vec<&str> = acl.grants.keys().map(String::as_str).collect();
                write!(f, "PutBucketAcl {}", keys.join(","))
            }
            S3Action::PutLogging {
                logging: Setting::Set(l),
            } => write!(f, "PutBucketLogging s3://{}/{}", l.target_bucket, l.target_prefix),
            S3Action::PutLogging {
                logging: Setting::None,
            } => f.write_str("PutBucketLogging disabled"),
            S3Action::PutTagging { tags } => {
                let list: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "PutBucketTagging {}", list.join(","))
            }
            S3Action::DeleteTagging => f.write_str("DeleteBucketTagging"),
        }
    }
}

/// The actions that restore only the attributes that differ. Fails as
/// `Unenforceable` (no action at all) when one of them cannot be restored
/// by API.
pub fn plan(desired: &Bucket, current: &Bucket) -> Result<Vec<S3Action>, PlanError> {
    if desired.name != current.name {
        return Err(PlanError::Invalid(format!(
            "bucket {} compared with bucket {}",
            desired.name, current.name
        )));
    }
    let mut actions = Vec::new();
    // Checks first, so an unenforceable attribute means no call at all.
    let versioning = if desired.versioning.status != current.versioning.status {
        match desired.versioning.status {
            VersioningStatus::Disabled => {
                return Err(PlanError::Unenforceable(format!(
                    "versioning of bucket {} is {} and can never return to never-enabled",
                    desired.name,
                    status_name(current.versioning.status)
                )))
            }
            VersioningStatus::Enabled => Some("Enabled"),
            VersioningStatus::Suspended => Some("Suspended"),
        }
    } else {
        None
    };
    if desired.versioning.mfa_delete != current.versioning.mfa_delete {
        return Err(PlanError::Unenforceable(format!(
            "MFA delete of bucket {} can only be changed by the root user with an MFA code",
            desired.name
        )));
    }
    if desired.acl.owner != current.acl.owner {
        return Err(PlanError::Unenforceable(format!(
            "the owner of bucket {} changed; ownership cannot be transferred by API",
            desired.name
        )));
    }

    if desired.encryption != current.encryption {
        actions.push(match &desired.encryption {
            Setting::Set(e) => S3Action::PutEncryption {
                encryption: e.clone(),
            },
            Setting::None => S3Action::DeleteEncryption,
        });
    }
    if let Some(status) = versioning {
        actions.push(S3Action::PutVersioning {
            status: status.to_string(),
        });
    }
    // With BucketOwnerEnforced, ACLs are disabled: restore the ACL before
    // enforcing ownership, and restore ownership before granting ACLs.
    let ownership = (desired.ownership_controls != current.ownership_controls).then(|| {
        match &desired.ownership_controls {
            Setting::Set(o) => S3Action::PutOwnershipControls {
                ownership: o.clone(),
            },
            Setting::None => S3Action::DeleteOwnershipControls,
        }
    });
    let acl = (desired.acl != current.acl).then(|| S3Action::PutAcl {
        acl: desired.acl.clone(),
    });
    let enforced_after =
        desired.ownership_controls.get().map(String::as_str) == Some("BucketOwnerEnforced");
    if enforced_after {
        actions.extend(acl);
        actions.extend(ownership);
    } else {
        actions.extend(ownership);
        actions.extend(acl);
    }
    // The public access block before the policy: a public baseline policy
    // is only accepted once the block allows it, and a private one needs
    // nothing from the block.
    if desired.public_access_block != current.public_access_block {
        actions.push(match &desired.public_access_block {
            Setting::Set(b) => S3Action::PutPublicAccessBlock { block: b.clone() },
            Setting::None => S3Action::DeletePublicAccessBlock,
        });
    }
    if desired.policy != current.policy {
        actions.push(match &desired.policy {
            Setting::Set(p) => S3Action::PutPolicy { policy: p.clone() },
            Setting::None => S3Action::DeletePolicy,
        });
    }
    if desired.logging != current.logging {
        actions.push(S3Action::PutLogging {
            logging: desired.logging.clone(),
        });
    }
    if desired.tags != current.tags {
        actions.push(if desired.tags.is_empty() {
            S3Action::DeleteTagging
        } else {
            S3Action::PutTagging {
                tags: desired.tags.clone(),
            }
        });
    }
    Ok(actions)
}

fn status_name(s: VersioningStatus) -> &'static str {
    match s {
        VersioningStatus::Disabled => "never enabled",
        VersioningStatus::Enabled => "enabled",
        VersioningStatus::Suspended => "suspended",
    }
}

fn plan_value(desired: &Value, current: &Value) -> Result<Vec<PlannedAction>, PlanError> {
    let desired = Bucket::from_value(desired).map_err(PlanError::Invalid)?;
    let current = Bucket::from_value(current).map_err(PlanError::Invalid)?;
    Ok(plan(&desired, &current)?
        .into_iter()
        .map(|a| PlannedAction {
            summary: a.to_string(),
            action: serde_json::to_value(&a).expect("an action always serializes"),
        })
        .collect())
}

#[cfg(test)]
mod tests;
