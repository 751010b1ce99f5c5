//! One driver per resource type: how to list a region's resources, read one,
//! and apply planned actions. Drivers are registered by type name, so the
//! session, collection and remediation code never names a type.

pub mod iam;
pub mod password_policy;
pub mod s3;
pub mod sg;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::aws::Cloud;

/// A failed cloud call, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CloudError(pub String);

/// The SDKs' shared error type (every aws-sdk-* crate re-exports it).
pub type SdkError<E> = aws_sdk_s3::error::SdkError<E>;

/// A failed call: the operation, what it was about (may be empty) and the
/// SDK's whole error chain.
pub fn call_failed<E>(what: &str, subject: &str, e: SdkError<E>) -> CloudError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let subject = if subject.is_empty() {
        String::new()
    } else {
        format!(" {subject}")
    };
    CloudError(format!(
        "{what}{subject}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&e)
    ))
}

/// The service's error code (`NoSuchBucket`, `NoSuchEntity`, …), if the
/// service answered with one.
pub fn error_code<E>(e: &SdkError<E>) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code())
}

/// The calls of a create (`done`) followed by those of the apply after it.
pub fn prefixed(
    mut done: Vec<String>,
    then: Result<Vec<String>, (Vec<String>, CloudError)>,
) -> Result<Vec<String>, (Vec<String>, CloudError)> {
    match then {
        Ok(more) => {
            done.extend(more);
            Ok(done)
        }
        Err((more, e)) => {
            done.extend(more);
            Err((done, e))
        }
    }
}

/// A resource just created by `call`, read back (the calls so far with the
/// error otherwise).
pub fn created<T>(
    done: &[String],
    id: &str,
    call: &str,
    read: Result<Option<T>, CloudError>,
) -> Result<T, (Vec<String>, CloudError)> {
    match read {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err((
            done.to_vec(),
            CloudError(format!("{id} is not there after {call}")),
        )),
        Err(e) => Err((done.to_vec(), e)),
    }
}

#[async_trait]
pub trait Driver: Send + Sync {
    fn resource_type(&self) -> &'static str;
    /// Every resource of this type in `region`, as (id, canonical attributes).
    /// Any failed call fails the whole listing: never a partial result.
    async fn collect(&self, region: &str) -> Result<Vec<(String, Value)>, CloudError>;
    /// One resource, freshly read; `None` if it does not exist.
    async fn read(&self, region: &str, id: &str) -> Result<Option<Value>, CloudError>;
    /// Makes `current` equal to `desired` with the minimal calls. Returns the
    /// calls made; on error, the calls made before it and the error.
    async fn apply(
        &self,
        region: &str,
        id: &str,
        desired: &Value,
        current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)>;
    /// Creates a resource that was removed, as `desired` describes it.
    async fn create(
        &self,
        _region: &str,
        id: &str,
        _desired: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        Err((
            vec![],
            CloudError(format!(
                "{} {id} cannot be recreated by holdfast",
                self.resource_type()
            )),
        ))
    }
    /// Deletes a resource that is not in the baseline (`current` as read).
    async fn delete(
        &self,
        _region: &str,
        id: &str,
        _current: &Value,
    ) -> Result<Vec<String>, (Vec<String>, CloudError)> {
        Err((
            vec![],
            CloudError(format!(
                "{} {id} cannot be deleted by holdfast",
                self.resource_type()
            )),
        ))
    }
}

/// The drivers this agent runs, by type name.
#[derive(Clone)]
pub struct Drivers {
    by_type: BTreeMap<String, Arc<dyn Driver>>,
}

/// Every type this agent build has a driver for.
pub fn supported() -> Vec<&'static str> {
    vec![
        holdfast_core::sg::TYPE,
        holdfast_core::s3::TYPE,
        holdfast_core::iam::ROLE,
        holdfast_core::iam::POLICY,
        holdfast_core::iam::USER,
        holdfast_core::password_policy::TYPE,
    ]
}

impl Drivers {
    pub fn new(cloud: &Cloud, types: &[String]) -> Drivers {
        let all: Vec<Arc<dyn Driver>> = vec![
            Arc::new(sg::SecurityGroups::new(cloud.clone())),
            Arc::new(s3::Buckets::new(cloud.clone())),
            Arc::new(iam::Roles::new(cloud.clone())),
            Arc::new(iam::Policies::new(cloud.clone())),
            Arc::new(iam::Users::new(cloud.clone())),
            Arc::new(password_policy::PasswordPolicies::new(cloud.clone())),
        ];
        Drivers {
            by_type: all
                .into_iter()
                .filter(|d| types.iter().any(|t| t == d.resource_type()))
                .map(|d| (d.resource_type().to_string(), d))
                .collect(),
        }
    }

    pub fn get(&self, resource_type: &str) -> Option<&Arc<dyn Driver>> {
        self.by_type.get(resource_type)
    }

    pub fn types(&self) -> Vec<String> {
        self.by_type.keys().cloned().collect()
    }
}
