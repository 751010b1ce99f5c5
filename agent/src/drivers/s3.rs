//! S3 buckets, each in its own region's partition.
//!
//! Collecting a region lists the account's buckets (ListBuckets), keeps
//! those located in the region (GetBucketLocation, cached: a bucket never
//! moves), and reads each bucket's settings with a bounded number of
//! buckets in flight. A read that answers "not configured" (no policy, no
//! encryption, no public access block, no ownership controls, no tags) is a
//! value; any other error fails the whole partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketLoggingStatus, BucketVersioningStatus, Grant as SdkGrant, Grantee,
    LoggingEnabled, ObjectOwnership, Owner, OwnershipControls, OwnershipControlsRule, Permission,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, Type,
    VersioningConfiguration,
};
use futures::stream::{FuturesUnordered, StreamExt};
use holdfast_core::s3::{
    normalize_grants, Acl, Bucket, Encryption, Logging, PublicAccessBlock, RawGrant, S3Action,
    Versioning, VersioningStatus,
};
use holdfast_core::setting::Setting;
use serde_json::Value;

use super::{call_failed, created, error_code, prefixed, CloudError, Driver, SdkError};
use crate::aws::Cloud;

pub struct Buckets {
    cloud: Cloud,
    /// Bucket name → region, for buckets seen in the latest listing.
    locations: Mutex<HashMap<String, String>>,
}

impl Buckets {
    pub fn new(cloud: Cloud) -> Self {
        Buckets {
            cloud,
            locations: Mutex::new(HashMap::new()),
        }
    }
}

/// The bucket is gone: a positive answer, not a failure.
struct Gone;

/// Reads one optional setting: `Ok(None)` when the API says it is not
/// configured, `Err(Ok(Gone))` when the bucket no longer exists.
fn optional<T, E>(
    what: &str,
    bucket: &str,
    r: Result<T, SdkError<E>>,
    not_configured: &str,
) -> Result<Option<T>, Result<Gone, CloudError>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if error_code(&e) == Some(not_configured) => Ok(None),
        Err(e) if error_code(&e) == Some("NoSuchBucket") => Err(Ok(Gone)),
        Err(e) => Err(Err(call_failed(what, bucket, e))),
    }
}

fn required<T, E>(
    what: &str,
    bucket: &str,
    r: Result<T, SdkError<E>>,
) -> Result<T, Result<Gone, CloudError>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(v),
        Err(e) if error_code(&e) == Some("NoSuchBucket") => Err(Ok(Gone)),
        Err(e) => Err(Err(call_failed(what, bucket, e))),
    }
}

/// `LocationConstraint` → region: empty means us-east-1, `EU` is the
/// legacy name of eu-west-1.
pub fn region_from_location(location: Option<&str>) -> String {
    match location.unwrap_or("") {
        "" => "us-east-1".to_string(),
        "EU" => "eu-west-1".to_string(),
        other => other.to_string(),
    }
}

impl Buckets {
    async fn bucket_names(&self) -> Result<Vec<String>, CloudError> {
        let client = self.cloud.s3("us-east-1");
        let mut pages = client.list_buckets().into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("ListBuckets", "", e))?;
            names.extend(
                page.buckets()
                    .iter()
                    .filter_map(|b| b.name().map(String::from)),
            );
        }
        Ok(names)
    }

    /// The bucket's region; `None` if it no longer exists.
    async fn region_of(&self, name: &str) -> Result<Option<String>, CloudError> {
        if let Some(r) = self.locations.lock().expect("locations lock").get(name) {
            return Ok(Some(r.clone()));
        }
        let client = self.cloud.s3("us-east-1");
        let _permit = self.cloud.s3_limit.acquire().await.expect("semaphore open");
        match client.get_bucket_location().bucket(name).send().await {
            Ok(out) => {
                let region = region_from_location(out.location_constraint().map(|l| l.as_str()));
                self.locations
                    .lock()
                    .expect("locations lock")
                    .insert(name.to_string(), region.clone());
                Ok(Some(region))
            }
            Err(e) if error_code(&e) == Some("NoSuchBucket") => Ok(None),
            Err(e) => Err(call_failed("GetBucketLocation", name, e)),
        }
    }

    /// Every setting of one bucket; `None` if it no longer exists.
    async fn read_bucket(&self, region: &str, name: &str) -> Result<Option<Bucket>, CloudError> {
        let _permit = self.cloud.s3_limit.acquire().await.expect("semaphore open");
        match self.read_settings(region, name).await {
            Ok(b) => Ok(Some(b)),
            Err(Ok(Gone)) => Ok(None),
            Err(Err(e)) => Err(e),
        }
    }

    async fn read_settings(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Bucket, Result<Gone, CloudError>> {
        let c = self.cloud.s3(region);
        let (enc, ver, pab, pol, own, acl, log, tags) = tokio::join!(
            c.get_bucket_encryption().bucket(name).send(),
            c.get_bucket_versioning().bucket(name).send(),
            c.get_public_access_block().bucket(name).send(),
            c.get_bucket_policy().bucket(name).send(),
            c.get_bucket_ownership_controls().bucket(name).send(),
            c.get_bucket_acl().bucket(name).send(),
            c.get_bucket_logging().bucket(name).send(),
            c.get_bucket_tagging().bucket(name).send(),
        );

        let encryption = optional(
            "GetBucketEncryption",
            name,
            enc,
            "ServerSideEncryptionConfigurationNotFoundError",
        )?
        .and_then(|out| {
            let rule = out
                .server_side_encryption_configuration()?
                .rules()
                .first()?;
            let default = rule.apply_server_side_encryption_by_default()?;
            Some(Encryption {
                algorithm: default.sse_algorithm().as_str().to_string(),
                kms_key_id: default
                    .kms_master_key_id()
                    .filter(|k| !k.is_empty())
                    .map(String::from),
                bucket_key: rule.bucket_key_enabled().unwrap_or(false),
            })
        });

        let (status, mfa) = match ver {
            Ok(out) => (
                out.status().map(|s| s.as_str().to_string()),
                out.mfa_delete().map(|m| m.as_str().to_string()),
            ),
            Err(e) if error_code(&e) == Some("NoSuchBucket") => return Err(Ok(Gone)),
            Err(e) => match self
                .cloud
                .compat
                .then(|| crate::compat::versioning_from_rejected(&e))
                .flatten()
            {
                Some(v) => v,
                None => return Err(Err(call_failed("GetBucketVersioning", name, e))),
            },
        };
        let versioning = Versioning {
            status: match status.as_deref() {
                None | Some("") => VersioningStatus::Disabled,
                Some("Enabled") => VersioningStatus::Enabled,
                Some("Suspended") => VersioningStatus::Suspended,
                Some(other) => {
                    return Err(Err(CloudError(format!(
                        "GetBucketVersioning {name}: unexpected status {other:?}"
                    ))))
                }
            },
            mfa_delete: mfa.as_deref() == Some("Enabled"),
        };

        let public_access_block = optional(
            "GetPublicAccessBlock",
            name,
            pab,
            "NoSuchPublicAccessBlockConfiguration",
        )?
        .and_then(|out| {
            let c = out.public_access_block_configuration()?;
            Some(PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            })
        });

        let policy = match optional("GetBucketPolicy", name, pol, "NoSuchBucketPolicy")?
            .and_then(|out| out.policy().map(String::from))
            .filter(|p| !p.trim().is_empty())
        {
            Some(text) => Some(
                holdfast_core::policy_doc::parse(&text)
                    .map_err(|e| Err(CloudError(format!("GetBucketPolicy {name}: {e}"))))?,
            ),
            None => None,
        };

        let ownership = optional(
            "GetBucketOwnershipControls",
            name,
            own,
            "OwnershipControlsNotFoundError",
        )?
        .and_then(|out| {
            out.ownership_controls()?
                .rules()
                .first()
                .map(|r| r.object_ownership().as_str().to_string())
        });

        let acl = required("GetBucketAcl", name, acl)?;
        let raw: Vec<RawGrant> = acl
            .grants()
            .iter()
            .filter_map(|g| {
                let grantee = g.grantee()?;
                Some(RawGrant {
                    grantee_type: grantee.r#type().as_str().to_string(),
                    id: grantee.id().map(String::from),
                    uri: grantee.uri().map(String::from),
                    email: grantee.email_address().map(String::from),
                    permission: g.permission().map(|p| p.as_str().to_string())?,
                })
            })
            .collect();
        let grants = normalize_grants(raw)
            .map_err(|e| Err(CloudError(format!("GetBucketAcl {name}: {e}"))))?;
        let acl = Acl {
            owner: acl
                .owner()
                .and_then(|o| o.id())
                .unwrap_or_default()
                .to_ascii_lowercase(),
            grants,
        };

        let logging = required("GetBucketLogging", name, log)?
            .logging_enabled()
            .map(|l| Logging {
                target_bucket: l.target_bucket().to_string(),
                target_prefix: l.target_prefix().to_string(),
            })
            .filter(|l| !l.target_bucket.is_empty());

        let tags: BTreeMap<String, String> =
            optional("GetBucketTagging", name, tags, "NoSuchTagSet")?
                .map(|out| {
                    out.tag_set()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect()
                })
                .unwrap_or_default();

        Ok(Bucket {
            name: name.to_string(),
            encryption: encryption.into(),
            versioning,
            public_access_block: public_access_block.into(),
            policy: policy.into(),
            ownership_controls: ownership.into(),
            acl,
            logging: logging.into(),
            tags,
        })
    }
}

#[async_trait]
impl Driver for Buckets {
    fn resource_type(&self) -> &'static str {
        holdfast_core::s3::TYPE
    }

    async fn collect(&self, region: &str) -> Result<Vec<(String, Value)>, CloudError> {
        let names = self.bucket_names().await?;
        // Forget buckets that are gone, so a name reused elsewhere is
        // located again.
        self.locations
            .lock()
            .expect("locations lock")
            .retain(|n, _| names.contains(n));
        let mut located: FuturesUnordered<_> = names
            .iter()
            .map(|n| async move { (n.clone(), self.region_of(n).await) })
            .collect();
        let mut here = Vec::new();
        while let Some((name, r)) = located.next().await {
            if r?.as_deref() == Some(region) {
                here.push(name);
            }
        }
        let mut reads: FuturesUnordered<_> = here
            .iter()
            .map(|n| async move { (n.clone(), self.read_bucket(region, n).await) })
            .collect();
        let mut out = Vec::new();
        while let Some((name, r)) = reads.next().await {
            // A bucket deleted while we read it is simply not there.
            if let Some(b) = r? {
                out.push((name, b.to_value()));
            }
        }
        Ok(out)
    }

    async fn read(&self, region: &str, id: &str) -> Result<Option<Value>, CloudError> {
        Ok(self.read_bucket(region, id).await?.map(|b| b.to_value()))
    }

    async fn create(
        &self,
        region: &str,
        id: &str,
        desired: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let c = self.cloud.s3(region);
        let mut req = c.create_bucket().bucket(id);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send()
            .await
            .map_err(|e| (vec![], call_failed("CreateBucket", id, e)))?;
        let done = vec![format!("CreateBucket {id}")];
        let current = created(&done, id, "CreateBucket", self.read(region, id).await)?;
        prefixed(done, self.apply(region, id, desired, &current).await)
    }

    async fn delete(
        &self,
        region: &str,
        id: &str,
        _current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let c = self.cloud.s3(region);
        // Never data: a bucket with any object version or delete marker
        // stays.
        let listed = c
            .list_object_versions()
            .bucket(id)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| (vec![], call_failed("ListObjectVersions", id, e)))?;
        if !listed.versions().is_empty() || !listed.delete_markers().is_empty() {
            return Err((
                vec![],
                CloudError(format!(
                    "bucket {id} holds objects; holdfast never deletes data, so it stays"
                )),
            ));
        }
        c.delete_bucket()
            .bucket(id)
            .send()
            .await
            .map_err(|e| (vec![], call_failed("DeleteBucket", id, e)))?;
        Ok(vec![format!("DeleteBucket {id}")])
    }

    async fn apply(
        &self,
        region: &str,
        id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        let desired = Bucket::from_value(desired).map_err(|e| (vec![], CloudError(e)))?;
        let current = Bucket::from_value(current).map_err(|e| (vec![], CloudError(e)))?;
        let actions = holdfast_core::s3::plan(&desired, &current)
            .map_err(|e| (vec![], CloudError(e.to_string())))?;
        let c = self.cloud.s3(region);
        let mut done = Vec::new();
        for action in actions {
            let line = action.to_string();
            if let Err(e) = apply_one(&c, id, &action).await {
                return Err((done, e));
            }
            done.push(line);
        }
        Ok(done)
    }
}

fn build_err(what: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError(format!("{what}: cannot build the request: {e}"))
}

async fn apply_one(c: &aws_sdk_s3::Client, b: &str, action: &S3Action) -> Result<(), CloudError> {
    match action {
        S3Action::PutEncryption { encryption } => {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(encryption.algorithm.as_str()))
                .set_kms_master_key_id(encryption.kms_key_id.clone())
                .build()
                .map_err(|e| build_err("PutBucketEncryption", e))?;
            let conf = ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(default)
                        .bucket_key_enabled(encryption.bucket_key)
                        .build(),
                )
                .build()
                .map_err(|e| build_err("PutBucketEncryption", e))?;
            c.put_bucket_encryption()
                .bucket(b)
                .server_side_encryption_configuration(conf)
                .send()
                .await
                .map(drop)
                .map_err(|e| call_failed("PutBucketEncryption", b, e))
        }
        S3Action::DeleteEncryption => c
            .delete_bucket_encryption()
            .bucket(b)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("DeleteBucketEncryption", b, e)),
        S3Action::PutVersioning { status } => c
            .put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::from(status.as_str()))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("PutBucketVersioning", b, e)),
        S3Action::PutPublicAccessBlock { block } => c
            .put_public_access_block()
            .bucket(b)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(block.block_public_acls)
                    .ignore_public_acls(block.ignore_public_acls)
                    .block_public_policy(block.block_public_policy)
                    .restrict_public_buckets(block.restrict_public_buckets)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("PutPublicAccessBlock", b, e)),
        S3Action::DeletePublicAccessBlock => c
            .delete_public_access_block()
            .bucket(b)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("DeletePublicAccessBlock", b, e)),
        S3Action::PutPolicy { policy } => c
            .put_bucket_policy()
            .bucket(b)
            .policy(policy.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("PutBucketPolicy", b, e)),
        S3Action::DeletePolicy => c
            .delete_bucket_policy()
            .bucket(b)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("DeleteBucketPolicy", b, e)),
        S3Action::PutOwnershipControls { ownership } => {
            let rule = OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::from(ownership.as_str()))
                .build()
                .map_err(|e| build_err("PutBucketOwnershipControls", e))?;
            let controls = OwnershipControls::builder()
                .rules(rule)
                .build()
                .map_err(|e| build_err("PutBucketOwnershipControls", e))?;
            c.put_bucket_ownership_controls()
                .bucket(b)
                .ownership_controls(controls)
                .send()
                .await
                .map(drop)
                .map_err(|e| call_failed("PutBucketOwnershipControls", b, e))
        }
        S3Action::DeleteOwnershipControls => c
            .delete_bucket_ownership_controls()
            .bucket(b)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("DeleteBucketOwnershipControls", b, e)),
        S3Action::PutAcl { acl } => {
            let mut grants = Vec::new();
            for g in acl.grants.values() {
                let grantee = match g.grantee_type.as_str() {
                    "canonical_user" => Grantee::builder()
                        .r#type(Type::CanonicalUser)
                        .id(&g.grantee),
                    "group" => Grantee::builder().r#type(Type::Group).uri(&g.grantee),
                    _ => Grantee::builder()
                        .r#type(Type::AmazonCustomerByEmail)
                        .email_address(&g.grantee),
                }
                .build()
                .map_err(|e| build_err("PutBucketAcl", e))?;
                grants.push(
                    SdkGrant::builder()
                        .grantee(grantee)
                        .permission(Permission::from(g.permission.as_str()))
                        .build(),
                );
            }
            c.put_bucket_acl()
                .bucket(b)
                .access_control_policy(
                    AccessControlPolicy::builder()
                        .owner(Owner::builder().id(&acl.owner).build())
                        .set_grants(Some(grants))
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(|e| call_failed("PutBucketAcl", b, e))
        }
        S3Action::PutLogging { logging } => {
            let enabled = match logging {
                Setting::Set(l) => Some(
                    LoggingEnabled::builder()
                        .target_bucket(&l.target_bucket)
                        .target_prefix(&l.target_prefix)
                        .build()
                        .map_err(|e| build_err("PutBucketLogging", e))?,
                ),
                Setting::None => None,
            };
            c.put_bucket_logging()
                .bucket(b)
                .bucket_logging_status(
                    BucketLoggingStatus::builder()
                        .set_logging_enabled(enabled)
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(|e| call_failed("PutBucketLogging", b, e))
        }
        S3Action::PutTagging { tags } => {
            let mut set = Vec::new();
            for (k, v) in tags {
                set.push(
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| build_err("PutBucketTagging", e))?,
                );
            }
            let tagging = Tagging::builder()
                .set_tag_set(Some(set))
                .build()
                .map_err(|e| build_err("PutBucketTagging", e))?;
            c.put_bucket_tagging()
                .bucket(b)
                .tagging(tagging)
                .send()
                .await
                .map(drop)
                .map_err(|e| call_failed("PutBucketTagging", b, e))
        }
        S3Action::DeleteTagging => c
            .delete_bucket_tagging()
            .bucket(b)
            .send()
            .await
            .map(drop)
            .map_err(|e| call_failed("DeleteBucketTagging", b, e)),
    }
}
