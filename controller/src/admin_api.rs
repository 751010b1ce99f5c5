//! `AdminService`: environments, baselines, drift, enforcement and the
//! remediation journal. Every call validates its input and names the field
//! that was wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::admin::v1::admin_service_server::AdminService;
use holdfast_proto::admin::v1::{self as admin, create_baseline_progress::Event};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert::{self, env_to_wire};
use crate::error::Error;
use crate::fleet;
use crate::hub::Hub;
use crate::records::{now, DriftStatus, Environment, Mode};

const DEFAULT_BASELINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Set on calls one replica forwards to another, so they are never
/// forwarded again.
const FORWARDED: &str = "x-holdfast-forwarded";

fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED)
}

async fn replica_client(
    url: &str,
) -> Result<
    holdfast_proto::admin::v1::admin_service_client::AdminServiceClient<tonic::transport::Channel>,
    Error,
> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::Internal(format!("bad replica URL {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        // A paused or partitioned replica accepts connections but never
        // answers: pings notice it on relayed streams.
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach replica {url}: {e}")))?;
    Ok(holdfast_proto::admin::v1::admin_service_client::AdminServiceClient::new(channel))
}

fn forwarded<T>(msg: T, actor: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    if let Ok(v) = actor.parse() {
        req.metadata_mut().insert(ACTOR, v);
    }
    req
}

/// Who makes an admin call: the `x-holdfast-actor` the client sends
/// (the CLI sends `--actor`, `$HOLDFAST_ACTOR` or `user@host`). Recorded with
/// pauses and baselines; mTLS identities will replace it.
const ACTOR: &str = "x-holdfast-actor";

fn actor<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(ACTOR)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().chars().take(128).collect::<String>())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The longest pause allowed: a pause must end, and a forgotten one should
/// not outlive a sprint.
const MAX_PAUSE: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long a replica waits for another to answer a forwarded read: a
/// paused owner must not hang admin calls made elsewhere.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

async fn forward_get(url: &str, name: &str) -> Result<admin::Environment, Error> {
    let call = async {
        let mut client = replica_client(url).await?;
        let req = forwarded(
            admin::GetEnvironmentRequest {
                name: name.to_string(),
            },
            "",
        );
        Ok(client
            .get_environment(req)
            .await
            .map_err(|s| Error::Unavailable(s.message().to_string()))?
            .into_inner())
    };
    tokio::time::timeout(FORWARD_TIMEOUT, call)
        .await
        .map_err(|_| {
            Error::Unavailable(format!(
                "replica {url} did not answer within {FORWARD_TIMEOUT:?}"
            ))
        })?
}

/// Runs a baseline creation on the replica that holds the agent stream and
/// relays its progress.
async fn forward_baseline(
    url: &str,
    r: admin::CreateBaselineRequest,
    actor: &str,
) -> Result<Response<ReceiverStream<Result<admin::CreateBaselineProgress, Status>>>, Status> {
    let mut client = replica_client(url).await?;
    let mut remote = client
        .create_baseline(forwarded(r, actor))
        .await?
        .into_inner();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            match remote.message().await {
                Ok(Some(m)) => {
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(s) => {
                    let _ = tx.send(Err(s)).await;
                    return;
                }
            }
        }
    });
    Ok(Response::new(ReceiverStream::new(rx)))
}

pub struct AdminApi {
    pub hub: Arc<Hub>,
}

/// The longest a waiver may run: an exception must be looked at again.
const MAX_WAIVER_DAYS: i64 = 366;

/// `--expires`: RFC 3339, or a date meaning the end of that day (UTC).
fn parse_expiry(s: &str) -> Result<time::OffsetDateTime, Error> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "expires: {s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"
            ))
        })?;
    Ok(date.next_day().unwrap_or(date).midnight().assume_utc())
}

/// A compliance gate's severity (`require_compliant`); None when empty.
fn gate_severity(s: &str) -> Result<Option<holdfast_policy::Severity>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    holdfast_policy::Severity::parse(s)
        .map(Some)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "require_compliant: {s:?} is not a severity (low, medium, high, critical)"
            ))
        })
}

/// Refuses a snapshot with unwaived findings at or above `min`.
async fn compliance_gate(
    hub: &Arc<Hub>,
    env: &Environment,
    parts: &BTreeMap<(String, String), Arc<Vec<holdfast_core::ObservedResource>>>,
    min: holdfast_policy::Severity,
    what: &str,
) -> Result<(), Error> {
    let mut policies = hub.policies.lock().expect("policies lock").clone();
    let (env2, parts) = (env.clone(), parts.clone());
    let verdict = tokio::task::spawn_blocking(move || {
        crate::compliance::gate(&mut policies, &env2, &parts, min, &now())
    })
    .await
    .map_err(|e| Error::Internal(format!("the compliance gate failed: {e}")))?;
    match verdict {
        Ok(blocking) if blocking.is_empty() => Ok(()),
        Ok(blocking) => {
            const SHOWN: usize = 50;
            let more = blocking.len().saturating_sub(SHOWN);
            let mut list = blocking
                .into_iter()
                .take(SHOWN)
                .collect::<Vec<_>>()
                .join("; ");
            if more > 0 {
                list.push_str(&format!("; and {more} more"));
            }
            Err(Error::FailedPrecondition(format!(
                "{what}: the snapshot of {:?} has unwaived findings at or above {}: {list}",
                env.name,
                min.as_str()
            )))
        }
        Err(errors) => Err(Error::FailedPrecondition(format!(
            "{what}: rules could not judge the snapshot of {:?}: {}",
            env.name,
            errors.join("; ")
        ))),
    }
}

/// Runs an on-demand scan on the replica that decides for the environment.
async fn forward_scan(
    url: &str,
    name: &str,
    actor: &str,
) -> Result<admin::ComplianceReport, Status> {
    let mut client = replica_client(url).await?;
    Ok(client
        .scan_compliance(forwarded(
            admin::ScanComplianceRequest {
                name: name.to_string(),
            },
            actor,
        ))
        .await?
        .into_inner())
}

fn validate_env_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid environment name {name:?}: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

fn validate_region(region: &str) -> Result<(), Error> {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid region {region:?}: expected an AWS region such as us-east-1"
        )))
    }
}

impl AdminApi {
    async fn env(&self, name: &str) -> Result<(Environment, i64), Error> {
        validate_env_name(name)?;
        self.hub
            .records
            .get_env(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("environment {name:?} not found")))
    }

    /// The environment as stored, with its live state: whether an agent is
    /// connected to any replica, open drift, and — with `live` — the
    /// partitions as seen by the replica that decides for it.
    async fn env_wire(&self, env: &Environment, live: bool) -> Result<admin::Environment, Error> {
        let (current, _) = self.hub.records.current_version(&env.name).await?;
        let owner = fleet::owner_of(self.hub.store.as_ref(), &env.account).await?;
        let open = self
            .hub
            .records
            .list_drift(&env.name)
            .await?
            .iter()
            .filter(|d| d.status == DriftStatus::Open)
            .count() as u32;
        let mut view = self.hub.env_view(&env.name).unwrap_or_default();
        view.open_drift = open;
        let mut wire = env_to_wire(
            env,
            current,
            owner.is_some() || self.hub.agent_connected(&env.account),
            &view,
        );
        wire.decider = owner
            .as_ref()
            .map(|o| o.replica.clone())
            .unwrap_or_default();
        if live && self.hub.env_view(&env.name).is_none() {
            if let Some(owner) = owner.filter(|o| o.replica != self.hub.controller_id) {
                match forward_get(&owner.url, &env.name).await {
                    Ok(remote) => wire.partitions = remote.partitions,
                    Err(e) => {
                        tracing::warn!(env = %env.name, owner = %owner.replica, error = %e, "cannot read partitions from the owning replica")
                    }
                }
            }
        }
        Ok(wire)
    }
}

impl AdminApi {
    /// Applies `f` to an environment and stores it by compare-and-swap,
    /// retried on a concurrent change of the same environment.
    /// `f` returns the detail recorded in the audit chain with `action` by
    /// `actor`.
    async fn change_env(
        &self,
        name: &str,
        actor: &str,
        action: &str,
        f: impl Fn(&mut Environment) -> Result<serde_json::Value, Error>,
    ) -> Result<Environment, Error> {
        for _ in 0..5 {
            let (mut env, revision) = self.env(name).await?;
            let detail = f(&mut env)?;
            if self
                .hub
                .records
                .update_env(&env, revision, actor, action, detail)
                .await?
            {
                return Ok(env);
            }
        }
        Err(Error::Aborted(format!(
            "environment {name:?} kept changing; try again"
        )))
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_environment(
        &self,
        request: Request<admin::CreateEnvironmentRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        validate_env_name(&r.name)?;
        let account = r.account_id.trim();
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::InvalidArgument(format!(
                "invalid account {:?}: expected a 12-digit AWS account id",
                r.account_id
            ))
            .into());
        }
        if r.regions.is_empty() {
            return Err(
                Error::InvalidArgument("regions: at least one region is required".into()).into(),
            );
        }
        let regions: BTreeSet<String> = r.regions.iter().map(|s| s.trim().to_string()).collect();
        for region in &regions {
            validate_region(region)?;
        }
        let types: BTreeSet<String> = if r.resource_types.is_empty() {
            holdfast_core::types::supported_type_names()
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            r.resource_types
                .iter()
                .map(|s| s.trim().to_string())
                .collect()
        };
        for t in &types {
            if holdfast_core::type_info(t).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "unsupported resource type {t:?}; supported: {}",
                    holdfast_core::types::supported_type_names().join(", ")
                ))
                .into());
            }
        }
        let mode = convert::mode_from_wire(r.enforcement)
            .map_err(Error::InvalidArgument)?
            .unwrap_or(Mode::Notify);
        let env = Environment {
            name: r.name.clone(),
            account: account.to_string(),
            regions: regions.into_iter().collect(),
            resource_types: types.into_iter().collect(),
            mode,
            created_at: now(),
            pauses: Vec::new(),
            safety: crate::records::Safety::default(),
            webhooks: Vec::new(),
            compliance: crate::compliance::Settings::default(),
            waivers: Vec::new(),
        };
        self.hub.records.create_env(&env, &by).await?;
        tracing::info!(env = %env.name, account = %env.account, "environment created");
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn list_environments(
        &self,
        _request: Request<admin::ListEnvironmentsRequest>,
    ) -> Result<Response<admin::ListEnvironmentsResponse>, Status> {
        let mut environments = Vec::new();
        for env in self.hub.records.list_envs().await? {
            environments.push(self.env_wire(&env, false).await?);
        }
        Ok(Response::new(admin::ListEnvironmentsResponse {
            environments,
        }))
    }

    async fn get_environment(
        &self,
        request: Request<admin::GetEnvironmentRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let live = !is_forwarded(&request);
        let (env, _) = self.env(&request.get_ref().name).await?;
        Ok(Response::new(self.env_wire(&env, live).await?))
    }

    async fn set_enforcement(
        &self,
        request: Request<admin::SetEnforcementRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let mode = convert::mode_from_wire(r.mode)
            .map_err(Error::InvalidArgument)?
            .ok_or_else(|| {
                Error::InvalidArgument("mode: one of off, notify, enforce is required".into())
            })?;
        let env = self
            .change_env(&r.name, &by, "enforcement.set", |env| {
                let old = env.mode;
                env.mode = mode;
                tracing::info!(env = %env.name, from = old.as_str(), to = mode.as_str(), "enforcement mode set");
                Ok(serde_json::json!({"from": old.as_str(), "to": mode.as_str()}))
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn pause_enforcement(
        &self,
        request: Request<admin::PauseEnforcementRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let duration = Duration::from_secs(u64::from(r.duration_seconds));
        if duration.is_zero() {
            return Err(Error::InvalidArgument(
                "duration: a pause needs an expiry of at least 1s".into(),
            )
            .into());
        }
        if duration > MAX_PAUSE {
            return Err(Error::InvalidArgument(format!(
                "duration: at most {} days, got {}s",
                MAX_PAUSE.as_secs() / 86400,
                r.duration_seconds
            ))
            .into());
        }
        if r.reason.trim().is_empty() {
            return Err(
                Error::InvalidArgument("reason: say why enforcement is paused".into()).into(),
            );
        }
        let env = self
            .change_env(&r.name, &by, "enforcement.pause", |env| {
                for t in &r.resource_types {
                    if !env.resource_types.contains(t) {
                        return Err(Error::InvalidArgument(format!(
                            "resource type {t:?} is not enforced in {:?} (it has {})",
                            env.name,
                            env.resource_types.join(", ")
                        )));
                    }
                }
                let at = now();
                let until = crate::records::format_time(time::OffsetDateTime::now_utc() + duration);
                env.pauses.retain(|p| p.active(&at));
                env.pauses.push(crate::records::Pause {
                    id: crate::records::new_id(),
                    until: until.clone(),
                    reason: r.reason.clone(),
                    by: by.clone(),
                    resource_types: r.resource_types.clone(),
                    resources: r.resources.clone(),
                    created_at: at,
                });
                tracing::info!(env = %env.name, %until, by = %by, reason = %r.reason,
                    types = ?r.resource_types, resources = ?r.resources, "enforcement paused");
                Ok(serde_json::json!({"until": until, "reason": r.reason, "resource_types": r.resource_types, "resources": r.resources}))
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn resume_enforcement(
        &self,
        request: Request<admin::ResumeEnforcementRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let env = self
            .change_env(&r.name, &by, "enforcement.resume", |env| {
                let at = now();
                let before = env.active_pauses(&at).len();
                if r.pause_id.is_empty() {
                    env.pauses.clear();
                } else {
                    if !env
                        .pauses
                        .iter()
                        .any(|p| p.id == r.pause_id && p.active(&at))
                    {
                        return Err(Error::NotFound(format!(
                            "environment {:?} has no pause {:?} in force",
                            env.name, r.pause_id
                        )));
                    }
                    env.pauses.retain(|p| p.id != r.pause_id && p.active(&at));
                }
                let ended = before - env.active_pauses(&at).len();
                tracing::info!(env = %env.name, by = %by, ended, "enforcement resumed");
                Ok(serde_json::json!({"pause": r.pause_id, "ended": ended}))
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn add_webhook(
        &self,
        request: Request<admin::AddWebhookRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let format = match r.format.as_str() {
            "" | "json" => "json",
            "slack" => "slack",
            other => {
                return Err(Error::InvalidArgument(format!(
                    "format: expected json or slack, got {other:?}"
                ))
                .into())
            }
        };
        match r.url.parse::<http::Uri>() {
            Ok(u)
                if matches!(u.scheme_str(), Some("http") | Some("https")) && u.host().is_some() => {
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "url: expected an http(s) URL, got {:?}",
                    r.url
                ))
                .into())
            }
        }
        let start_after = self.hub.records.audit_seq(&r.name).await?;
        let env = self
            .change_env(&r.name, &by, "notify.add", |env| {
                let id = crate::records::new_id();
                env.webhooks.push(crate::records::Webhook {
                    id: id.clone(),
                    url: r.url.clone(),
                    format: format.to_string(),
                    by: by.clone(),
                    created_at: now(),
                    start_after,
                });
                // The URL may carry a secret (Slack's does): not in the record.
                Ok(serde_json::json!({"webhook": id, "format": format}))
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn remove_webhook(
        &self,
        request: Request<admin::RemoveWebhookRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let env = self
            .change_env(&r.name, &by, "notify.remove", |env| {
                let before = env.webhooks.len();
                env.webhooks.retain(|w| w.id != r.id);
                if env.webhooks.len() == before {
                    return Err(Error::NotFound(format!(
                        "environment {:?} has no webhook {:?}",
                        env.name, r.id
                    )));
                }
                Ok(serde_json::json!({"webhook": r.id}))
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn set_safety(
        &self,
        request: Request<admin::SetSafetyRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        if r.max_remediations_per_minute == Some(0) {
            return Err(Error::InvalidArgument(
                "max_remediations_per_minute: at least 1 (use enforcement mode notify to stop remediating)".into(),
            )
            .into());
        }
        if r.flap_window_seconds == Some(0) {
            return Err(Error::InvalidArgument(
                "flap_window_seconds: at least 1 (set flap_threshold 0 to turn the breaker off)"
                    .into(),
            )
            .into());
        }
        let env = self
            .change_env(&r.name, &by, "safety.set", |env| {
                let s = &mut env.safety;
                if let Some(v) = r.max_remediations_per_minute {
                    s.max_remediations_per_minute = v;
                }
                if let Some(v) = r.flap_threshold {
                    s.flap_threshold = v;
                }
                if let Some(v) = r.flap_window_seconds {
                    s.flap_window_seconds = v;
                }
                if let Some(v) = r.delete_added {
                    s.delete_added = v;
                }
                if let Some(v) = r.recreate_removed {
                    s.recreate_removed = v;
                }
                if r.set_enforce_types {
                    let types: Vec<String> = r
                        .enforce_types
                        .iter()
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect();
                    for t in &types {
                        if !env.resource_types.contains(t) {
                            return Err(Error::InvalidArgument(format!(
                                "enforce_types: {t:?} is not a resource type of {:?} (it has {})",
                                env.name,
                                env.resource_types.join(", ")
                            )));
                        }
                    }
                    env.safety.enforce_types = types;
                }
                if r.set_ignore_paths {
                    let paths: Vec<String> = r
                        .ignore_paths
                        .iter()
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect();
                    holdfast_core::paths::Ignore::new(&paths)
                        .map_err(|e| Error::InvalidArgument(format!("ignore_paths: {e}")))?;
                    env.safety.ignore_paths = paths;
                }
                tracing::info!(env = %env.name, by = %by, safety = ?env.safety, "safety gates set");
                Ok(serde_json::to_value(&env.safety).unwrap_or_default())
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn plan_enforcement(
        &self,
        request: Request<admin::PlanEnforcementRequest>,
    ) -> Result<Response<admin::PlanEnforcementResponse>, Status> {
        let (env, _) = self.env(&request.get_ref().name).await?;
        let records = &self.hub.records;
        let (current, _) = records.current_version(&env.name).await?;
        let baseline = match current {
            0 => None,
            v => records.load_baseline(&env.name, v).await?,
        };
        let mut reverts: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
        for r in records.list_remediations(&env.name).await? {
            if r.status == crate::records::RemediationStatus::Applied {
                reverts
                    .entry((
                        r.resource.region.clone(),
                        r.resource.resource_type.clone(),
                        r.resource.id.clone(),
                    ))
                    .or_default()
                    .push(r.created_at.clone());
            }
        }
        let at = now();
        let ignore =
            holdfast_core::paths::Ignore::new(&env.safety.ignore_paths).map_err(Error::Internal)?;
        let mut drifts = records.list_drift(&env.name).await?;
        drifts.retain(|d| d.status == DriftStatus::Open);
        drifts.sort_by(|a, b| a.detected_at.cmp(&b.detected_at));
        let mut items = Vec::new();
        for d in drifts {
            let k = &d.resource;
            let desired = baseline.as_ref().and_then(|b| {
                let part = b.parts.get(&(k.region.clone(), k.resource_type.clone()))?;
                part.binary_search_by(|r| r.id.as_str().cmp(&k.id))
                    .ok()
                    .map(|i| part[i].attributes.clone())
            });
            let lifecycle = |op, attrs: &serde_json::Value| match holdfast_core::plan_lifecycle(
                &k.resource_type,
                op,
                attrs,
            ) {
                Ok(p) => (p.into_iter().map(|a| a.summary).collect(), None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let (actions, unplannable) = match (d.kind, &desired, &d.observed) {
                (holdfast_core::DriftKind::Added, _, Some(observed))
                    if env.safety.delete_added =>
                {
                    lifecycle(holdfast_core::Lifecycle::Delete, observed)
                }
                (holdfast_core::DriftKind::Added, _, _) => (
                    Vec::new(),
                    Some("added: reported, not deleted (env set --delete-added true allows it)".to_string()),
                ),
                (holdfast_core::DriftKind::Removed, Some(desired), _)
                    if env.safety.recreate_removed =>
                {
                    lifecycle(holdfast_core::Lifecycle::Recreate, desired)
                }
                (holdfast_core::DriftKind::Removed, _, _) => (
                    Vec::new(),
                    Some("removed: reported, not recreated (env set --recreate-removed true allows it)".to_string()),
                ),
                (_, Some(desired), Some(observed)) => {
                    let desired = ignore.keep_current(desired, observed);
                    match holdfast_core::plan_remediation(&k.resource_type, &desired, observed) {
                        Ok(p) => (p.into_iter().map(|a| a.summary).collect(), None),
                        Err(e) => (Vec::new(), Some(e.to_string())),
                    }
                }
                _ => (
                    Vec::new(),
                    Some(
                        "the drifted state was not recorded; it is planned at its next change"
                            .to_string(),
                    ),
                ),
            };
            let held = unplannable
                .or_else(|| {
                    (env.mode != Mode::Enforce).then(|| {
                        format!(
                            "enforcement mode is {}: nothing is changed",
                            env.mode.as_str()
                        )
                    })
                })
                .or_else(|| crate::gates::type_not_enforced(&env.safety, &k.resource_type))
                .or_else(|| {
                    env.paused(&k.resource_type, &k.id, &at)
                        .map(crate::gates::paused)
                })
                .or_else(|| {
                    crate::gates::flapping(
                        &env.safety,
                        reverts
                            .get(&(k.region.clone(), k.resource_type.clone(), k.id.clone()))
                            .map_or(&[][..], Vec::as_slice),
                        time::OffsetDateTime::now_utc(),
                    )
                });
            items.push(admin::PlannedRemediation {
                resource: Some(convert::key_to_wire(k)),
                drift_id: d.id.clone(),
                actions,
                held: held.unwrap_or_default(),
            });
        }
        Ok(Response::new(admin::PlanEnforcementResponse { items }))
    }

    type CreateBaselineStream = ReceiverStream<Result<admin::CreateBaselineProgress, Status>>;

    async fn create_baseline(
        &self,
        request: Request<admin::CreateBaselineRequest>,
    ) -> Result<Response<Self::CreateBaselineStream>, Status> {
        let forwarded = is_forwarded(&request);
        let by = actor(&request);
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        gate_severity(&r.require_compliant)?;
        if !self.hub.agent_connected(&env.account) {
            // The agent streams to another replica: that one collects.
            if !forwarded {
                if let Some(owner) = fleet::owner_of(self.hub.store.as_ref(), &env.account).await? {
                    if owner.replica != self.hub.controller_id {
                        return forward_baseline(&owner.url, r, &by).await;
                    }
                }
            }
            return Err(Error::FailedPrecondition(format!(
                "no agent is connected for account {} (environment {:?}); a baseline needs a fresh collection",
                env.account, env.name
            ))
            .into());
        }
        let timeout = match r.timeout_seconds {
            0 => DEFAULT_BASELINE_TIMEOUT,
            s => Duration::from_secs(u64::from(s)),
        };
        let (tx, rx) = mpsc::channel(64);
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let gate = gate_severity(&r.require_compliant).ok().flatten();
            let result = build_baseline(
                &hub,
                &env,
                NewBaseline {
                    reason: &r.reason,
                    by: &by,
                    candidate: r.candidate,
                    gate,
                    timeout,
                },
                &tx,
            )
            .await;
            let msg = result.map(|b| admin::CreateBaselineProgress {
                event: Some(Event::Baseline(b)),
            });
            let _ = tx.send(msg.map_err(Status::from)).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_baselines(
        &self,
        request: Request<admin::ListBaselinesRequest>,
    ) -> Result<Response<admin::ListBaselinesResponse>, Status> {
        let (env, _) = self.env(&request.get_ref().environment).await?;
        let (current, _) = self.hub.records.current_version(&env.name).await?;
        let baselines = self
            .hub
            .records
            .list_baseline_infos(&env.name)
            .await?
            .iter()
            .map(|m| convert::summary_to_wire(m, current))
            .collect();
        Ok(Response::new(admin::ListBaselinesResponse { baselines }))
    }

    async fn get_baseline(
        &self,
        request: Request<admin::GetBaselineRequest>,
    ) -> Result<Response<admin::Baseline>, Status> {
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        let (current, _) = self.hub.records.current_version(&env.name).await?;
        let version = if r.version == 0 { current } else { r.version };
        if version == 0 {
            return Err(
                Error::NotFound(format!("environment {:?} has no baseline yet", env.name)).into(),
            );
        }
        let baseline = self
            .hub
            .records
            .load_baseline(&env.name, version)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "environment {:?} has no baseline version {version}",
                    env.name
                ))
            })?;
        let mut resources = Vec::new();
        for ((region, rtype), part) in &baseline.parts {
            for res in part.iter() {
                resources.push(admin::BaselineResource {
                    resource: Some(admin::ResourceKey {
                        resource_type: rtype.clone(),
                        id: res.id.clone(),
                        account_id: env.account.clone(),
                        region: region.clone(),
                    }),
                    hash: res.hash.to_hex(),
                    attributes_json: res.attributes.to_string(),
                });
            }
        }
        let info = self
            .hub
            .records
            .baseline_info(&env.name, version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("baseline v{version} disappeared")))?;
        Ok(Response::new(admin::Baseline {
            summary: Some(convert::summary_to_wire(&info, current)),
            resources,
        }))
    }

    async fn approve_baseline(
        &self,
        request: Request<admin::ApproveBaselineRequest>,
    ) -> Result<Response<admin::BaselineSummary>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        if let Some(min) = gate_severity(&r.require_compliant)? {
            let b = self
                .hub
                .records
                .load_baseline(&env.name, r.version)
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "environment {:?} has no baseline version {}",
                        env.name, r.version
                    ))
                })?;
            compliance_gate(&self.hub, &env, &b.parts, min, "baseline not approved").await?;
        }
        let info = self
            .hub
            .records
            .approve_baseline(&env.name, r.version, &by, &r.reason)
            .await?;
        tracing::info!(env = %env.name, version = r.version, by = %by, "baseline approved");
        Ok(Response::new(convert::summary_to_wire(&info, r.version)))
    }

    async fn rollback_baseline(
        &self,
        request: Request<admin::RollbackBaselineRequest>,
    ) -> Result<Response<admin::BaselineSummary>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        let reason = if r.reason.is_empty() {
            format!("rollback to v{}", r.version)
        } else {
            r.reason.clone()
        };
        let meta = self
            .hub
            .records
            .rollback_baseline(&env.name, r.version, &by, &reason)
            .await?;
        tracing::info!(env = %env.name, from = r.version, version = meta.version, by = %by, "baseline rolled back");
        let info = crate::records::BaselineInfo {
            meta,
            approval: None,
        };
        Ok(Response::new(convert::summary_to_wire(
            &info,
            info.meta.version,
        )))
    }

    async fn diff_baselines(
        &self,
        request: Request<admin::DiffBaselinesRequest>,
    ) -> Result<Response<admin::DiffBaselinesResponse>, Status> {
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        let (current, _) = self.hub.records.current_version(&env.name).await?;
        let to = if r.to_version == 0 {
            current
        } else {
            r.to_version
        };
        if r.from_version == 0 || to == 0 {
            return Err(Error::InvalidArgument(
                "from_version and to_version: versions start at 1 (to_version 0 means current, and there is none yet)".into(),
            )
            .into());
        }
        let load = |v: u64| {
            let records = self.hub.records.clone();
            let name = env.name.clone();
            async move {
                records.load_baseline(&name, v).await?.ok_or_else(|| {
                    Error::NotFound(format!("environment {name:?} has no baseline version {v}"))
                })
            }
        };
        let (a, b) = (load(r.from_version).await?, load(to).await?);
        let keys: BTreeSet<&(String, String)> = a.parts.keys().chain(b.parts.keys()).collect();
        let empty = Arc::new(Vec::new());
        let mut diffs = Vec::new();
        for key in keys {
            let old = a.parts.get(key).unwrap_or(&empty);
            let new = b.parts.get(key).unwrap_or(&empty);
            for d in holdfast_core::diff_partition(old, new) {
                diffs.push(admin::ResourceDiff {
                    resource: Some(admin::ResourceKey {
                        resource_type: key.1.clone(),
                        id: d.id.clone(),
                        account_id: env.account.clone(),
                        region: key.0.clone(),
                    }),
                    kind: d.kind.as_str().to_string(),
                    changes: d.changes.iter().map(convert::change_to_wire).collect(),
                });
            }
        }
        Ok(Response::new(admin::DiffBaselinesResponse { diffs }))
    }

    async fn list_drift(
        &self,
        request: Request<admin::ListDriftRequest>,
    ) -> Result<Response<admin::ListDriftResponse>, Status> {
        let r = request.into_inner();
        let (env, _) = self.env(&r.environment).await?;
        let mut records = self.hub.records.list_drift(&env.name).await?;
        records.retain(|d| r.all || d.status == DriftStatus::Open);
        records.sort_by(|a, b| a.detected_at.cmp(&b.detected_at).then(a.id.cmp(&b.id)));
        Ok(Response::new(admin::ListDriftResponse {
            drift: records.iter().map(convert::drift_to_wire).collect(),
        }))
    }

    async fn list_audit(
        &self,
        request: Request<admin::ListAuditRequest>,
    ) -> Result<Response<admin::ListAuditResponse>, Status> {
        let (env, _) = self.env(&request.get_ref().environment).await?;
        let entries = self
            .hub
            .records
            .list_audit(&env.name)
            .await?
            .into_iter()
            .map(|e| admin::AuditEntry {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                detail_json: e.detail.to_string(),
                digest: e.digest,
                prev: e.prev,
                hash: e.hash,
            })
            .collect();
        Ok(Response::new(admin::ListAuditResponse { entries }))
    }

    async fn verify_audit(
        &self,
        request: Request<admin::VerifyAuditRequest>,
    ) -> Result<Response<admin::VerifyAuditResponse>, Status> {
        let r = request.into_inner();
        let names: Vec<String> = if r.environment.is_empty() {
            self.hub
                .records
                .list_envs()
                .await?
                .into_iter()
                .map(|e| e.name)
                .collect()
        } else {
            vec![self.env(&r.environment).await?.0.name]
        };
        let mut entries = 0u64;
        let mut problems = Vec::new();
        for name in &names {
            let (n, p) = self.hub.records.verify_audit(name).await?;
            entries += n as u64;
            problems.extend(p);
        }
        Ok(Response::new(admin::VerifyAuditResponse {
            entries,
            environments: names,
            problems,
        }))
    }

    async fn list_remediations(
        &self,
        request: Request<admin::ListRemediationsRequest>,
    ) -> Result<Response<admin::ListRemediationsResponse>, Status> {
        let (env, _) = self.env(&request.get_ref().environment).await?;
        let mut records = self.hub.records.list_remediations(&env.name).await?;
        records.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(Response::new(admin::ListRemediationsResponse {
            remediations: records.iter().map(convert::remediation_to_wire).collect(),
        }))
    }

    async fn set_compliance(
        &self,
        request: Request<admin::SetComplianceRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        if r.set_frameworks {
            for f in &r.frameworks {
                holdfast_policy::report::check_framework(f)
                    .map_err(|e| Error::InvalidArgument(format!("frameworks: {e}")))?;
            }
        }
        if r.keep_scans == Some(0) {
            return Err(Error::InvalidArgument("keep_scans: keep at least one scan".into()).into());
        }
        let env = self
            .change_env(&r.name, &by, "compliance.settings", |env| {
                let c = &mut env.compliance;
                if r.set_frameworks {
                    let mut f = r.frameworks.clone();
                    f.sort();
                    f.dedup();
                    c.frameworks = f;
                }
                if let Some(s) = r.scan_interval_seconds {
                    c.scan_interval_seconds = s;
                }
                if let Some(k) = r.keep_scans {
                    c.keep_scans = k;
                }
                Ok(serde_json::to_value(&*c).unwrap_or_default())
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }

    async fn scan_compliance(
        &self,
        request: Request<admin::ScanComplianceRequest>,
    ) -> Result<Response<admin::ComplianceReport>, Status> {
        let forwarded = is_forwarded(&request);
        let by = actor(&request);
        let (env, _) = self.env(&request.get_ref().name).await?;
        match self.hub.scan(&env.name, &by).await {
            Some(result) => {
                let scan = result?;
                tracing::info!(env = %env.name, scan = scan.id, by = %by, "on-demand compliance scan");
                Ok(Response::new(admin::ComplianceReport {
                    scan_json: serde_json::to_string(&scan)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                }))
            }
            None => {
                if !forwarded {
                    if let Some(owner) =
                        fleet::owner_of(self.hub.store.as_ref(), &env.account).await?
                    {
                        if owner.replica != self.hub.controller_id {
                            return Ok(Response::new(
                                forward_scan(&owner.url, &env.name, &by).await?,
                            ));
                        }
                    }
                }
                Err(Error::FailedPrecondition(format!(
                    "no controller decides for {:?} yet (no agent of account {} has connected): there is no snapshot to scan",
                    env.name, env.account
                ))
                .into())
            }
        }
    }

    async fn get_compliance_report(
        &self,
        request: Request<admin::GetComplianceReportRequest>,
    ) -> Result<Response<admin::ComplianceReport>, Status> {
        let r = request.into_inner();
        let (env, _) = self.env(&r.name).await?;
        if !r.framework.is_empty() {
            holdfast_policy::report::check_framework(&r.framework)
                .map_err(|e| Error::InvalidArgument(format!("framework: {e}")))?;
        }
        let scan = self
            .hub
            .records
            .get_scan(&env.name, r.scan)
            .await?
            .ok_or_else(|| {
                Error::NotFound(if r.scan == 0 {
                    format!(
                        "{:?} has not been scanned yet (holdfast compliance scan {})",
                        env.name, env.name
                    )
                } else {
                    format!(
                        "{:?} has no scan {} (pruned, or not run yet)",
                        env.name, r.scan
                    )
                })
            })?;
        let scan = if r.framework.is_empty() {
            scan
        } else {
            scan.for_framework(&r.framework)
                .map_err(Error::FailedPrecondition)?
        };
        Ok(Response::new(admin::ComplianceReport {
            scan_json: serde_json::to_string(&scan).map_err(|e| Error::Internal(e.to_string()))?,
        }))
    }

    async fn list_compliance_scans(
        &self,
        request: Request<admin::ListComplianceScansRequest>,
    ) -> Result<Response<admin::ListComplianceScansResponse>, Status> {
        let (env, _) = self.env(&request.get_ref().name).await?;
        let scans = self.hub.records.list_scans(&env.name).await?;
        Ok(Response::new(admin::ListComplianceScansResponse {
            scans_json: scans
                .iter()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .collect(),
        }))
    }

    async fn add_waiver(
        &self,
        request: Request<admin::AddWaiverRequest>,
    ) -> Result<Response<admin::Waiver>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let known = {
            let p = self.hub.policies.lock().expect("policies lock");
            p.rules().iter().any(|x| x.id == r.rule)
        };
        if !known {
            return Err(Error::InvalidArgument(format!(
                "rule: no rule {:?} is loaded (holdfast policy list shows the rules)",
                r.rule
            ))
            .into());
        }
        if r.resource.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "resource: give a resource id or pattern (* for every resource)".into(),
            )
            .into());
        }
        if r.reason.trim().is_empty() {
            return Err(
                Error::InvalidArgument("reason: say why the finding is accepted".into()).into(),
            );
        }
        let expires = parse_expiry(&r.expires)?;
        let now_t = time::OffsetDateTime::now_utc();
        if expires <= now_t {
            return Err(
                Error::InvalidArgument(format!("expires: {} is in the past", r.expires)).into(),
            );
        }
        if expires - now_t > time::Duration::days(MAX_WAIVER_DAYS) {
            return Err(Error::InvalidArgument(format!(
                "expires: at most {MAX_WAIVER_DAYS} days ahead, got {}",
                r.expires
            ))
            .into());
        }
        let waiver = holdfast_policy::report::Waiver {
            id: crate::records::new_id(),
            rule: r.rule.clone(),
            resource: r.resource.trim().to_string(),
            reason: r.reason.trim().to_string(),
            expires: crate::records::format_time(expires),
            by: by.clone(),
            created_at: now(),
        };
        let w = waiver.clone();
        self.change_env(&r.name, &by, "waiver.add", |env| {
            let at = now();
            env.waivers.retain(|w| w.expires > at);
            env.waivers.push(w.clone());
            Ok(serde_json::to_value(&w).unwrap_or_default())
        })
        .await?;
        tracing::info!(env = %r.name, waiver = %waiver.id, rule = %waiver.rule, resource = %waiver.resource, expires = %waiver.expires, by = %by, "waiver added");
        Ok(Response::new(convert::waiver_to_wire(&waiver)))
    }

    async fn list_waivers(
        &self,
        request: Request<admin::ListWaiversRequest>,
    ) -> Result<Response<admin::ListWaiversResponse>, Status> {
        let r = request.into_inner();
        let (env, _) = self.env(&r.name).await?;
        let at = now();
        Ok(Response::new(admin::ListWaiversResponse {
            waivers: env
                .waivers
                .iter()
                .filter(|w| r.all || w.expires > at)
                .map(convert::waiver_to_wire)
                .collect(),
        }))
    }

    async fn remove_waiver(
        &self,
        request: Request<admin::RemoveWaiverRequest>,
    ) -> Result<Response<admin::Environment>, Status> {
        let by = actor(&request);
        let r = request.into_inner();
        let env = self
            .change_env(&r.name, &by, "waiver.remove", |env| {
                let before = env.waivers.len();
                let removed: Vec<_> = env
                    .waivers
                    .iter()
                    .filter(|w| w.id == r.id)
                    .cloned()
                    .collect();
                env.waivers.retain(|w| w.id != r.id);
                if env.waivers.len() == before {
                    return Err(Error::NotFound(format!(
                        "{:?} has no waiver {:?} (holdfast waiver list {})",
                        env.name, r.id, env.name
                    )));
                }
                Ok(serde_json::to_value(&removed[0]).unwrap_or_default())
            })
            .await?;
        Ok(Response::new(self.env_wire(&env, false).await?))
    }
}

/// Collects every partition of the environment fresh and stores the result
/// as the new current baseline. Any failed partition aborts: a baseline is
/// only ever made from a complete snapshot.
/// What a baseline creation was asked for.
struct NewBaseline<'a> {
    reason: &'a str,
    by: &'a str,
    candidate: bool,
    /// Refuse unwaived findings at or above this severity.
    gate: Option<holdfast_policy::Severity>,
    timeout: Duration,
}

async fn build_baseline(
    hub: &Arc<Hub>,
    env: &Environment,
    want: NewBaseline<'_>,
    tx: &mpsc::Sender<Result<admin::CreateBaselineProgress, Status>>,
) -> Result<admin::Baseline, Error> {
    let NewBaseline {
        reason,
        by,
        candidate,
        gate,
        timeout,
    } = want;
    let expected: BTreeSet<(String, String)> = env.partitions().into_iter().collect();
    let (collection_id, mut rx) = hub
        .start_collection(
            &env.account,
            env.regions.clone(),
            env.resource_types.clone(),
        )
        .await?;
    let progress = |event: Event| admin::CreateBaselineProgress { event: Some(event) };
    let _ = tx
        .send(Ok(progress(Event::Message(format!(
            "collecting {} partition(s) of account {} (collection {collection_id})",
            expected.len(),
            env.account
        )))))
        .await;
    let mut parts = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = loop {
        if parts.len() == expected.len() {
            break Ok(());
        }
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        let p = match next {
            Err(_) => {
                let missing: Vec<String> = expected
                    .iter()
                    .filter(|k| !parts.contains_key(*k))
                    .map(|(r, t)| format!("{r}/{t}"))
                    .collect();
                break Err(Error::DeadlineExceeded(format!(
                    "the agent did not deliver {} within {timeout:?}; baseline not created",
                    missing.join(", ")
                )));
            }
            Ok(None) => break Err(Error::Unavailable("collection was cancelled".into())),
            Ok(Some(p)) => p,
        };
        let key = (p.region.clone(), p.resource_type.clone());
        if !expected.contains(&key) {
            continue;
        }
        if !p.complete {
            break Err(Error::Unavailable(format!(
                "collection of {}/{} failed: {}; baseline not created",
                p.region, p.resource_type, p.error
            )));
        }
        parts.insert(key, p.resources.clone());
        let _ = tx
            .send(Ok(progress(Event::Partition(admin::PartitionProgress {
                region: p.region.clone(),
                resource_type: p.resource_type.clone(),
                resources: p.resources.len() as u32,
                received: parts.len() as u32,
                expected: expected.len() as u32,
            }))))
            .await;
    };
    hub.stop_waiting(&collection_id);
    outcome?;
    if let Some(min) = gate {
        compliance_gate(hub, env, &parts, min, "baseline not created").await?;
        let _ = tx
            .send(Ok(progress(Event::Message(format!(
                "no unwaived finding at or above {}",
                min.as_str()
            )))))
            .await;
    }
    // The owning decider follows the current pointer through its watch.
    let meta = hub
        .records
        .create_baseline(&env.name, reason, by, candidate, &parts)
        .await?;
    tracing::info!(env = %env.name, version = meta.version, resources = meta.resources, candidate, by, "baseline created");
    let current = if candidate { 0 } else { meta.version };
    Ok(admin::Baseline {
        summary: Some(convert::summary_to_wire(
            &crate::records::BaselineInfo {
                meta,
                approval: None,
            },
            current,
        )),
        resources: Vec::new(),
    })
}
