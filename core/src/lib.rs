//! Holdfast's pure logic, shared by the agent, the controller, the CLI and
//! the tests: the canonical resource model, one normalizer per resource
//! type, resource hashing, `diff(baseline, observed) -> drift`, and
//! remediation planning. Nothing here does I/O, so all of it is unit-tested
//! without servers.
//!
//! Resource types are data: a type is a string name (`aws.ec2.security_group`)
//! looked up in the [`types`] registry, and attributes are canonical JSON. A
//! new type adds one registry entry and one normalizer/planner module; the
//! drift engine, the store and the protocol do not change.

pub mod canonical;
pub mod diff;
pub mod iam;
pub mod password_policy;
pub mod paths;
pub mod plan;
pub mod policy_doc;
pub mod resource;
pub mod s3;
pub mod setting;
pub mod sg;
pub mod types;

pub use canonical::{canonical_bytes, Hash};
pub use diff::{diff_partition, diff_values, Change, Drift, DriftKind};
pub use plan::{plan_lifecycle, plan_remediation, Lifecycle, PlanError, PlannedAction};
pub use resource::{ObservedResource, ResourceKey};
pub use types::{type_info, Scope, TypeInfo, SUPPORTED_TYPES};
