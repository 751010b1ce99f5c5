//! What the controller keeps in the store, and where.
//!
//! Key layout (all under `/holdfast/v1/`):
//!
//! | key | value |
//! | --- | --- |
//! | `envs/{env}` | [`Environment`] |
//! | `bodies/{sha256}` | canonical attributes of one resource (content-addressed, shared by all baselines) |
//! | `baselines/{env}/{version:020}-{attempt}/{region}/{type}` | [`Manifest`]: (id, hash) of each resource; each attempt at a version writes its own parts, so a crashed or concurrent attempt can never mix into the one that wins |
//! | `baseline-meta/{env}/{version:020}` | [`BaselineMeta`]; written last, so a version without it does not exist |
//! | `baseline-current/{env}` | the current version number, moved by compare-and-swap |
//! | `baseline-approvals/{env}/{version:020}` | [`Approval`] of a candidate version (create-only) |
//! | `drift/{env}/{id}` | [`DriftRecord`] |
//! | `remediations/{env}/{id}` | [`RemediationRecord`] with its journal |
//! | `audit/{env}/{seq:020}` | [`crate::audit::Entry`]: the environment's hash chain |
//! | `audit-head/{env}` | [`crate::audit::Head`]: its newest entry |
//! | `outbox/{env}/{seq:020}` | [`Notice`] waiting for delivery (seq = its audit entry) |
//! | `outbox-cursor/{env}/{webhook}` | the last notice delivered to a webhook |
//! | `scans/{env}/{id:020}` | [`ScanSummary`] of a compliance scan (audited) |
//! | `scan-detail/{env}/{id:020}/{part:06}` | the scan itself: part 0 its totals and comparison, parts 1… its findings in chunks (written in the same transaction) |
//!
//! Baseline versions are create-only; record ids are UUIDv7, so key order is
//! time order.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{stream, StreamExt, TryStreamExt};
use holdfast_core::{Change, Hash, ObservedResource};
use holdfast_policy::report::{Assessed, Scan, ScanSummary};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{Draft, Head};
use crate::error::Error;
use crate::fleet::Fence;
use crate::store::{Condition, Store, Txn};

/// Every key holdfast writes starts with this.
pub const ROOT: &str = "/holdfast/v1";
/// Below etcd's default limit of 128 operations per transaction.
const MAX_TXN_OPS: usize = 100;
/// Findings per stored chunk: well below etcd's 1.5 MiB value limit.
const FINDINGS_PER_CHUNK: usize = 2000;

/// Enforcement mode of an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Drift is recorded; nothing is notified or changed.
    Off,
    /// Drift is recorded and notified; nothing is changed.
    Notify,
    /// Drift of modified resources is healed back to the baseline.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Notify => "notify",
            Mode::Enforce => "enforce",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    pub account: String,
    pub regions: Vec<String>,
    pub resource_types: Vec<String>,
    pub mode: Mode,
    pub created_at: String,
    /// Pauses of enforcement, each with its expiry (expired ones are pruned
    /// on the next change).
    #[serde(default)]
    pub pauses: Vec<Pause>,
    #[serde(default)]
    pub safety: Safety,
    /// Where notices go.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Frameworks and scan schedule.
    #[serde(default)]
    pub compliance: crate::compliance::Settings,
    /// Accepted exceptions to rules (expired ones stop applying by
    /// themselves and are pruned on the next change).
    #[serde(default)]
    pub waivers: Vec<holdfast_policy::report::Waiver>,
}

/// A notification target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// `json` (the notice as JSON) or `slack` (an incoming-webhook message).
    pub format: String,
    pub by: String,
    pub created_at: String,
    /// Notices up to this outbox position existed before the target did
    /// and are not sent to it.
    pub start_after: u64,
}

/// What users are told, queued durably in the same transaction as the
/// record that caused it (`outbox/{env}/{seq}`, seq = its audit entry).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub seq: u64,
    pub env: String,
    pub at: String,
    /// `drift`, `remediation`, `flapping`, `compliance`, `pause` or `resume`.
    pub kind: String,
    /// The resource concerned (`type/region/id`), if any.
    pub resource: Option<String>,
    pub text: String,
    pub data: Value,
}

/// Safety gates of enforcement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Safety {
    /// Remediations sent per minute at most; beyond it they wait.
    pub max_remediations_per_minute: u32,
    /// A resource reverted this many times within `flap_window_seconds`
    /// is flapping: it is no longer enforced until the window has passed.
    pub flap_threshold: u32,
    pub flap_window_seconds: u64,
    /// Only these resource types are enforced (empty: every type).
    #[serde(default)]
    pub enforce_types: Vec<String>,
    /// Attribute paths that are neither drift nor restored (patterns, see
    /// `holdfast_core::paths`), e.g. tags owned by another system.
    #[serde(default)]
    pub ignore_paths: Vec<String>,
    /// In enforce mode, delete `added` resources (off by default).
    #[serde(default)]
    pub delete_added: bool,
    /// In enforce mode, recreate `removed` resources from the baseline (off
    /// by default).
    #[serde(default)]
    pub recreate_removed: bool,
}

impl Default for Safety {
    /// 30 a minute: a burst after an outage heals within minutes without
    /// flooding an account's API limits. Three reverts in ten minutes: a
    /// deploy pipeline or a person is fighting the baseline.
    fn default() -> Self {
        Safety {
            max_remediations_per_minute: 30,
            flap_threshold: 3,
            flap_window_seconds: 600,
            enforce_types: Vec::new(),
            ignore_paths: Vec::new(),
            delete_added: false,
            recreate_removed: false,
        }
    }
}

/// A pause of enforcement: the whole environment when `resource_types` and
/// `resources` are both empty, else only what they name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub id: String,
    /// RFC 3339 (as [`now`] writes it); enforcement resumes by itself then.
    pub until: String,
    pub reason: String,
    pub by: String,
    pub resource_types: Vec<String>,
    pub resources: Vec<String>,
    pub created_at: String,
}

impl Pause {
    pub fn active(&self, now: &str) -> bool {
        self.until.as_str() > now
    }

    pub fn covers(&self, resource_type: &str, id: &str) -> bool {
        (self.resource_types.is_empty() && self.resources.is_empty())
            || self.resource_types.iter().any(|t| t == resource_type)
            || self.resources.iter().any(|r| r == id)
    }
}

impl Environment {
    /// The pause in force now for a resource, if any.
    pub fn paused(&self, resource_type: &str, id: &str, now: &str) -> Option<&Pause> {
        self.pauses
            .iter()
            .filter(|p| p.active(now) && p.covers(resource_type, id))
            .max_by(|a, b| a.until.cmp(&b.until))
    }

    /// The pauses in force now.
    pub fn active_pauses(&self, now: &str) -> Vec<&Pause> {
        self.pauses.iter().filter(|p| p.active(now)).collect()
    }

    /// Whether a partition from `account`/`region`/`resource_type` belongs here.
    pub fn covers(&self, account: &str, region: &str, resource_type: &str) -> bool {
        self.account == account
            && self.resource_types.iter().any(|t| t == resource_type)
            && (self.regions.iter().any(|r| r == region)
                || holdfast_core::type_info(resource_type)
                    .is_some_and(|t| t.scope == holdfast_core::Scope::Global))
    }

    /// Every (region, type) partition a complete snapshot must contain.
    pub fn partitions(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in &self.resource_types {
            match holdfast_core::type_info(t).map(|i| i.scope) {
                Some(holdfast_core::Scope::Global) => out.push(("global".to_string(), t.clone())),
                _ => out.extend(self.regions.iter().map(|r| (r.clone(), t.clone()))),
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineMeta {
    pub env: String,
    pub version: u64,
    pub created_at: String,
    pub reason: String,
    pub resources: u32,
    /// (region, type) of every part.
    pub parts: Vec<(String, String)>,
    /// Key prefix of this version's manifests (a rollback shares the
    /// manifests of the version it restores).
    pub parts_prefix: String,
    /// Created as a candidate: current only once approved.
    #[serde(default)]
    pub candidate: bool,
    /// The version this one restores.
    #[serde(default)]
    pub rolled_back_from: Option<u64>,
    #[serde(default)]
    pub created_by: String,
}

/// The approval of a candidate baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub at: String,
    pub by: String,
    pub reason: String,
}

/// A baseline version's metadata and approval, for listings.
#[derive(Clone, Debug)]
pub struct BaselineInfo {
    pub meta: BaselineMeta,
    pub approval: Option<Approval>,
}

impl BaselineInfo {
    pub fn approved(&self) -> bool {
        !self.meta.candidate || self.approval.is_some()
    }
}

/// The (id, hash) of every resource of one partition of a baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub resources: Vec<(String, String)>,
}

/// A loaded baseline: its metadata and resources per (region, type), each
/// partition sorted by id.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub meta: BaselineMeta,
    pub parts: BTreeMap<(String, String), Arc<Vec<ObservedResource>>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
    pub account: String,
    pub region: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    Open,
    Healed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftRecord {
    pub id: String,
    pub env: String,
    pub resource: ResourceRef,
    pub kind: holdfast_core::DriftKind,
    pub changes: Vec<Change>,
    pub status: DriftStatus,
    pub detected_at: String,
    pub updated_at: String,
    pub healed_at: Option<String>,
    pub baseline_version: u64,
    pub revision: u32,
    /// Hash of the drifted state, so the same drift seen again is not
    /// recorded again.
    pub observed_hash: Option<String>,
    /// Why enforcement did not act (e.g. the drift is unenforceable).
    #[serde(default)]
    pub note: Option<String>,
    /// The replica that made the latest change to this record.
    #[serde(default)]
    pub decided_by: String,
    /// The drifted state as observed (absent for removed resources), so
    /// any replica can plan a dry run from the store.
    #[serde(default)]
    pub observed: Option<Value>,
    /// What the drift does to compliance: rules the resource fails now
    /// but not in the baseline, and rules it passes now but failed then.
    #[serde(default)]
    pub compliance: Compliance,
}

/// The compliance consequence of a drift.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    pub newly_failing: Vec<RuleFinding>,
    /// Rule ids.
    pub newly_passing: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleFinding {
    pub rule: String,
    pub severity: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationStatus {
    Pending,
    Sent,
    Applied,
    Conflict,
    Failed,
    Noop,
    Abandoned,
}

impl RemediationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationStatus::Pending => "pending",
            RemediationStatus::Sent => "sent",
            RemediationStatus::Applied => "applied",
            RemediationStatus::Conflict => "conflict",
            RemediationStatus::Failed => "failed",
            RemediationStatus::Noop => "noop",
            RemediationStatus::Abandoned => "abandoned",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RemediationStatus::Pending | RemediationStatus::Sent)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: String,
    pub step: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemediationRecord {
    pub id: String,
    pub env: String,
    pub resource: ResourceRef,
    pub drift_id: String,
    pub baseline_version: u64,
    pub status: RemediationStatus,
    pub planned_actions: Vec<String>,
    pub actions: Vec<String>,
    pub journal: Vec<JournalEntry>,
    pub created_at: String,
    pub updated_at: String,
    pub desired: Value,
    pub expected: Value,
    pub expected_hash: String,
    /// The replica that decided it.
    #[serde(default)]
    pub decided_by: String,
}

impl RemediationRecord {
    /// Appends a journal step and sets the status.
    pub fn step(&mut self, status: RemediationStatus, step: &str, detail: impl Into<String>) {
        let at = now();
        self.status = status;
        self.updated_at = at.clone();
        self.journal.push(JournalEntry {
            at,
            step: step.to_string(),
            detail: detail.into(),
        });
    }
}

/// RFC 3339 UTC timestamp with exactly three fractional digits, so that
/// timestamps sort as strings.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

pub fn format_time(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("formatting a UTC time with a fixed format cannot fail")
}

/// A new time-ordered record id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records always serialize")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Internal(format!("corrupt record at {key}: {e}")))
}

/// Typed access to the store.
#[derive(Clone)]
pub struct Records {
    store: Arc<dyn Store>,
}

impl Records {
    pub fn new(store: Arc<dyn Store>) -> Records {
        Records { store }
    }

    fn env_key(name: &str) -> String {
        format!("{ROOT}/envs/{name}")
    }

    pub async fn create_env(&self, env: &Environment, actor: &str) -> Result<(), Error> {
        let key = Self::env_key(&env.name);
        let value = encode(env);
        let base = Txn::new()
            .when(Condition::Absent(key.clone()))
            .put(key.clone(), value.clone());
        let draft = Draft {
            actor: actor.to_string(),
            action: "env.create".into(),
            subject: key,
            detail: serde_json::json!({"account": env.account, "regions": env.regions, "resource_types": env.resource_types, "mode": env.mode.as_str()}),
            record: Some(value),
        };
        if self.commit_audited(&env.name, base, draft, None).await? {
            Ok(())
        } else {
            Err(Error::AlreadyExists(format!(
                "environment {:?} already exists",
                env.name
            )))
        }
    }

    pub async fn get_env(&self, name: &str) -> Result<Option<(Environment, i64)>, Error> {
        let key = Self::env_key(name);
        match self.store.get(&key).await? {
            Some(v) => Ok(Some((decode(&key, &v.value)?, v.mod_revision))),
            None => Ok(None),
        }
    }

    /// Replaces an environment if it has not changed since `revision`,
    /// recording `action` by `actor` with `detail` in the audit chain.
    pub async fn update_env(
        &self,
        env: &Environment,
        revision: i64,
        actor: &str,
        action: &str,
        detail: Value,
    ) -> Result<bool, Error> {
        let key = Self::env_key(&env.name);
        let value = encode(env);
        let base = Txn::new()
            .when(Condition::Revision(key.clone(), revision))
            .put(key.clone(), value.clone());
        let draft = Draft {
            actor: actor.to_string(),
            action: action.to_string(),
            subject: key,
            detail,
            record: Some(value),
        };
        self.commit_audited(&env.name, base, draft, None).await
    }

    pub fn outbox_key(env: &str, seq: u64) -> String {
        format!("{ROOT}/outbox/{env}/{seq:020}")
    }

    pub fn cursor_key(env: &str, webhook: &str) -> String {
        format!("{ROOT}/outbox-cursor/{env}/{webhook}")
    }

    /// Notices waiting, oldest first.
    pub async fn list_outbox(&self, env: &str) -> Result<Vec<Notice>, Error> {
        self.store
            .list(&format!("{ROOT}/outbox/{env}/"))
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    /// The newest audit entry of an environment (0 if none).
    pub async fn audit_seq(&self, env: &str) -> Result<u64, Error> {
        let key = Self::audit_head_key(env);
        Ok(match self.store.get(&key).await? {
            Some(v) => decode::<Head>(&key, &v.value)?.seq,
            None => 0,
        })
    }

    /// The last notice delivered to a webhook.
    pub async fn cursor(&self, env: &str, webhook: &Webhook) -> Result<u64, Error> {
        let key = Self::cursor_key(env, &webhook.id);
        Ok(match self.store.get(&key).await? {
            Some(v) => decode(&key, &v.value)?,
            None => webhook.start_after,
        })
    }

    /// Records a delivery, only while `fence` holds.
    pub async fn set_cursor(
        &self,
        env: &str,
        webhook: &str,
        seq: u64,
        fence: &Fence,
    ) -> Result<(), Error> {
        let txn = Txn::new()
            .when(Condition::Revision(fence.key.clone(), fence.revision))
            .put(Self::cursor_key(env, webhook), encode(&seq));
        if self.store.commit(txn).await? {
            Ok(())
        } else {
            Err(Error::Fenced(format!("{} is no longer held", fence.key)))
        }
    }

    /// Deletes delivered notices (by seq), only while `fence` holds.
    pub async fn prune_outbox(&self, env: &str, seqs: &[u64], fence: &Fence) -> Result<(), Error> {
        let done: Vec<String> = seqs.iter().map(|s| Self::outbox_key(env, *s)).collect();
        for chunk in done.chunks(MAX_TXN_OPS - 1) {
            let mut txn = Txn::new().when(Condition::Revision(fence.key.clone(), fence.revision));
            for k in chunk {
                txn = txn.delete(k.clone());
            }
            self.store.commit(txn).await?;
        }
        Ok(())
    }

    fn audit_head_key(env: &str) -> String {
        format!("{ROOT}/audit-head/{env}")
    }

    /// Commits `base` together with the next entry of `env`'s audit chain.
    /// Returns false when `base`'s own conditions failed; a failed `fence`
    /// is [`Error::Fenced`]. A chain that moved meanwhile (another write to
    /// the same environment) is retried.
    pub async fn commit_audited(
        &self,
        env: &str,
        base: Txn,
        draft: Draft,
        fence: Option<&Fence>,
    ) -> Result<bool, Error> {
        self.commit_audited_all(env, base, vec![draft], fence).await
    }

    /// Like [`Records::commit_audited`], with several consecutive entries
    /// (each with its notice, if any) in the one transaction.
    pub async fn commit_audited_all(
        &self,
        env: &str,
        base: Txn,
        drafts: Vec<Draft>,
        fence: Option<&Fence>,
    ) -> Result<bool, Error> {
        let head_key = Self::audit_head_key(env);
        for _ in 0..20 {
            let (head, head_rev) = match self.store.get(&head_key).await? {
                Some(v) => (Some(decode::<Head>(&head_key, &v.value)?), v.mod_revision),
                None => (None, 0),
            };
            let mut txn = base.clone();
            let mut last = head.clone();
            let at = now();
            for draft in &drafts {
                let entry = draft.clone().seal(last.as_ref(), at.clone());
                let entry_key = format!("{ROOT}/audit/{env}/{:020}", entry.seq);
                if let Some((kind, resource, text, data)) = notice_for(draft) {
                    let notice = Notice {
                        seq: entry.seq,
                        env: env.to_string(),
                        at: entry.at.clone(),
                        kind,
                        resource,
                        text,
                        data,
                    };
                    txn = txn.put(Self::outbox_key(env, entry.seq), encode(&notice));
                }
                txn = txn
                    .when(Condition::Absent(entry_key.clone()))
                    .put(entry_key, encode(&entry));
                last = Some(Head {
                    seq: entry.seq,
                    hash: entry.hash.clone(),
                });
            }
            if let Some(f) = fence {
                txn = txn.when(Condition::Revision(f.key.clone(), f.revision));
            }
            let new_head = last.expect("at least one draft");
            txn = txn
                .when(if head_rev == 0 {
                    Condition::Absent(head_key.clone())
                } else {
                    Condition::Revision(head_key.clone(), head_rev)
                })
                .put(head_key.clone(), encode(&new_head));
            if self.store.commit(txn).await? {
                return Ok(true);
            }
            if let Some(f) = fence {
                let held = self.store.get(&f.key).await?;
                if held.map(|v| v.mod_revision) != Some(f.revision) {
                    return Err(Error::Fenced(format!(
                        "{} is no longer held at revision {}",
                        f.key, f.revision
                    )));
                }
            }
            let now_rev = self
                .store
                .get(&head_key)
                .await?
                .map_or(0, |v| v.mod_revision);
            if now_rev == head_rev {
                // The chain did not move: the write's own condition failed.
                return Ok(false);
            }
        }
        Err(Error::Aborted(format!(
            "the audit chain of {env:?} kept moving; try again"
        )))
    }

    /// The audit chain of an environment, oldest first.
    pub async fn list_audit(&self, env: &str) -> Result<Vec<crate::audit::Entry>, Error> {
        self.store
            .list(&format!("{ROOT}/audit/{env}/"))
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    /// Verifies an environment's chain and every audited record.
    pub async fn verify_audit(&self, env: &str) -> Result<(usize, crate::audit::Problems), Error> {
        let entries: Vec<(String, Vec<u8>)> = self
            .store
            .list(&format!("{ROOT}/audit/{env}/"))
            .await?
            .items
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        let head = self.store.get(&Self::audit_head_key(env)).await?;
        let mut records = BTreeMap::new();
        for prefix in [
            format!("{ROOT}/drift/{env}/"),
            format!("{ROOT}/remediations/{env}/"),
            format!("{ROOT}/baseline-meta/{env}/"),
            format!("{ROOT}/baseline-approvals/{env}/"),
            format!("{ROOT}/scans/{env}/"),
        ] {
            for (k, v) in self.store.list(&prefix).await?.items {
                records.insert(k, v.value);
            }
        }
        if let Some(v) = self.store.get(&Self::env_key(env)).await? {
            records.insert(Self::env_key(env), v.value);
        }
        let (n, mut problems) = crate::audit::verify(
            env,
            &entries,
            head.as_ref().map(|h| h.value.as_slice()),
            &records,
        );
        // Each audited scan summary vouches for its detail parts.
        for s in self.list_scans(env).await? {
            if s.detail_digest.is_empty() {
                continue;
            }
            let parts: Vec<Vec<u8>> = self
                .store
                .list(&Self::scan_detail_prefix(env, s.id))
                .await?
                .items
                .into_iter()
                .map(|(_, v)| v.value)
                .collect();
            if detail_digest(&parts) != s.detail_digest {
                problems.push(format!(
                    "{}: the findings of compliance scan {} were altered or removed",
                    Self::scan_key(env, s.id),
                    s.id
                ));
            }
        }
        Ok((n, problems))
    }

    pub async fn list_envs(&self) -> Result<Vec<Environment>, Error> {
        let prefix = format!("{ROOT}/envs/");
        self.store
            .list(&prefix)
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    fn current_key(env: &str) -> String {
        format!("{ROOT}/baseline-current/{env}")
    }

    fn meta_key(env: &str, version: u64) -> String {
        format!("{ROOT}/baseline-meta/{env}/{version:020}")
    }

    fn parts_prefix(env: &str, version: u64) -> String {
        format!("{ROOT}/baselines/{env}/{version:020}-{}/", new_id())
    }

    /// The current baseline version and the pointer's revision (0, 0 if none).
    pub async fn current_version(&self, env: &str) -> Result<(u64, i64), Error> {
        let key = Self::current_key(env);
        match self.store.get(&key).await? {
            None => Ok((0, 0)),
            Some(v) => {
                let version: u64 = decode(&key, &v.value)?;
                Ok((version, v.mod_revision))
            }
        }
    }

    /// Stores a new baseline version from complete partitions and makes it
    /// current. Bodies and manifests are written first; the version's meta
    /// and the current pointer move together in one transaction that fails if
    /// another version was made current meanwhile, so a half-written version
    /// is never visible.
    pub async fn create_baseline(
        &self,
        env: &str,
        reason: &str,
        by: &str,
        candidate: bool,
        parts: &BTreeMap<(String, String), Arc<Vec<ObservedResource>>>,
    ) -> Result<BaselineMeta, Error> {
        let (_, pointer_rev) = self.current_version(env).await?;
        // Unused unless a concurrent create took it; the create-only meta
        // catches that.
        let version = self.next_version(env).await?;

        // Content-addressed bodies: written once, shared by every version.
        let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for resources in parts.values() {
            for r in resources.iter() {
                bodies
                    .entry(r.hash.to_hex())
                    .or_insert_with(|| holdfast_core::canonical_bytes(&r.attributes));
            }
        }
        let mut missing = Vec::new();
        for chunk in bodies.keys().cloned().collect::<Vec<_>>().chunks(64) {
            let found = stream::iter(chunk.iter().cloned())
                .map(|h| async move {
                    let key = format!("{ROOT}/bodies/{h}");
                    self.store.get(&key).await.map(|v| (h, v.is_some()))
                })
                .buffer_unordered(16)
                .try_collect::<Vec<_>>()
                .await?;
            missing.extend(found.into_iter().filter(|(_, f)| !f).map(|(h, _)| h));
        }
        for chunk in missing.chunks(MAX_TXN_OPS) {
            let mut txn = Txn::new();
            for h in chunk {
                txn = txn.put(format!("{ROOT}/bodies/{h}"), bodies[h].clone());
            }
            self.store.commit(txn).await?;
        }

        let prefix = Self::parts_prefix(env, version);
        let mut meta_parts = Vec::new();
        let mut count = 0u32;
        let mut txn = Txn::new();
        for ((region, rtype), resources) in parts {
            let manifest = Manifest {
                resources: resources
                    .iter()
                    .map(|r| (r.id.clone(), r.hash.to_hex()))
                    .collect(),
            };
            count += resources.len() as u32;
            meta_parts.push((region.clone(), rtype.clone()));
            txn = txn.put(format!("{prefix}{region}/{rtype}"), encode(&manifest));
            if txn.ops() >= MAX_TXN_OPS {
                self.store.commit(std::mem::take(&mut txn)).await?;
            }
        }
        if txn.ops() > 0 {
            self.store.commit(txn).await?;
        }

        let meta = BaselineMeta {
            env: env.to_string(),
            version,
            created_at: now(),
            reason: reason.to_string(),
            resources: count,
            parts: meta_parts,
            parts_prefix: prefix,
            candidate,
            rolled_back_from: None,
            created_by: by.to_string(),
        };
        self.commit_meta(&meta, (!candidate).then_some(pointer_rev))
            .await?;
        Ok(meta)
    }

    /// One more than the highest version that exists (candidates included).
    async fn next_version(&self, env: &str) -> Result<u64, Error> {
        let prefix = format!("{ROOT}/baseline-meta/{env}/");
        let listing = self.store.list(&prefix).await?;
        Ok(listing
            .items
            .last()
            .and_then(|(k, _)| k[prefix.len()..].parse::<u64>().ok())
            .unwrap_or(0)
            + 1)
    }

    /// Writes a version's meta (create-only) and, with `pointer_rev`, makes
    /// it current in the same transaction (compare-and-swap on the pointer).
    async fn commit_meta(
        &self,
        meta: &BaselineMeta,
        pointer_rev: Option<i64>,
    ) -> Result<(), Error> {
        let meta_key = Self::meta_key(&meta.env, meta.version);
        let value = encode(meta);
        let mut txn = Txn::new()
            .when(Condition::Absent(meta_key.clone()))
            .put(meta_key.clone(), value.clone());
        if let Some(rev) = pointer_rev {
            txn = self.move_pointer(txn, &meta.env, rev, meta.version);
        }
        let action = match (meta.candidate, meta.rolled_back_from) {
            (true, _) => "baseline.candidate",
            (false, Some(_)) => "baseline.rollback",
            (false, None) => "baseline.create",
        };
        let draft = Draft {
            actor: meta.created_by.clone(),
            action: action.into(),
            subject: meta_key,
            detail: serde_json::json!({"version": meta.version, "reason": meta.reason, "resources": meta.resources, "rolled_back_from": meta.rolled_back_from}),
            record: Some(value),
        };
        if self.commit_audited(&meta.env, txn, draft, None).await? {
            Ok(())
        } else {
            Err(Error::Aborted(format!(
                "another baseline of {:?} was created at the same time (version {}); try again",
                meta.env, meta.version
            )))
        }
    }

    fn move_pointer(&self, txn: Txn, env: &str, pointer_rev: i64, version: u64) -> Txn {
        let pointer = Self::current_key(env);
        let cond = if pointer_rev == 0 {
            Condition::Absent(pointer.clone())
        } else {
            Condition::Revision(pointer.clone(), pointer_rev)
        };
        txn.when(cond).put(pointer, encode(&version))
    }

    fn approval_key(env: &str, version: u64) -> String {
        format!("{ROOT}/baseline-approvals/{env}/{version:020}")
    }

    /// A version with its approval.
    pub async fn baseline_info(
        &self,
        env: &str,
        version: u64,
    ) -> Result<Option<BaselineInfo>, Error> {
        let Some(meta) = self.get_baseline_meta(env, version).await? else {
            return Ok(None);
        };
        let key = Self::approval_key(env, version);
        let approval = match self.store.get(&key).await? {
            Some(v) => Some(decode(&key, &v.value)?),
            None => None,
        };
        Ok(Some(BaselineInfo { meta, approval }))
    }

    /// Makes a candidate current. Refused for a version that is not a
    /// candidate, already approved, or older than the current version (a
    /// rollback is the way back).
    pub async fn approve_baseline(
        &self,
        env: &str,
        version: u64,
        by: &str,
        reason: &str,
    ) -> Result<BaselineInfo, Error> {
        let info = self.baseline_info(env, version).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "environment {env:?} has no baseline version {version}"
            ))
        })?;
        if info.approved() {
            return Err(Error::FailedPrecondition(format!(
                "baseline v{version} of {env:?} is already approved"
            )));
        }
        let (current, pointer_rev) = self.current_version(env).await?;
        if version < current {
            return Err(Error::FailedPrecondition(format!(
                "candidate v{version} is older than the current v{current}; create a new candidate or roll back instead"
            )));
        }
        let approval = Approval {
            at: now(),
            by: by.to_string(),
            reason: reason.to_string(),
        };
        let key = Self::approval_key(env, version);
        let value = encode(&approval);
        let txn = self.move_pointer(
            Txn::new()
                .when(Condition::Absent(key.clone()))
                .put(key.clone(), value.clone()),
            env,
            pointer_rev,
            version,
        );
        let draft = Draft {
            actor: by.to_string(),
            action: "baseline.approve".into(),
            subject: key,
            detail: serde_json::json!({"version": version, "reason": reason}),
            record: Some(value),
        };
        if !self.commit_audited(env, txn, draft, None).await? {
            return Err(Error::Aborted(format!(
                "baseline v{version} of {env:?} was approved or another version made current at the same time; try again"
            )));
        }
        Ok(BaselineInfo {
            meta: info.meta,
            approval: Some(approval),
        })
    }

    /// Makes an approved older version current again as a new version
    /// sharing its manifests.
    pub async fn rollback_baseline(
        &self,
        env: &str,
        version: u64,
        by: &str,
        reason: &str,
    ) -> Result<BaselineMeta, Error> {
        let info = self.baseline_info(env, version).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "environment {env:?} has no baseline version {version}"
            ))
        })?;
        if !info.approved() {
            return Err(Error::FailedPrecondition(format!(
                "baseline v{version} of {env:?} is a candidate that was never approved; approve it instead"
            )));
        }
        let (current, pointer_rev) = self.current_version(env).await?;
        if current == version {
            return Err(Error::FailedPrecondition(format!(
                "baseline v{version} of {env:?} is already current"
            )));
        }
        let meta = BaselineMeta {
            env: env.to_string(),
            version: self.next_version(env).await?,
            created_at: now(),
            reason: reason.to_string(),
            resources: info.meta.resources,
            parts: info.meta.parts.clone(),
            parts_prefix: info.meta.parts_prefix.clone(),
            candidate: false,
            rolled_back_from: Some(version),
            created_by: by.to_string(),
        };
        self.commit_meta(&meta, Some(pointer_rev)).await?;
        Ok(meta)
    }

    /// Every version with its approval.
    pub async fn list_baseline_infos(&self, env: &str) -> Result<Vec<BaselineInfo>, Error> {
        let approvals: BTreeMap<String, Approval> = self
            .store
            .list(&format!("{ROOT}/baseline-approvals/{env}/"))
            .await?
            .items
            .into_iter()
            .map(|(k, v)| {
                let version = k.rsplit('/').next().unwrap_or_default().to_string();
                decode(&k, &v.value).map(|a| (version, a))
            })
            .collect::<Result<_, _>>()?;
        Ok(self
            .list_baselines(env)
            .await?
            .into_iter()
            .map(|meta| {
                let approval = approvals.get(&format!("{:020}", meta.version)).cloned();
                BaselineInfo { meta, approval }
            })
            .collect())
    }

    pub async fn list_baselines(&self, env: &str) -> Result<Vec<BaselineMeta>, Error> {
        let prefix = format!("{ROOT}/baseline-meta/{env}/");
        self.store
            .list(&prefix)
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    pub async fn get_baseline_meta(
        &self,
        env: &str,
        version: u64,
    ) -> Result<Option<BaselineMeta>, Error> {
        let key = Self::meta_key(env, version);
        match self.store.get(&key).await? {
            Some(v) => Ok(Some(decode(&key, &v.value)?)),
            None => Ok(None),
        }
    }

    /// Loads a baseline version with every resource body.
    pub async fn load_baseline(&self, env: &str, version: u64) -> Result<Option<Baseline>, Error> {
        let Some(meta) = self.get_baseline_meta(env, version).await? else {
            return Ok(None);
        };
        let mut parts = BTreeMap::new();
        for (region, rtype) in &meta.parts {
            let key = format!("{}{region}/{rtype}", meta.parts_prefix);
            let manifest: Manifest = match self.store.get(&key).await? {
                Some(v) => decode(&key, &v.value)?,
                None => {
                    return Err(Error::Internal(format!(
                        "baseline {env} v{version} is missing its part {region}/{rtype}"
                    )))
                }
            };
            let resources: Vec<ObservedResource> = stream::iter(manifest.resources)
                .map(|(id, hash)| async move {
                    let key = format!("{ROOT}/bodies/{hash}");
                    let v = self.store.get(&key).await?.ok_or_else(|| {
                        Error::Internal(format!("baseline body {hash} of {id} is missing"))
                    })?;
                    let attributes: Value = decode(&key, &v.value)?;
                    let h = Hash::from_hex(&hash).map_err(|e| Error::Internal(e.to_string()))?;
                    if Hash::of(&attributes) != h {
                        return Err(Error::Internal(format!(
                            "baseline body {hash} of {id} does not match its hash"
                        )));
                    }
                    Ok::<_, Error>(ObservedResource {
                        id,
                        hash: h,
                        attributes: Arc::new(attributes),
                    })
                })
                .buffered(32)
                .try_collect()
                .await?;
            parts.insert((region.clone(), rtype.clone()), Arc::new(resources));
        }
        Ok(Some(Baseline { meta, parts }))
    }

    /// Writes a decider's record only while `fence` holds (the decider
    /// still owns the account), with its audit entry.
    async fn fenced_put(
        &self,
        env: &str,
        key: String,
        value: Vec<u8>,
        fence: &Fence,
        actor: &str,
        action: &str,
    ) -> Result<(), Error> {
        let draft = Draft {
            actor: actor.to_string(),
            action: action.to_string(),
            subject: key.clone(),
            detail: Value::Null,
            record: Some(value.clone()),
        };
        self.commit_audited(env, Txn::new().put(key, value), draft, Some(fence))
            .await
            .map(drop)
    }

    fn scan_key(env: &str, id: u64) -> String {
        format!("{ROOT}/scans/{env}/{id:020}")
    }

    fn scan_detail_prefix(env: &str, id: u64) -> String {
        format!("{ROOT}/scan-detail/{env}/{id:020}/")
    }

    /// Stores a scan (summary, detail and findings in one transaction with
    /// its audit entry), only while `fence` holds.
    pub async fn put_scan(&self, scan: &Scan, fence: &Fence, actor: &str) -> Result<(), Error> {
        let key = Self::scan_key(&scan.env, scan.id);
        let prefix = Self::scan_detail_prefix(&scan.env, scan.id);
        let mut detail = scan.clone();
        detail.findings = Vec::new();
        let chunks: Vec<&[Assessed]> = scan.findings.chunks(FINDINGS_PER_CHUNK).collect();
        let parts: Vec<Vec<u8>> = std::iter::once(encode(&detail))
            .chain(chunks.iter().map(encode))
            .collect();
        let mut summary = scan.summary();
        summary.detail_digest = detail_digest(&parts);
        let summary = encode(&summary);
        if chunks.len() + 12 > MAX_TXN_OPS {
            return Err(Error::Internal(format!(
                "scan {} of {} has {} findings, more than one scan can store ({})",
                scan.id,
                scan.env,
                scan.findings.len(),
                (MAX_TXN_OPS - 12) * FINDINGS_PER_CHUNK
            )));
        }
        let mut txn = Txn::new()
            .when(Condition::Absent(key.clone()))
            .put(key.clone(), summary.clone());
        for (i, part) in parts.into_iter().enumerate() {
            txn = txn.put(format!("{prefix}{i:06}"), part);
        }
        let draft = Draft {
            actor: actor.to_string(),
            action: "compliance.scan".into(),
            subject: key,
            detail: serde_json::json!({
                "scan": scan.id,
                "failed": scan.failed,
                "waived": scan.waived,
                "newly_failing": scan.newly_failing.iter().take(50).collect::<Vec<_>>(),
                "newly_failing_count": scan.newly_failing.len(),
                "newly_passing_count": scan.newly_passing.len(),
            }),
            record: Some(summary),
        };
        if self
            .commit_audited(&scan.env, txn, draft, Some(fence))
            .await?
        {
            Ok(())
        } else {
            Err(Error::AlreadyExists(format!(
                "scan {} of {} already exists",
                scan.id, scan.env
            )))
        }
    }

    /// The history of scans, oldest first.
    pub async fn list_scans(&self, env: &str) -> Result<Vec<ScanSummary>, Error> {
        self.store
            .list(&format!("{ROOT}/scans/{env}/"))
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    /// One scan with its findings (`id` 0: the latest).
    pub async fn get_scan(&self, env: &str, id: u64) -> Result<Option<Scan>, Error> {
        let id = if id == 0 {
            match self.list_scans(env).await?.last() {
                Some(s) => s.id,
                None => return Ok(None),
            }
        } else {
            id
        };
        let items = self
            .store
            .list(&Self::scan_detail_prefix(env, id))
            .await?
            .items;
        let mut items = items.into_iter();
        let Some((k, v)) = items.next() else {
            return Ok(None);
        };
        let mut scan: Scan = decode(&k, &v.value)?;
        for (k, v) in items {
            let chunk: Vec<Assessed> = decode(&k, &v.value)?;
            scan.findings.extend(chunk);
        }
        Ok(Some(scan))
    }

    /// Deletes the oldest scans beyond `keep`, each deletion audited.
    pub async fn prune_scans(
        &self,
        env: &str,
        keep: usize,
        fence: &Fence,
        actor: &str,
    ) -> Result<usize, Error> {
        let scans = self.list_scans(env).await?;
        let excess = scans.len().saturating_sub(keep);
        for s in &scans[..excess] {
            let key = Self::scan_key(env, s.id);
            let parts = self
                .store
                .list(&Self::scan_detail_prefix(env, s.id))
                .await?
                .items;
            let mut txn = Txn::new().delete(key.clone());
            for (k, _) in parts.into_iter().take(MAX_TXN_OPS - 12) {
                txn = txn.delete(k);
            }
            let draft = Draft {
                actor: actor.to_string(),
                action: "compliance.prune".into(),
                subject: key,
                detail: serde_json::json!({"scan": s.id, "keep": keep}),
                record: None,
            };
            self.commit_audited(env, txn, draft, Some(fence)).await?;
        }
        Ok(excess)
    }

    pub async fn put_drift(
        &self,
        d: &DriftRecord,
        fence: &Fence,
        action: &str,
    ) -> Result<(), Error> {
        let key = format!("{ROOT}/drift/{}/{}", d.env, d.id);
        let actor = format!("controller:{}", d.decided_by);
        let value = encode(d);
        let mut drafts = vec![Draft {
            actor: actor.clone(),
            action: action.to_string(),
            subject: key.clone(),
            detail: Value::Null,
            record: Some(value.clone()),
        }];
        // A drift that makes the resource fail rules is also a compliance
        // regression: an entry (and notice) of its own.
        if matches!(action, "drift detected" | "drift changed")
            && !d.compliance.newly_failing.is_empty()
        {
            drafts.push(Draft {
                actor: actor.clone(),
                action: "compliance.regression".into(),
                // Not the drift record's key: this entry digests no record.
                subject: format!("{key}#compliance"),
                detail: serde_json::json!({
                    "drift_id": d.id,
                    "resource": {"type": d.resource.resource_type, "id": d.resource.id, "region": d.resource.region},
                    "newly_failing": d.compliance.newly_failing,
                }),
                record: None,
            });
        }
        let txn = Txn::new().put(key, value);
        self.commit_audited_all(&d.env, txn, drafts, Some(fence))
            .await
            .map(drop)
    }

    pub async fn list_drift(&self, env: &str) -> Result<Vec<DriftRecord>, Error> {
        let prefix = format!("{ROOT}/drift/{env}/");
        self.store
            .list(&prefix)
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    pub async fn put_remediation(&self, r: &RemediationRecord, fence: &Fence) -> Result<(), Error> {
        let key = format!("{ROOT}/remediations/{}/{}", r.env, r.id);
        let actor = format!("controller:{}", r.decided_by);
        let action = format!("remediation {}", r.status.as_str());
        self.fenced_put(&r.env, key, encode(r), fence, &actor, &action)
            .await
    }

    pub async fn get_remediation(
        &self,
        env: &str,
        id: &str,
    ) -> Result<Option<RemediationRecord>, Error> {
        let key = format!("{ROOT}/remediations/{env}/{id}");
        match self.store.get(&key).await? {
            Some(v) => Ok(Some(decode(&key, &v.value)?)),
            None => Ok(None),
        }
    }

    pub async fn list_remediations(&self, env: &str) -> Result<Vec<RemediationRecord>, Error> {
        let prefix = format!("{ROOT}/remediations/{env}/");
        self.store
            .list(&prefix)
            .await?
            .items
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }
}

/// SHA-256 over a scan's stored detail parts, in order, each prefixed by
/// its length.
fn detail_digest(parts: &[Vec<u8>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The notice a write causes, if any: (kind, resource, text, data).
fn notice_for(d: &Draft) -> Option<(String, Option<String>, String, Value)> {
    let record: Option<Value> = d
        .record
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    let resource = |r: &Value| {
        let k = &r["resource"];
        format!(
            "{}/{}/{}",
            k["type"].as_str().unwrap_or("?"),
            k["region"].as_str().unwrap_or("?"),
            k["id"].as_str().unwrap_or("?")
        )
    };
    match d.action.as_str() {
        "drift detected" | "drift changed" => {
            let r = record?;
            let paths: Vec<&str> = r["changes"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c["path"].as_str()).collect())
                .unwrap_or_default();
            let res = resource(&r);
            let text = match r["kind"].as_str() {
                Some("modified") => format!(
                    "{res} drifted: {} changed ({})",
                    paths.len(),
                    paths.join(", ")
                ),
                Some(kind) => format!("{res} {kind}"),
                None => format!("{res} drifted"),
            };
            Some((
                "drift".into(),
                Some(res),
                text,
                serde_json::json!({"drift_id": r["id"], "kind": r["kind"], "changes": r["changes"], "compliance": r["compliance"]}),
            ))
        }
        "enforcement held back" => {
            let r = record?;
            let note = r["note"].as_str()?;
            note.starts_with("flapping").then(|| {
                let res = resource(&r);
                (
                    "flapping".into(),
                    Some(res.clone()),
                    format!("{res} is {note}"),
                    serde_json::json!({"drift_id": r["id"]}),
                )
            })
        }
        a if a.starts_with("remediation ") => {
            let r = record?;
            let status = r["status"].as_str()?;
            if matches!(status, "pending" | "sent") {
                return None;
            }
            let res = resource(&r);
            let last = r["journal"]
                .as_array()
                .and_then(|j| j.last())
                .and_then(|j| j["detail"].as_str())
                .unwrap_or("");
            Some((
                "remediation".into(),
                Some(res.clone()),
                format!("remediation of {res} {status}: {last}"),
                serde_json::json!({"remediation_id": r["id"], "status": status, "actions": r["actions"]}),
            ))
        }
        "compliance.regression" => {
            let r = &d.detail["resource"];
            let res = format!(
                "{}/{}/{}",
                r["type"].as_str().unwrap_or("?"),
                r["region"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            );
            let rules: Vec<String> = d.detail["newly_failing"]
                .as_array()?
                .iter()
                .map(|f| {
                    format!(
                        "{} ({})",
                        f["rule"].as_str().unwrap_or("?"),
                        f["severity"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            Some((
                "compliance".into(),
                Some(res.clone()),
                format!("{res} newly fails {} after drift", rules.join(", ")),
                d.detail.clone(),
            ))
        }
        "compliance.scan" => {
            let n = d.detail["newly_failing_count"].as_u64().unwrap_or(0);
            if n == 0 {
                return None;
            }
            let listed: Vec<String> = d.detail["newly_failing"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|k| {
                            format!(
                                "{} on {} ({})",
                                k["rule"].as_str().unwrap_or("?"),
                                k["resource"].as_str().unwrap_or("?"),
                                k["severity"].as_str().unwrap_or("?")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let more = if n as usize > listed.len() {
                format!(" and {} more", n as usize - listed.len())
            } else {
                String::new()
            };
            Some((
                "compliance".into(),
                None,
                format!(
                    "compliance scan {} found {n} new failing finding(s): {}{more}",
                    d.detail["scan"],
                    listed.join(", ")
                ),
                d.detail.clone(),
            ))
        }
        "enforcement.pause" => Some((
            "pause".into(),
            None,
            format!(
                "enforcement paused by {} until {}: {}",
                d.actor,
                d.detail["until"].as_str().unwrap_or("?"),
                d.detail["reason"].as_str().unwrap_or("")
            ),
            d.detail.clone(),
        )),
        "enforcement.resume" => Some((
            "resume".into(),
            None,
            format!("enforcement resumed by {}", d.actor),
            d.detail.clone(),
        )),
        _ => None,
    }
}
