//! Resource identity and observed resources.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::Hash;

/// Where a resource lives: its type, id, account and region (`global` for
/// account-wide types such as IAM).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
    pub account: String,
    pub region: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.resource_type, self.account, self.region, self.id
        )
    }
}

/// One resource as seen in a partition: its id, the hash of its canonical
/// attributes and the attributes themselves. Within a partition the type,
/// account and region are implied.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedResource {
    pub id: String,
    pub hash: Hash,
    pub attributes: Arc<Value>,
}

impl ObservedResource {
    /// Builds a resource from canonical attributes, computing the hash.
    pub fn new(id: impl Into<String>, attributes: Value) -> Self {
        let hash = Hash::of(&attributes);
        ObservedResource {
            id: id.into(),
            hash,
            attributes: Arc::new(attributes),
        }
    }
}

/// Sorts resources by id, as [`crate::diff_partition`] expects, and reports
/// the first id that occurs twice.
pub fn sort_by_id(resources: &mut [ObservedResource]) -> Result<(), String> {
    resources.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    match resources.windows(2).find(|w| w[0].id == w[1].id) {
        Some(w) => Err(w[0].id.clone()),
        None => Ok(()),
    }
}
