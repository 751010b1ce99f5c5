//! Drift: what differs between a baseline and an observation.
//!
//! [`diff_partition`] merge-joins two id-sorted partitions. An unchanged
//! resource costs one id comparison and one 32-byte hash comparison; only
//! resources whose hashes differ have their attributes walked by
//! [`diff_values`], which reports every changed leaf with its path.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::Hash;
use crate::resource::ObservedResource;

/// One changed attribute. `Null` stands for "absent on that side".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// How a resource differs from its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// In the baseline and observed, with different attributes.
    Modified,
    /// Observed but not in the baseline.
    Added,
    /// In the baseline but not observed in a complete partition.
    Removed,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Modified => "modified",
            DriftKind::Added => "added",
            DriftKind::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<DriftKind> {
        match s {
            "modified" => Some(DriftKind::Modified),
            "added" => Some(DriftKind::Added),
            "removed" => Some(DriftKind::Removed),
            _ => None,
        }
    }
}

/// The drift of one resource: all its changed attributes at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub id: String,
    pub kind: DriftKind,
    /// Every changed attribute (empty for added and removed resources).
    pub changes: Vec<Change>,
    /// The hash of what was observed (`None` when removed); identifies the
    /// drifted state, so the same drift seen again is not recorded again.
    pub observed_hash: Option<Hash>,
    pub observed: Option<Arc<Value>>,
}

/// Diffs two id-sorted partitions (see [`crate::resource::sort_by_id`]).
/// The caller must only pass an observed partition that was collected
/// completely: a missing resource here means `removed`.
pub fn diff_partition(baseline: &[ObservedResource], observed: &[ObservedResource]) -> Vec<Drift> {
    let mut drift = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < baseline.len() || j < observed.len() {
        let order = match (baseline.get(i), observed.get(j)) {
            (Some(b), Some(o)) => b.id.cmp(&o.id),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                let (b, o) = (&baseline[i], &observed[j]);
                if b.hash != o.hash {
                    let changes = diff_values(&b.attributes, &o.attributes);
                    // Equal values always hash equal, so differing hashes
                    // mean a real change; guard anyway against a stale hash.
                    if !changes.is_empty() {
                        drift.push(Drift {
                            id: o.id.clone(),
                            kind: DriftKind::Modified,
                            changes,
                            observed_hash: Some(o.hash),
                            observed: Some(o.attributes.clone()),
                        });
                    }
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                let b = &baseline[i];
                drift.push(Drift {
                    id: b.id.clone(),
                    kind: DriftKind::Removed,
                    changes: Vec::new(),
                    observed_hash: None,
                    observed: None,
                });
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let o = &observed[j];
                drift.push(Drift {
                    id: o.id.clone(),
                    kind: DriftKind::Added,
                    changes: Vec::new(),
                    observed_hash: Some(o.hash),
                    observed: Some(o.attributes.clone()),
                });
                j += 1;
            }
        }
    }
    drift
}

/// Every changed leaf between two canonical values. Objects are walked key by
/// key; arrays and scalars compare whole (canonical forms use keyed maps for
/// sets, so an array is an ordered value).
pub fn diff_values(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(&mut String::new(), old, new, &mut changes);
    changes
}

fn walk(path: &mut String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let len = path.len();
                push_segment(path, key);
                walk(
                    path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
                path.truncate(len);
            }
        }
        _ if old == new => {}
        _ => out.push(Change {
            path: path.clone(),
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier.
fn push_segment(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).expect("a string always serializes"));
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(id: &str, v: Value) -> ObservedResource {
        ObservedResource::new(id, v)
    }

    #[test]
    fn nested_changes_have_paths() {
        let old = json!({"tags": {"Name": "web"}, "ingress": {"tcp:443-443:0.0.0.0/0": {"d": 1}}});
        let new = json!({"tags": {"Name": "web2", "env": "p"}, "ingress": {"tcp:22-22:0.0.0.0/0": {"d": 1}}});
        let changes = diff_values(&old, &new);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                r#"ingress["tcp:22-22:0.0.0.0/0"]"#,
                r#"ingress["tcp:443-443:0.0.0.0/0"]"#,
                "tags.Name",
                "tags.env"
            ]
        );
        assert_eq!(changes[0].old, Value::Null);
        assert_eq!(changes[1].new, Value::Null);
        assert_eq!(changes[2].old, json!("web"));
    }

    #[test]
    fn partition_diff_classifies() {
        let base = vec![
            res("a", json!({"x": 1})),
            res("b", json!({"x": 1})),
            res("c", json!({"x": 1})),
        ];
        let obs = vec![
            res("a", json!({"x": 1})),
            res("c", json!({"x": 2})),
            res("d", json!({"x": 1})),
        ];
        let drift = diff_partition(&base, &obs);
        let summary: Vec<(&str, DriftKind)> =
            drift.iter().map(|d| (d.id.as_str(), d.kind)).collect();
        assert_eq!(
            summary,
            vec![
                ("b", DriftKind::Removed),
                ("c", DriftKind::Modified),
                ("d", DriftKind::Added)
            ]
        );
        assert_eq!(drift[1].changes.len(), 1);
        assert_eq!(drift[1].changes[0].path, "x");
    }

    #[test]
    fn unchanged_partitions_have_no_drift() {
        let base = vec![res("a", json!({"x": 1})), res("b", json!({"y": [1, 2]}))];
        assert!(diff_partition(&base, &base.clone()).is_empty());
        assert!(diff_partition(&[], &[]).is_empty());
    }
}
