//! The decider of one environment: a single task, so at most one reconcile
//! is in flight per environment.
//!
//! For every complete partition it diffs the observation against the
//! current baseline (pure, in `holdfast-core`), records each *change* of
//! drift state once (new, changed, healed), and, in `enforce` mode, journals
//! and dispatches remediations for modified resources. A failed partition
//! only updates the partition's status: it never yields `removed` drift or a
//! remediation. In-memory state changes only after the store accepted the
//! write, so a failed write is retried by the next collection.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_core::{
    diff_partition, plan_remediation, Drift, DriftKind, ObservedResource, PlanError,
};
use holdfast_proto::agent::v1::{
    controller_message, Remediation, RemediationOutcome, RemediationResult, ResourceRef as WireRef,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::fleet::Fence;
use crate::hub::{EnvView, Hub, PartitionData, PartitionView};
use crate::records::{
    new_id, now, Baseline, Compliance, DriftRecord, DriftStatus, Environment, Mode,
    RemediationRecord, RemediationStatus, ResourceRef, RuleFinding,
};

/// Events a decider reacts to.
#[derive(Debug)]
pub enum EnvEvent {
    Partition(Arc<PartitionData>),
    RemediationResult(Arc<RemediationResult>),
    /// The environment's settings or current baseline changed in the store.
    Reload,
    /// Scan now (on demand) and answer with the stored scan.
    Scan {
        by: String,
        reply: tokio::sync::oneshot::Sender<Result<holdfast_policy::report::Scan, tonic::Status>>,
    },
}

/// How long an on-demand scan waits for a complete snapshot.
const SCAN_WAIT: Duration = Duration::from_secs(90);
/// After a failed scan, the schedule tries again this much later.
const SCAN_RETRY: Duration = Duration::from_secs(30);

/// The latest scan, for the schedule and for comparing the next one.
struct LastScan {
    id: u64,
    at: time::OffsetDateTime,
    failing: std::collections::BTreeSet<holdfast_policy::report::FindingKey>,
}

type ScanReply = tokio::sync::oneshot::Sender<Result<holdfast_policy::report::Scan, tonic::Status>>;

/// A remediation with no outcome after this long is abandoned; the next
/// collection decides again.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a decider that took over waits for the outcome of a remediation
/// its predecessor sent (the agent re-sends recent outcomes on reconnect).
const TAKEOVER_GRACE: Duration = Duration::from_secs(15);
/// The same drifted state is not remediated again sooner than this.
const RETRY_AFTER: Duration = Duration::from_secs(60);

type PartKey = (String, String);
type ResKey = (String, String, String);

pub struct Decider {
    env: Environment,
    hub: Arc<Hub>,
    view: Arc<Mutex<EnvView>>,
    baseline: Option<Baseline>,
    observed: BTreeMap<PartKey, Arc<Vec<ObservedResource>>>,
    /// When each observed partition was collected.
    observed_at: BTreeMap<PartKey, String>,
    /// None until read from the store; Some(None): no scan yet.
    last_scan: Option<Option<LastScan>>,
    /// On-demand scans waiting for a complete snapshot.
    pending_scans: Vec<(ScanReply, String, Instant)>,
    /// A failed scheduled scan is not retried before this.
    scan_retry_at: Option<Instant>,
    open: HashMap<ResKey, DriftRecord>,
    /// Remediations sent and not yet answered, with their deadline.
    inflight: HashMap<String, (RemediationRecord, Instant)>,
    attempts: HashMap<ResKey, (String, Instant)>,
    /// Journal steps the store has not taken yet, retried every second.
    unjournaled: Vec<RemediationRecord>,
    /// Pauses in force at the last check, to notice one running out.
    active_pauses: usize,
    /// When each resource was last reverted (applied remediations), for the
    /// flapping breaker.
    reverts: HashMap<ResKey, Vec<String>>,
    /// When remediations were sent in the last minute, for the rate budget.
    sent: std::collections::VecDeque<Instant>,
    /// Some drift waits for the rate budget: decide again when it frees.
    deferred: bool,
    /// The environment's ignored paths, parsed when it is (re)loaded.
    ignore: Arc<holdfast_core::paths::Ignore>,
    fence: Fence,
    /// Set when a write was refused by the fence: this replica no longer
    /// owns the account, so the decider stops.
    fenced: bool,
}

impl Decider {
    pub fn new(
        env: Environment,
        hub: Arc<Hub>,
        view: Arc<Mutex<EnvView>>,
        fence: Fence,
    ) -> Decider {
        Decider {
            fence,
            fenced: false,
            env,
            hub,
            view,
            baseline: None,
            observed: BTreeMap::new(),
            observed_at: BTreeMap::new(),
            last_scan: None,
            pending_scans: Vec::new(),
            scan_retry_at: None,
            open: HashMap::new(),
            inflight: HashMap::new(),
            attempts: HashMap::new(),
            unjournaled: Vec::new(),
            active_pauses: 0,
            reverts: HashMap::new(),
            sent: std::collections::VecDeque::new(),
            deferred: false,
            ignore: Arc::default(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<EnvEvent>, token: CancellationToken) {
        // Load state, retrying while the store is unreachable.
        let mut delay = Duration::from_millis(200);
        loop {
            match self.load().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(env = %self.env.name, error = %e, "cannot load environment state, retrying");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Outcomes this replica received before this decider started: only
        // those of remediations it adopted in flight (or abandoned) apply.
        // Notices of this environment are delivered by this replica while
        // it decides for it.
        tokio::spawn(crate::notify::deliver(
            self.hub.clone(),
            self.env.name.clone(),
            self.fence.clone(),
            token.child_token(),
        ));
        for r in self.hub.recent_results(&self.env.account) {
            if self.inflight.contains_key(&r.remediation_id) {
                self.on_result(&r).await;
            }
        }
        // Rebuild the observed state from a fresh collection.
        if let Err(e) = self
            .hub
            .request_collection(&self.env.account, vec![], vec![])
            .await
        {
            tracing::warn!(env = %self.env.name, error = %e, "cannot request a collection");
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            if self.fenced {
                tracing::warn!(env = %self.env.name, "ownership lost; decider stops");
                return;
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => {
                    self.flush_journal().await;
                    self.expire_inflight().await;
                    self.check_pause_expiry().await;
                    if self.deferred && self.budget_left() {
                        self.deferred = false;
                        self.evaluate_all().await;
                    }
                    self.maybe_scan().await;
                }
                event = rx.recv() => match event {
                    None => return,
                    Some(EnvEvent::Partition(p)) => self.on_partition(p).await,
                    Some(EnvEvent::RemediationResult(r)) => self.on_result(&r).await,
                    Some(EnvEvent::Reload) => {
                        if let Err(e) = self.reload().await {
                            tracing::error!(env = %self.env.name, error = %e, "cannot reload environment");
                        }
                    }
                    Some(EnvEvent::Scan { by, reply }) => {
                        self.pending_scans.push((reply, by, Instant::now() + SCAN_WAIT));
                        self.maybe_scan().await;
                    }
                },
            }
        }
    }

    /// Loads baseline, open drift and unfinished remediations from the store.
    async fn load(&mut self) -> Result<(), Error> {
        self.reload().await?;
        let records = &self.hub.records;
        self.open.clear();
        for d in records.list_drift(&self.env.name).await? {
            if d.status == DriftStatus::Open {
                self.open.insert(res_key(&d.resource), d);
            }
        }
        // Remediations in flight under a previous decider (a restart or a
        // takeover) may still report an outcome: wait a grace period for it,
        // blocking new decisions on those resources, then abandon them. The
        // agent's precondition check makes a later re-decision harmless.
        self.inflight.clear();
        self.reverts.clear();
        for r in records.list_remediations(&self.env.name).await? {
            if r.status == RemediationStatus::Applied {
                self.reverts
                    .entry(res_key(&r.resource))
                    .or_default()
                    .push(r.created_at.clone());
            }
            if !r.status.is_final() {
                tracing::info!(env = %self.env.name, remediation = %r.id, "adopted an in-flight remediation");
                self.inflight
                    .insert(r.id.clone(), (r, Instant::now() + TAKEOVER_GRACE));
            }
        }
        self.publish();
        Ok(())
    }

    async fn reload(&mut self) -> Result<(), Error> {
        let records = self.hub.records.clone();
        let (env, _) = records.get_env(&self.env.name).await?.ok_or_else(|| {
            Error::NotFound(format!("environment {:?} disappeared", self.env.name))
        })?;
        // Validated by the admin API when set.
        self.ignore = Arc::new(
            holdfast_core::paths::Ignore::new(&env.safety.ignore_paths).unwrap_or_default(),
        );
        self.env = env;
        let (version, _) = records.current_version(&self.env.name).await?;
        if self.baseline.as_ref().map(|b| b.meta.version) != Some(version) {
            self.baseline = if version == 0 {
                None
            } else {
                records.load_baseline(&self.env.name, version).await?
            };
            tracing::info!(env = %self.env.name, version, "baseline loaded");
        }
        self.evaluate_all().await;
        self.publish();
        Ok(())
    }

    async fn evaluate_all(&mut self) {
        let keys: Vec<PartKey> = self.observed.keys().cloned().collect();
        for key in keys {
            self.evaluate(&key).await;
        }
    }

    /// Whether another remediation may be sent within the rate budget.
    fn budget_left(&mut self) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.sent.pop_front();
        }
        self.sent.len() < self.env.safety.max_remediations_per_minute as usize
    }

    /// A pause that ran out resumes enforcement by itself: decide again on
    /// everything observed.
    async fn check_pause_expiry(&mut self) {
        let active = self.env.active_pauses(&now()).len();
        if active < self.active_pauses {
            tracing::info!(env = %self.env.name, "a pause expired; enforcement resumes");
            self.evaluate_all().await;
        }
        self.active_pauses = active;
    }

    fn publish(&self) {
        let mut view = self.view.lock().expect("view lock");
        view.open_drift = self.open.len() as u32;
    }

    async fn on_partition(&mut self, p: Arc<PartitionData>) {
        let key = (p.region.clone(), p.resource_type.clone());
        self.view.lock().expect("view lock").partitions.insert(
            key.clone(),
            PartitionView {
                complete: p.complete,
                error: p.error.clone(),
                resources: p.resources.len() as u32,
                collected_at: p.collected_at.clone(),
            },
        );
        if !p.complete {
            // Invariant 1: an incomplete partition is not evidence of
            // anything. Keep the last complete observation, decide nothing.
            tracing::warn!(env = %self.env.name, region = %p.region, resource_type = %p.resource_type,
                error = %p.error, "partition collection failed; drift not evaluated");
            return;
        }
        self.observed.insert(key.clone(), p.resources.clone());
        self.observed_at.insert(key.clone(), p.collected_at.clone());
        self.evaluate(&key).await;
        self.publish();
    }

    /// Diffs one partition against the baseline and records what changed.
    async fn evaluate(&mut self, key: &PartKey) {
        let Some(baseline) = &self.baseline else {
            return;
        };
        let Some(observed) = self.observed.get(key).cloned() else {
            return;
        };
        let empty = Arc::new(Vec::new());
        let base = baseline.parts.get(key).cloned().unwrap_or(empty);
        let version = baseline.meta.version;
        let ignore = self.ignore.clone();
        let mut drifts = diff_partition(&base, &observed);
        if !ignore.is_empty() {
            // Ignored attributes are neither drift nor restored.
            drifts = drifts
                .into_iter()
                .filter_map(|mut d| {
                    if d.kind != DriftKind::Modified {
                        return Some(d);
                    }
                    d.changes = ignore.filter(std::mem::take(&mut d.changes));
                    (!d.changes.is_empty()).then_some(d)
                })
                .collect();
        }

        // Healed: open drift in this partition that is no longer there.
        let current: std::collections::HashSet<&str> =
            drifts.iter().map(|d| d.id.as_str()).collect();
        let healed: Vec<ResKey> = self
            .open
            .keys()
            .filter(|(r, t, id)| r == &key.0 && t == &key.1 && !current.contains(id.as_str()))
            .cloned()
            .collect();
        for rk in healed {
            let mut rec = self.open[&rk].clone();
            let at = now();
            rec.status = DriftStatus::Healed;
            rec.decided_by = self.hub.controller_id.clone();
            rec.healed_at = Some(at.clone());
            rec.updated_at = at;
            match self
                .hub
                .records
                .put_drift(&rec, &self.fence, "drift healed")
                .await
            {
                Ok(()) => {
                    tracing::info!(env = %self.env.name, resource = %rec.resource.id, drift = %rec.id, "drift healed");
                    self.open.remove(&rk);
                    // A later drift to the same state is a new episode.
                    self.attempts.remove(&rk);
                }
                Err(e) => {
                    self.write_failed(&e, "cannot record healed drift");
                }
            }
        }

        for d in &drifts {
            let rk = (key.0.clone(), key.1.clone(), d.id.clone());
            let hash = d.observed_hash.map(|h| h.to_hex());
            let rec = match self.open.get(&rk) {
                Some(r) if r.observed_hash == hash && r.kind == d.kind => r.clone(),
                Some(r) => {
                    let mut r = r.clone();
                    r.kind = d.kind;
                    r.changes = d.changes.clone();
                    r.observed_hash = hash;
                    r.observed = d.observed.as_ref().map(|v| (**v).clone());
                    r.compliance = self.compliance(
                        &key.1,
                        &d.id,
                        &key.0,
                        baseline_attrs(&base, &d.id),
                        d.observed.as_deref(),
                    );
                    r.baseline_version = version;
                    r.revision += 1;
                    r.updated_at = now();
                    r.note = None;
                    r.decided_by = self.hub.controller_id.clone();
                    if !self.save_drift(r.clone(), "drift changed").await {
                        continue;
                    }
                    r
                }
                None => {
                    let at = now();
                    let r = DriftRecord {
                        id: new_id(),
                        env: self.env.name.clone(),
                        resource: ResourceRef {
                            resource_type: key.1.clone(),
                            id: d.id.clone(),
                            account: self.env.account.clone(),
                            region: key.0.clone(),
                        },
                        kind: d.kind,
                        changes: d.changes.clone(),
                        status: DriftStatus::Open,
                        detected_at: at.clone(),
                        updated_at: at,
                        healed_at: None,
                        baseline_version: version,
                        revision: 0,
                        observed_hash: hash,
                        observed: d.observed.as_ref().map(|v| (**v).clone()),
                        compliance: self.compliance(
                            &key.1,
                            &d.id,
                            &key.0,
                            baseline_attrs(&base, &d.id),
                            d.observed.as_deref(),
                        ),
                        note: None,
                        decided_by: self.hub.controller_id.clone(),
                    };
                    if !self.save_drift(r.clone(), "drift detected").await {
                        continue;
                    }
                    r
                }
            };
            if self.env.mode != Mode::Enforce {
                continue;
            }
            let baseline_attrs = base
                .binary_search_by(|b| b.id.as_str().cmp(&d.id))
                .ok()
                .map(|i| base[i].attributes.clone());
            match d.kind {
                DriftKind::Modified => {
                    if let Some(desired) = baseline_attrs {
                        let desired = match &d.observed {
                            Some(observed) if !ignore.is_empty() => {
                                Arc::new(ignore.keep_current(&desired, observed))
                            }
                            _ => desired,
                        };
                        self.enforce(rk, rec, d, &desired, version).await;
                    }
                }
                // Whole resources only where the environment allows it.
                DriftKind::Added if self.env.safety.delete_added => {
                    self.enforce(rk, rec, d, &serde_json::Value::Null, version)
                        .await;
                }
                DriftKind::Removed if self.env.safety.recreate_removed => {
                    if let Some(desired) = baseline_attrs {
                        self.enforce(rk, rec, d, &desired, version).await;
                    }
                }
                _ => {}
            }
        }
    }

    /// Which rules the drift makes the resource fail or pass, compared
    /// with its baseline state (absent on either side: nothing there).
    fn compliance(
        &self,
        resource_type: &str,
        id: &str,
        region: &str,
        baseline: Option<&serde_json::Value>,
        observed: Option<&serde_json::Value>,
    ) -> Compliance {
        let resource = |attributes: &serde_json::Value| holdfast_policy::Resource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            account: self.env.account.clone(),
            region: region.to_string(),
            attributes: attributes.clone(),
        };
        let mut policies = self.hub.policies.lock().expect("policies lock");
        let mut findings =
            |v: Option<&serde_json::Value>| -> BTreeMap<String, holdfast_policy::Finding> {
                let Some(v) = v else { return BTreeMap::new() };
                match policies.evaluate_all(&[resource(v)]) {
                    Ok((found, errors)) => {
                        for e in errors {
                            tracing::warn!(env = %self.env.name, resource = id, error = %e, "a policy rule failed to evaluate");
                        }
                        found.into_iter().map(|f| (f.rule.clone(), f)).collect()
                    }
                    Err(e) => {
                        tracing::warn!(env = %self.env.name, resource = id, error = %e, "cannot evaluate policies");
                        BTreeMap::new()
                    }
                }
            };
        let before = findings(baseline);
        let after = findings(observed);
        // A waived finding is not a regression.
        let at = now();
        let waived =
            |f: &holdfast_policy::Finding| self.env.waivers.iter().any(|w| w.covers(f, &at));
        Compliance {
            newly_failing: after
                .iter()
                .filter(|(rule, f)| !before.contains_key(*rule) && !waived(f))
                .map(|(rule, f)| RuleFinding {
                    rule: rule.clone(),
                    severity: format!("{:?}", f.severity).to_lowercase(),
                    message: f.message.clone(),
                })
                .collect(),
            newly_passing: before
                .keys()
                .filter(|rule| !after.contains_key(*rule))
                .cloned()
                .collect(),
        }
    }

    /// Partitions of the environment without a complete observation yet.
    fn missing_partitions(&self) -> Vec<String> {
        self.env
            .partitions()
            .into_iter()
            .filter(|k| !self.observed.contains_key(k))
            .map(|(r, t)| format!("{r}/{t}"))
            .collect()
    }

    /// Answers on-demand scans and runs the scheduled one when due, over
    /// the latest complete snapshot (the latest complete observation of
    /// every partition; a partition whose last collection failed keeps its
    /// previous one).
    async fn maybe_scan(&mut self) {
        let missing = self.missing_partitions();
        if !self.pending_scans.is_empty() {
            if missing.is_empty() {
                let by = self.pending_scans[0].1.clone();
                let result = self.run_scan("on demand", &by).await;
                for (reply, _, _) in self.pending_scans.drain(..) {
                    let _ = reply.send(result.clone());
                }
                return;
            }
            let now = Instant::now();
            let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_scans)
                .into_iter()
                .partition(|(_, _, deadline)| *deadline <= now);
            self.pending_scans = waiting;
            for (reply, _, _) in expired {
                let _ = reply.send(Err(tonic::Status::unavailable(format!(
                    "no complete snapshot of {} within {SCAN_WAIT:?} (is the agent of account {} connected and able to read them?); nothing was scanned",
                    missing.join(", "),
                    self.env.account
                ))));
            }
            return;
        }
        let interval = self.env.compliance.scan_interval_seconds;
        if interval == 0 || !missing.is_empty() {
            return;
        }
        if self.scan_retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        if let Err(e) = self.load_last_scan().await {
            tracing::warn!(env = %self.env.name, error = %e, "cannot read the latest scan");
            self.scan_retry_at = Some(Instant::now() + SCAN_RETRY);
            return;
        }
        let due = match self.last_scan.as_ref().and_then(Option::as_ref) {
            None => true,
            Some(last) => {
                time::OffsetDateTime::now_utc() - last.at
                    >= time::Duration::seconds(interval.min(i64::MAX as u64) as i64)
            }
        };
        if due {
            let by = format!("controller:{}", self.hub.controller_id);
            if let Err(e) = self.run_scan("schedule", &by).await {
                tracing::warn!(env = %self.env.name, error = %e.message(), "scheduled compliance scan failed");
            }
        }
    }

    /// Reads the latest stored scan once (its id, time and failing
    /// findings), for the schedule and for comparing the next scan.
    async fn load_last_scan(&mut self) -> Result<(), Error> {
        if self.last_scan.is_some() {
            return Ok(());
        }
        let latest = self.hub.records.get_scan(&self.env.name, 0).await?;
        self.last_scan = Some(latest.map(|s| {
            LastScan {
                id: s.id,
                at: time::OffsetDateTime::parse(
                    &s.at,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                failing: s.failing(),
            }
        }));
        Ok(())
    }

    /// Runs one scan, stores it (with its audit entry and, for new failing
    /// findings, a notice) and prunes history beyond the environment's
    /// limit.
    async fn run_scan(
        &mut self,
        trigger: &str,
        by: &str,
    ) -> Result<holdfast_policy::report::Scan, tonic::Status> {
        self.load_last_scan().await.map_err(tonic::Status::from)?;
        let last = self.last_scan.as_ref().and_then(Option::as_ref);
        let id = last.map_or(1, |l| l.id + 1);
        let previous = last.map(|l| l.failing.clone());
        let snapshot: Vec<_> = self
            .env
            .partitions()
            .into_iter()
            .filter_map(|k| {
                let resources = self.observed.get(&k)?.clone();
                Some((
                    holdfast_policy::report::SnapshotPart {
                        region: k.0.clone(),
                        resource_type: k.1.clone(),
                        collected_at: self.observed_at.get(&k).cloned().unwrap_or_default(),
                        resources: resources.len() as u32,
                    },
                    resources,
                ))
            })
            .collect();
        let mut policies = self.hub.policies.lock().expect("policies lock").clone();
        let env = self.env.clone();
        let baseline_version = self.baseline.as_ref().map_or(0, |b| b.meta.version);
        let (trigger_s, by_s) = (trigger.to_string(), by.to_string());
        let scan = tokio::task::spawn_blocking(move || {
            crate::compliance::scan(
                &mut policies,
                crate::compliance::ScanInput {
                    id,
                    env: &env,
                    trigger: &trigger_s,
                    by: &by_s,
                    baseline_version,
                    snapshot: &snapshot,
                    previous: previous.as_ref(),
                    now: &now(),
                },
            )
        })
        .await
        .map_err(|e| tonic::Status::internal(format!("the scan task failed: {e}")))?;
        if let Err(e) = self.hub.records.put_scan(&scan, &self.fence, by).await {
            self.scan_retry_at = Some(Instant::now() + SCAN_RETRY);
            if matches!(e, Error::AlreadyExists(_)) {
                // Another writer got there: read the history again.
                self.last_scan = None;
            }
            self.write_failed(&e, "cannot store a compliance scan");
            return Err(e.into());
        }
        tracing::info!(env = %self.env.name, scan = scan.id, trigger, failed = scan.failed, waived = scan.waived,
            newly_failing = scan.newly_failing.len(), newly_passing = scan.newly_passing.len(), "compliance scan");
        self.scan_retry_at = None;
        self.last_scan = Some(Some(LastScan {
            id: scan.id,
            at: time::OffsetDateTime::now_utc(),
            failing: scan.failing(),
        }));
        let keep = self.env.compliance.keep_scans.max(1) as usize;
        let actor = format!("controller:{}", self.hub.controller_id);
        if let Err(e) = self
            .hub
            .records
            .prune_scans(&self.env.name, keep, &self.fence, &actor)
            .await
        {
            self.write_failed(&e, "cannot prune compliance history");
        }
        Ok(scan)
    }

    async fn save_drift(&mut self, rec: DriftRecord, what: &str) -> bool {
        match self.hub.records.put_drift(&rec, &self.fence, what).await {
            Ok(()) => {
                tracing::info!(env = %self.env.name, resource = %rec.resource.id, kind = rec.kind.as_str(),
                    changes = rec.changes.len(), drift = %rec.id, "{what}");
                self.open.insert(res_key(&rec.resource), rec);
                true
            }
            Err(e) => {
                self.write_failed(&e, "cannot record drift; retried on the next collection");
                false
            }
        }
    }

    /// Journals a remediation, then sends it to the agent.
    async fn enforce(
        &mut self,
        rk: ResKey,
        mut drift: DriftRecord,
        d: &Drift,
        desired: &serde_json::Value,
        version: u64,
    ) {
        if self
            .inflight
            .values()
            .any(|(r, _)| res_key(&r.resource) == rk)
        {
            return;
        }
        // Removed: nothing observed (the resource is to be recreated).
        let observed = d
            .observed
            .clone()
            .unwrap_or_else(|| Arc::new(serde_json::Value::Null));
        let held = if let Some(note) = crate::gates::type_not_enforced(&self.env.safety, &rk.1) {
            Some(note)
        } else if let Some(p) = self.env.paused(&rk.1, &rk.2, &now()) {
            Some(crate::gates::paused(p))
        } else if let Some(note) = crate::gates::flapping(
            &self.env.safety,
            self.reverts.get(&rk).map_or(&[][..], Vec::as_slice),
            time::OffsetDateTime::now_utc(),
        ) {
            Some(note)
        } else if !self.budget_left() {
            self.deferred = true;
            Some(crate::gates::rate_limited(&self.env.safety))
        } else {
            None
        };
        if let Some(note) = held {
            if drift.note.as_deref() != Some(note.as_str()) {
                tracing::warn!(env = %self.env.name, resource = %rk.2, %note, "enforcement held back");
                drift.note = Some(note);
                self.save_drift(drift, "enforcement held back").await;
            }
            return;
        }
        let hash = d.observed_hash.map(|h| h.to_hex()).unwrap_or_default();
        if let Some((h, at)) = self.attempts.get(&rk) {
            if *h == hash && at.elapsed() < RETRY_AFTER {
                return;
            }
        }
        let planned = if desired.is_null() {
            holdfast_core::plan_lifecycle(&rk.1, holdfast_core::Lifecycle::Delete, &observed)
        } else if observed.is_null() {
            holdfast_core::plan_lifecycle(&rk.1, holdfast_core::Lifecycle::Recreate, desired)
        } else {
            plan_remediation(&rk.1, desired, &observed)
        };
        let planned = match planned {
            Ok(p) => p,
            Err(PlanError::Unenforceable(reason)) => {
                let note = format!("unenforceable: {reason}");
                if drift.note.as_deref() != Some(note.as_str()) {
                    drift.note = Some(note);
                    self.save_drift(drift, "drift is unenforceable").await;
                }
                return;
            }
            Err(e) => {
                tracing::error!(env = %self.env.name, resource = %rk.2, error = %e, "cannot plan remediation");
                return;
            }
        };
        if planned.is_empty() {
            return;
        }
        if drift.note.is_some() {
            drift.note = None;
            self.save_drift(drift.clone(), "no longer held back; enforcing")
                .await;
        }
        let at = now();
        let mut rec = RemediationRecord {
            id: new_id(),
            env: self.env.name.clone(),
            resource: drift.resource.clone(),
            drift_id: drift.id.clone(),
            baseline_version: version,
            status: RemediationStatus::Pending,
            planned_actions: planned.iter().map(|a| a.summary.clone()).collect(),
            actions: Vec::new(),
            journal: Vec::new(),
            created_at: at.clone(),
            updated_at: at,
            desired: desired.clone(),
            expected: (*observed).clone(),
            expected_hash: hash.clone(),
            decided_by: self.hub.controller_id.clone(),
        };
        rec.step(
            RemediationStatus::Pending,
            "decided",
            format!(
                "restore baseline v{version}: {}",
                rec.planned_actions.join("; ")
            ),
        );
        // Invariant 3: journaled before it is sent.
        if let Err(e) = self.hub.records.put_remediation(&rec, &self.fence).await {
            self.write_failed(&e, "cannot journal remediation; not sent");
            return;
        }
        self.attempts
            .insert(rk.clone(), (hash.clone(), Instant::now()));
        self.sent.push_back(Instant::now());
        let msg = controller_message::Msg::Remediation(Remediation {
            remediation_id: rec.id.clone(),
            resource: Some(WireRef {
                resource_type: rk.1.clone(),
                id: rk.2.clone(),
                account_id: self.env.account.clone(),
                region: rk.0.clone(),
            }),
            desired_json: holdfast_core::canonical_bytes(desired),
            expected_json: holdfast_core::canonical_bytes(&observed),
            expected_hash: d
                .observed_hash
                .unwrap_or_else(|| holdfast_core::Hash::of(&observed))
                .0
                .to_vec(),
        });
        match self.hub.send_to_agent(&self.env.account, msg).await {
            Ok(()) => {
                rec.step(RemediationStatus::Sent, "sent", "sent to the agent");
                tracing::info!(env = %self.env.name, resource = %rk.2, remediation = %rec.id, "remediation sent");
                self.journal(&rec, "cannot journal the sent step").await;
                self.inflight
                    .insert(rec.id.clone(), (rec, Instant::now() + OUTCOME_TIMEOUT));
            }
            Err(e) => {
                rec.step(
                    RemediationStatus::Abandoned,
                    "abandoned",
                    format!("not sent: {e}"),
                );
                self.journal(&rec, "cannot journal the abandoned step")
                    .await;
            }
        }
    }

    async fn on_result(&mut self, result: &RemediationResult) {
        let mut rec = match self.inflight.remove(&result.remediation_id) {
            Some((rec, _)) => rec,
            // A late outcome (re-sent by the agent after a reconnect) of a
            // remediation this environment journaled and gave up on.
            None => match self
                .hub
                .records
                .get_remediation(&self.env.name, &result.remediation_id)
                .await
            {
                Ok(Some(r)) if r.status == RemediationStatus::Abandoned => r,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(env = %self.env.name, error = %e, "cannot look up a remediation outcome's record");
                    return;
                }
            },
        };
        let outcome =
            RemediationOutcome::try_from(result.outcome).unwrap_or(RemediationOutcome::Unspecified);
        let status = match outcome {
            RemediationOutcome::Applied => RemediationStatus::Applied,
            RemediationOutcome::Conflict => RemediationStatus::Conflict,
            RemediationOutcome::Noop => RemediationStatus::Noop,
            RemediationOutcome::Failed | RemediationOutcome::Unspecified => {
                RemediationStatus::Failed
            }
        };
        rec.actions = result.actions.clone();
        rec.step(status, outcome.label(), result.message.clone());
        if status == RemediationStatus::Applied {
            // The controller checks the agent's re-read itself.
            let after: Option<serde_json::Value> =
                serde_json::from_slice(&result.observed_after_json).ok();
            match after {
                Some(after)
                    if holdfast_core::Hash::of(&after) == holdfast_core::Hash::of(&rec.desired) =>
                {
                    rec.step(
                        RemediationStatus::Applied,
                        "verified",
                        format!("the re-read equals baseline v{}", rec.baseline_version),
                    );
                }
                Some(after) => {
                    let paths: Vec<String> = holdfast_core::diff_values(&rec.desired, &after)
                        .into_iter()
                        .map(|c| c.path)
                        .collect();
                    rec.step(
                        RemediationStatus::Failed,
                        "failed",
                        format!(
                            "the re-read still differs from the baseline at {}",
                            paths.join(", ")
                        ),
                    );
                }
                None => rec.step(
                    RemediationStatus::Failed,
                    "failed",
                    "the agent sent no re-read to verify against the baseline",
                ),
            }
        }
        if rec.status == RemediationStatus::Applied {
            self.reverts
                .entry(res_key(&rec.resource))
                .or_default()
                .push(rec.created_at.clone());
        }
        tracing::info!(env = %self.env.name, resource = %rec.resource.id, remediation = %rec.id,
            outcome = outcome.label(), message = %result.message, "remediation outcome");
        self.journal(&rec, "cannot journal the remediation outcome")
            .await;
        // Observe the result promptly rather than at the next interval.
        if let Err(e) = self
            .hub
            .request_collection(
                &self.env.account,
                vec![rec.resource.region.clone()],
                vec![rec.resource.resource_type.clone()],
            )
            .await
        {
            tracing::warn!(env = %self.env.name, error = %e, "cannot request a confirming collection");
        }
    }

    async fn expire_inflight(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .inflight
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((mut rec, _)) = self.inflight.remove(&id) {
                rec.step(
                    RemediationStatus::Abandoned,
                    "abandoned",
                    "no outcome from the agent in time; the next collection decides again",
                );
                self.journal(&rec, "cannot journal the abandoned step")
                    .await;
            }
        }
    }

    /// Writes a later step of a remediation's journal. A write the store
    /// could not take (unreachable, leader changed) is kept and retried
    /// every second, newest version per remediation, so an outcome is never
    /// lost to a passing store error; a fenced one stops the decider.
    async fn journal(&mut self, rec: &RemediationRecord, what: &str) {
        self.unjournaled.retain(|r| r.id != rec.id);
        if let Err(e) = self.hub.records.put_remediation(rec, &self.fence).await {
            self.write_failed(&e, what);
            if !matches!(e, Error::Fenced(_)) {
                self.unjournaled.push(rec.clone());
            }
        }
    }

    async fn flush_journal(&mut self) {
        for rec in std::mem::take(&mut self.unjournaled) {
            self.journal(&rec, "cannot journal a remediation step; retrying")
                .await;
        }
    }

    /// Logs a failed write; a fenced one stops the decider.
    fn write_failed(&mut self, e: &Error, what: &str) {
        if matches!(e, Error::Fenced(_)) {
            tracing::warn!(env = %self.env.name, error = %e, "{what}: this replica no longer owns the account");
            self.fenced = true;
        } else {
            tracing::error!(env = %self.env.name, error = %e, "{what}");
        }
    }
}

/// A resource's attributes in a baseline partition.
fn baseline_attrs<'a>(base: &'a [ObservedResource], id: &str) -> Option<&'a serde_json::Value> {
    base.binary_search_by(|b| b.id.as_str().cmp(id))
        .ok()
        .map(|i| base[i].attributes.as_ref())
}

fn res_key(r: &ResourceRef) -> ResKey {
    (r.region.clone(), r.resource_type.clone(), r.id.clone())
}
