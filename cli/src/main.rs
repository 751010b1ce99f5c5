//! `holdfast`: the admin command line for a holdfast controller.
//!
//! Exit codes: 0 success, 1 a failure reported by the controller (or an
//! unreachable controller), 2 bad usage (including input the controller
//! rejected as invalid). Errors are one line on stderr; progress goes to
//! stderr so that `--output json` on stdout stays machine-readable.

mod deploy;
mod output;
mod scan;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use holdfast_proto::admin::v1::admin_service_client::AdminServiceClient;
use holdfast_proto::admin::v1::{self as admin, create_baseline_progress::Event, EnforcementMode};
use tonic::transport::{Channel, Endpoint};

use output::Output;

#[derive(Parser)]
#[command(
    name = "holdfast",
    version,
    about = "Holdfast admin CLI: environments, baselines, drift and enforcement"
)]
struct Cli {
    /// Controller URL.
    #[arg(
        long,
        global = true,
        env = "HOLDFAST_CONTROLLER",
        default_value = "http://127.0.0.1:7400"
    )]
    controller: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Who is acting, recorded with pauses and baselines (default: USER@HOST).
    #[arg(long, global = true, env = "HOLDFAST_ACTOR")]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Environments: an account, its regions and resource types.
    #[command(subcommand)]
    Env(EnvCmd),
    /// Approved, versioned snapshots of an environment.
    #[command(subcommand)]
    Baseline(BaselineCmd),
    /// Differences between the live state and the current baseline.
    #[command(subcommand)]
    Drift(DriftCmd),
    /// Whether drift is only recorded or also healed.
    #[command(subcommand)]
    Enforcement(EnforcementCmd),
    /// The remediation journal.
    #[command(subcommand)]
    Remediation(RemediationCmd),
    /// Webhooks that receive notices (drift, remediation outcomes,
    /// flapping, pauses).
    #[command(subcommand)]
    Notify(NotifyCmd),
    /// The policy rules (offline: no controller needed).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Compliance: frameworks, scans and their history.
    #[command(subcommand)]
    Compliance(ComplianceCmd),
    /// Accepted exceptions to rules, each with an expiry.
    #[command(subcommand)]
    Waiver(WaiverCmd),
    /// The tamper-evident record: admin actions, baselines, drift and
    /// remediations in one hash chain per environment.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Judge a Terraform plan (`terraform show -json PLANFILE`) with the same
    /// rules, offline. Exit 0: nothing at or above --fail-on; 1: findings at
    /// or above it; 2: bad input.
    Scan {
        plan: std::path::PathBuf,
        /// Extra rules (*.rego) besides the built-in ones.
        #[arg(long)]
        policies: Option<std::path::PathBuf>,
        /// The lowest severity that fails the scan.
        #[arg(long, value_enum, default_value_t = Severity::High)]
        fail_on: Severity,
        #[arg(long, value_enum, default_value_t = scan::ScanFormat::Text)]
        format: scan::ScanFormat,
        /// Only the rules mapped to this framework (e.g. cis-aws).
        #[arg(long)]
        framework: Option<String>,
    },
    /// Run a deployment inside a pause of enforcement, then re-baseline:
    /// pause, run COMMAND (its output streamed), collect fresh, create a
    /// candidate baseline, show its diff, approve it with --approve and
    /// resume. Exits with COMMAND's exit code.
    Deploy {
        name: String,
        /// How long enforcement stays paused at most.
        #[arg(long = "for", default_value = "30m", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Approve the new baseline and resume at once; without it the
        /// candidate waits for `holdfast baseline approve` and enforcement
        /// stays paused until the pause expires or is resumed.
        #[arg(long)]
        approve: bool,
        /// What to do when COMMAND fails: keep the pause until it expires,
        /// or resume at once. The baseline is never changed.
        #[arg(long, value_enum, default_value_t = OnFailure::Keep)]
        on_failure: OnFailure,
        /// Why (recorded with the pause and the baseline).
        #[arg(long, default_value = "")]
        reason: String,
        /// How long to wait for the agent's collection.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// With --approve: approve only if the new snapshot has no unwaived
        /// finding at or above this severity (default when given without
        /// one: high); otherwise the candidate waits and the pause stays.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "high")]
        require_compliant: Option<Severity>,
        /// The deployment command and its arguments (after --).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// List the rules: built-in, plus those of --policies DIR.
    List {
        #[arg(long)]
        policies: Option<std::path::PathBuf>,
        /// Only rules mapped to this framework (e.g. pci-dss-v4).
        #[arg(long)]
        framework: Option<String>,
    },
    /// Load the rules of DIR and report every file that does not load
    /// (file, line, reason); exit 2 if any.
    Check { dir: std::path::PathBuf },
}

#[derive(Subcommand)]
enum ComplianceCmd {
    /// Choose the frameworks reported on and the scan schedule (unset
    /// flags keep their value).
    Set {
        name: String,
        /// Frameworks, comma-separated ("" for every framework).
        #[arg(long, value_delimiter = ',')]
        frameworks: Option<Vec<String>>,
        /// Time between scheduled scans (e.g. 1h, 15m; 0 for on demand only).
        #[arg(long, value_parser = parse_interval)]
        scan_interval: Option<Duration>,
        /// Scans kept in history.
        #[arg(long)]
        keep: Option<u32>,
    },
    /// Scan the latest complete snapshot now; the result is stored.
    Scan { name: String },
    /// A stored scan (default: the latest): totals per control, findings.
    Report {
        name: String,
        /// Only this framework's controls and the findings of its rules.
        #[arg(long)]
        framework: Option<String>,
        /// Scan number (see `compliance history`).
        #[arg(long)]
        scan: Option<u64>,
    },
    /// Every stored scan: the posture over time.
    History { name: String },
}

#[derive(Subcommand)]
enum WaiverCmd {
    /// Accept the findings of one rule on matching resources until a date.
    Add {
        name: String,
        /// Rule id (e.g. SG-01).
        #[arg(long)]
        rule: String,
        /// Resource id, or a pattern (* any characters, ? one character).
        #[arg(long)]
        resource: String,
        #[arg(long)]
        reason: String,
        /// YYYY-MM-DD (the end of that day, UTC) or an RFC 3339 time; at
        /// most a year ahead.
        #[arg(long)]
        expires: String,
    },
    /// Waivers in force (with --all, expired ones still stored too).
    List {
        name: String,
        #[arg(long)]
        all: bool,
    },
    /// Withdraw a waiver now.
    Remove { name: String, id: String },
}

/// `0` or a duration.
fn parse_interval(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Subcommand)]
enum NotifyCmd {
    /// Send the environment's notices to a webhook.
    Add {
        name: String,
        #[arg(long)]
        url: String,
        /// json: the notice as JSON; slack: a Slack incoming-webhook message.
        #[arg(long, default_value = "json", value_parser = ["json", "slack"])]
        format: String,
    },
    /// Stop sending to a webhook (its id is in `env show`).
    Remove { name: String, id: String },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// List an environment's audit record, oldest first.
    List { name: String },
    /// Verify every chain (or one environment's) and the records it covers;
    /// exit 1 if anything was altered or deleted.
    Verify { name: Option<String> },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum OnFailure {
    Keep,
    Resume,
}

#[derive(Subcommand)]
enum EnvCmd {
    /// Create an environment.
    Create {
        name: String,
        /// 12-digit AWS account id.
        #[arg(long)]
        account: String,
        /// Regions, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        regions: Vec<String>,
        /// Resource types, comma-separated (default: all supported).
        #[arg(long, value_delimiter = ',')]
        resource_types: Vec<String>,
        /// Initial enforcement mode.
        #[arg(long, value_enum, default_value_t = Mode::Notify)]
        enforcement: Mode,
    },
    /// List environments.
    List,
    /// Show one environment.
    Show { name: String },
    /// Set the safety gates of enforcement (unset flags keep their value).
    Set {
        name: String,
        /// Remediations sent per minute at most; beyond it they wait.
        #[arg(long)]
        max_remediations_per_minute: Option<u32>,
        /// Reverts within --flap-window that make a resource flapping (0: off).
        #[arg(long)]
        flap_threshold: Option<u32>,
        #[arg(long, value_parser = humantime::parse_duration)]
        flap_window: Option<Duration>,
        /// Enforce only these resource types, comma-separated ("" for all).
        #[arg(long, value_delimiter = ',')]
        enforce_types: Option<Vec<String>>,
        /// Attribute paths that are neither drift nor restored,
        /// comma-separated, `*` for any one segment (e.g. tags.CostCenter);
        /// "" for none.
        #[arg(long, value_delimiter = ',')]
        ignore_paths: Option<Vec<String>>,
        /// In enforce mode, delete resources that are not in the baseline
        /// (never a bucket that holds objects).
        #[arg(long)]
        delete_added: Option<bool>,
        /// In enforce mode, recreate baseline resources that were deleted.
        #[arg(long)]
        recreate_removed: Option<bool>,
    },
}

#[derive(Subcommand)]
enum BaselineCmd {
    /// Collect the environment now and approve the result as the new baseline.
    Create {
        name: String,
        /// Why this baseline is approved (kept with the version).
        #[arg(long, default_value = "")]
        reason: String,
        /// How long to wait for the agent's collection.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Store it as a candidate: it takes effect only when approved.
        #[arg(long)]
        candidate: bool,
        /// Refuse a snapshot with unwaived findings at or above this
        /// severity (default when given without one: high), listing them.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "high")]
        require_compliant: Option<Severity>,
    },
    /// List baseline versions.
    List { name: String },
    /// Show a baseline version (default: the current one).
    Show { name: String, version: Option<u64> },
    /// Make a candidate version current.
    Approve {
        name: String,
        version: u64,
        #[arg(long, default_value = "")]
        reason: String,
        /// Refuse if the candidate has unwaived findings at or above this
        /// severity (default when given without one: high).
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "high")]
        require_compliant: Option<Severity>,
    },
    /// Make an older version current again (as a new version).
    Rollback {
        name: String,
        version: u64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// What differs between two versions (default second: the current one).
    Diff {
        name: String,
        from: u64,
        to: Option<u64>,
    },
}

#[derive(Subcommand)]
enum DriftCmd {
    /// List open drift (with --all, healed drift too).
    List {
        name: String,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum EnforcementCmd {
    /// Set the enforcement mode.
    Set {
        name: String,
        #[arg(value_enum)]
        mode: Mode,
    },
    /// Pause enforcement for a while (drift is still recorded).
    Pause {
        name: String,
        /// How long; enforcement resumes by itself afterwards.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long)]
        reason: String,
        /// Only these resource types (comma-separated).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Only these resource ids (comma-separated).
        #[arg(long, value_delimiter = ',')]
        resources: Vec<String>,
    },
    /// End every pause now (or one, with --pause).
    Resume {
        name: String,
        #[arg(long)]
        pause: Option<String>,
    },
    /// Dry run: what enforcement would change now and by which calls, and
    /// what it holds back and why. Changes nothing.
    Plan { name: String },
}

#[derive(Subcommand)]
enum RemediationCmd {
    /// List remediations with their journal.
    List { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Off,
    Notify,
    Enforce,
}

impl From<Mode> for EnforcementMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Off => EnforcementMode::Off,
            Mode::Notify => EnforcementMode::Notify,
            Mode::Enforce => EnforcementMode::Enforce,
        }
    }
}

/// The admin client with the caller's actor on every request.
type Client = AdminServiceClient<tonic::service::interceptor::InterceptedService<Channel, Actor>>;

/// Sends the caller's actor name with every request.
#[derive(Clone)]
struct Actor(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for Actor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert("x-holdfast-actor", self.0.clone());
        Ok(req)
    }
}

/// Triggers a fresh collection and stores it as a baseline, showing
/// progress on stderr.
async fn create_baseline(
    client: &mut Client,
    name: &str,
    reason: String,
    timeout: Duration,
    candidate: bool,
    require_compliant: Option<Severity>,
) -> Result<admin::Baseline, Failure> {
    let mut stream = client
        .create_baseline(admin::CreateBaselineRequest {
            environment: name.to_string(),
            reason,
            timeout_seconds: timeout.as_secs().max(1) as u32,
            candidate,
            require_compliant: require_compliant
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut created = None;
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(Event::Message(m)) => eprintln!("{m}"),
            Some(Event::Partition(p)) => eprintln!(
                "[{}/{}] {}/{}: {} resource(s)",
                p.received, p.expected, p.region, p.resource_type, p.resources
            ),
            Some(Event::Baseline(b)) => created = Some(b),
            None => {}
        }
    }
    created.ok_or_else(|| Failure {
        code: 1,
        message: "the controller ended the stream without a baseline".into(),
    })
}

fn decode_scan(json: &str) -> Result<holdfast_policy::report::Scan, Failure> {
    serde_json::from_str(json).map_err(|e| Failure {
        code: 1,
        message: format!("the controller sent a scan this CLI cannot read: {e}"),
    })
}

/// A failure with its exit code.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        let code = match s.code() {
            tonic::Code::InvalidArgument => 2,
            _ => 1,
        };
        let message = match s.code() {
            tonic::Code::Unavailable
                if s.message().contains("transport") || s.message().is_empty() =>
            {
                format!("controller unavailable: {}", s.message())
            }
            _ => s.message().to_string(),
        };
        Failure { code, message }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("holdfast: {}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("holdfast: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Folds clap's multi-line usage error into one line: the error itself
/// plus any list of possible values or usage hint.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        parts.push(line);
    }
    parts.join(" ")
}

/// The offline policy commands.
fn policy(cmd: &PolicyCmd, out: &Output) -> Result<(), Failure> {
    let bad = |e: holdfast_policy::PolicyError| usage(e.to_string());
    match cmd {
        PolicyCmd::List {
            policies,
            framework,
        } => {
            if let Some(f) = framework {
                holdfast_policy::report::check_framework(f).map_err(usage)?;
            }
            let (p, errors) = holdfast_policy::Policies::load(policies.as_deref()).map_err(bad)?;
            for e in &errors {
                eprintln!("holdfast: skipped {e}");
            }
            let rules: Vec<&holdfast_policy::Rule> = p
                .rules()
                .iter()
                .filter(|r| {
                    framework
                        .as_ref()
                        .is_none_or(|f| r.controls.contains_key(f))
                })
                .collect();
            out.rules(&rules, framework.as_deref());
            if !errors.is_empty() {
                return Err(usage(format!("{} rule file(s) did not load", errors.len())));
            }
            Ok(())
        }
        PolicyCmd::Check { dir } => {
            let (p, errors) = holdfast_policy::Policies::load(Some(dir)).map_err(bad)?;
            if errors.is_empty() {
                let builtin = holdfast_policy::Policies::builtin()
                    .map_err(bad)?
                    .rules()
                    .len();
                println!(
                    "{} rule(s) of {} load and evaluate",
                    p.rules().len() - builtin,
                    dir.display()
                );
                return Ok(());
            }
            for e in &errors {
                println!("{e}");
            }
            Err(usage(format!(
                "{} rule file(s) in {} did not load",
                errors.len(),
                dir.display()
            )))
        }
    }
}

/// `USER@HOST` of whoever runs the CLI.
fn default_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    match host.trim() {
        "" => user,
        h => format!("{user}@{h}"),
    }
}

async fn connect(url: &str) -> Result<Channel, Failure> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|_| {
            usage(format!(
                "invalid --controller {url:?}: expected http://HOST:PORT"
            ))
        })?
        .connect_timeout(Duration::from_secs(5));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(format!(
            "invalid --controller {url:?}: expected http://HOST:PORT"
        )));
    }
    endpoint.connect().await.map_err(|e| Failure {
        code: 1,
        message: format!("cannot reach the controller at {url}: {}", source_chain(&e)),
    })
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let out = Output::new(cli.output == Format::Json);
    match &cli.command {
        Command::Baseline(BaselineCmd::Show {
            version: Some(0), ..
        })
        | Command::Baseline(BaselineCmd::Approve { version: 0, .. })
        | Command::Baseline(BaselineCmd::Rollback { version: 0, .. })
        | Command::Baseline(BaselineCmd::Diff { from: 0, .. })
        | Command::Baseline(BaselineCmd::Diff { to: Some(0), .. }) => {
            return Err(usage("VERSION starts at 1"))
        }
        Command::Enforcement(EnforcementCmd::Pause { duration, .. }) if duration.is_zero() => {
            return Err(usage("--for must be longer than 0s"))
        }
        Command::Env(EnvCmd::Set {
            flap_window: Some(w),
            ..
        }) if w.as_secs() == 0 => return Err(usage("--flap-window must be at least 1s")),
        _ => {}
    }
    if let Command::Policy(cmd) = &cli.command {
        return policy(cmd, &out);
    }
    if let Command::Scan {
        plan,
        policies,
        fail_on,
        format,
        framework,
    } = &cli.command
    {
        return scan::run(scan::Scan {
            plan,
            policies: policies.as_deref(),
            fail_on: holdfast_policy::Severity::parse(fail_on.as_str())
                .unwrap_or(holdfast_policy::Severity::High),
            format: *format,
            framework: framework.as_deref(),
        });
    }
    let actor = cli.actor.clone().unwrap_or_else(default_actor);
    let channel = connect(&cli.controller).await?;
    let actor = actor
        .parse()
        .map_err(|_| usage(format!("invalid --actor {actor:?}: use printable ASCII")))?;
    let mut client: Client = AdminServiceClient::with_interceptor(channel, Actor(actor));
    match cli.command {
        Command::Env(EnvCmd::Create {
            name,
            account,
            regions,
            resource_types,
            enforcement,
        }) => {
            let env = client
                .create_environment(admin::CreateEnvironmentRequest {
                    name,
                    account_id: account,
                    regions,
                    resource_types,
                    enforcement: EnforcementMode::from(enforcement) as i32,
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Env(EnvCmd::List) => {
            let list = client
                .list_environments(admin::ListEnvironmentsRequest {})
                .await?
                .into_inner();
            out.envs(&list.environments);
        }
        Command::Env(EnvCmd::Show { name }) => {
            let env = client
                .get_environment(admin::GetEnvironmentRequest { name })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Baseline(BaselineCmd::Create {
            name,
            reason,
            timeout,
            candidate,
            require_compliant,
        }) => {
            let b = create_baseline(
                &mut client,
                &name,
                reason,
                timeout,
                candidate,
                require_compliant,
            )
            .await?;
            out.baseline_summary(b.summary.as_ref());
        }
        Command::Baseline(BaselineCmd::Approve {
            name,
            version,
            reason,
            require_compliant,
        }) => {
            let s = client
                .approve_baseline(admin::ApproveBaselineRequest {
                    environment: name,
                    version,
                    reason,
                    require_compliant: require_compliant
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.baseline_summary(Some(&s));
        }
        Command::Baseline(BaselineCmd::Rollback {
            name,
            version,
            reason,
        }) => {
            let s = client
                .rollback_baseline(admin::RollbackBaselineRequest {
                    environment: name,
                    version,
                    reason,
                })
                .await?
                .into_inner();
            out.baseline_summary(Some(&s));
        }
        Command::Baseline(BaselineCmd::Diff { name, from, to }) => {
            let d = client
                .diff_baselines(admin::DiffBaselinesRequest {
                    environment: name,
                    from_version: from,
                    to_version: to.unwrap_or(0),
                })
                .await?
                .into_inner();
            let to = to.map_or("the current version".to_string(), |v| format!("v{v}"));
            out.baseline_diff(from, &to, &d.diffs);
        }
        Command::Baseline(BaselineCmd::List { name }) => {
            let list = client
                .list_baselines(admin::ListBaselinesRequest { environment: name })
                .await?
                .into_inner();
            out.baselines(&list.baselines);
        }
        Command::Baseline(BaselineCmd::Show { name, version }) => {
            let b = client
                .get_baseline(admin::GetBaselineRequest {
                    environment: name,
                    version: version.unwrap_or(0),
                })
                .await?
                .into_inner();
            out.baseline(&b);
        }
        Command::Drift(DriftCmd::List { name, all }) => {
            let list = client
                .list_drift(admin::ListDriftRequest {
                    environment: name,
                    all,
                })
                .await?
                .into_inner();
            out.drift(&list.drift);
        }
        Command::Enforcement(EnforcementCmd::Set { name, mode }) => {
            let env = client
                .set_enforcement(admin::SetEnforcementRequest {
                    name,
                    mode: EnforcementMode::from(mode) as i32,
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Enforcement(EnforcementCmd::Pause {
            name,
            duration,
            reason,
            types,
            resources,
        }) => {
            let env = client
                .pause_enforcement(admin::PauseEnforcementRequest {
                    name,
                    duration_seconds: duration.as_secs().max(1).min(u64::from(u32::MAX)) as u32,
                    reason,
                    resource_types: types,
                    resources,
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Env(EnvCmd::Set {
            name,
            max_remediations_per_minute,
            flap_threshold,
            flap_window,
            enforce_types,
            ignore_paths,
            delete_added,
            recreate_removed,
        }) => {
            let env = client
                .set_safety(admin::SetSafetyRequest {
                    delete_added,
                    recreate_removed,
                    name,
                    max_remediations_per_minute,
                    flap_threshold,
                    flap_window_seconds: flap_window.map(|w| w.as_secs()),
                    set_enforce_types: enforce_types.is_some(),
                    enforce_types: enforce_types.unwrap_or_default(),
                    set_ignore_paths: ignore_paths.is_some(),
                    ignore_paths: ignore_paths.unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Enforcement(EnforcementCmd::Plan { name }) => {
            let plan = client
                .plan_enforcement(admin::PlanEnforcementRequest { name })
                .await?
                .into_inner();
            out.plan(&plan.items);
        }
        Command::Enforcement(EnforcementCmd::Resume { name, pause }) => {
            let env = client
                .resume_enforcement(admin::ResumeEnforcementRequest {
                    name,
                    pause_id: pause.unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Deploy {
            name,
            duration,
            approve,
            on_failure,
            reason,
            timeout,
            require_compliant,
            command,
        } => {
            return deploy::run(
                &mut client,
                &out,
                deploy::Deploy {
                    name,
                    duration,
                    approve,
                    resume_on_failure: on_failure == OnFailure::Resume,
                    reason,
                    timeout,
                    require_compliant: require_compliant.map(Severity::as_str),
                    command,
                },
            )
            .await;
        }
        Command::Policy(_) | Command::Scan { .. } => unreachable!("handled before connecting"),
        Command::Notify(NotifyCmd::Add { name, url, format }) => {
            let env = client
                .add_webhook(admin::AddWebhookRequest { name, url, format })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Notify(NotifyCmd::Remove { name, id }) => {
            let env = client
                .remove_webhook(admin::RemoveWebhookRequest { name, id })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Audit(AuditCmd::List { name }) => {
            let list = client
                .list_audit(admin::ListAuditRequest { environment: name })
                .await?
                .into_inner();
            out.audit(&list.entries);
        }
        Command::Audit(AuditCmd::Verify { name }) => {
            let v = client
                .verify_audit(admin::VerifyAuditRequest {
                    environment: name.unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.verify(&v);
            if !v.problems.is_empty() {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "the audit record does not verify: {} problem(s)",
                        v.problems.len()
                    ),
                });
            }
        }
        Command::Compliance(ComplianceCmd::Set {
            name,
            frameworks,
            scan_interval,
            keep,
        }) => {
            let frameworks = frameworks.map(|f| {
                f.into_iter()
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
            });
            for f in frameworks.iter().flatten() {
                holdfast_policy::report::check_framework(f).map_err(usage)?;
            }
            let env = client
                .set_compliance(admin::SetComplianceRequest {
                    name,
                    set_frameworks: frameworks.is_some(),
                    frameworks: frameworks.unwrap_or_default(),
                    scan_interval_seconds: scan_interval.map(|d| d.as_secs()),
                    keep_scans: keep,
                })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Compliance(ComplianceCmd::Scan { name }) => {
            let r = client
                .scan_compliance(admin::ScanComplianceRequest { name })
                .await?
                .into_inner();
            out.scan(&decode_scan(&r.scan_json)?);
        }
        Command::Compliance(ComplianceCmd::Report {
            name,
            framework,
            scan,
        }) => {
            if let Some(f) = &framework {
                holdfast_policy::report::check_framework(f).map_err(usage)?;
            }
            if scan == Some(0) {
                return Err(usage("--scan: scans are numbered from 1"));
            }
            let r = client
                .get_compliance_report(admin::GetComplianceReportRequest {
                    name,
                    scan: scan.unwrap_or(0),
                    framework: framework.unwrap_or_default(),
                })
                .await?
                .into_inner();
            out.scan(&decode_scan(&r.scan_json)?);
        }
        Command::Compliance(ComplianceCmd::History { name }) => {
            let r = client
                .list_compliance_scans(admin::ListComplianceScansRequest { name })
                .await?
                .into_inner();
            let scans = r
                .scans_json
                .iter()
                .map(|s| serde_json::from_str(s))
                .collect::<Result<Vec<holdfast_policy::report::ScanSummary>, _>>()
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("the controller sent a scan this CLI cannot read: {e}"),
                })?;
            out.scan_history(&scans);
        }
        Command::Waiver(WaiverCmd::Add {
            name,
            rule,
            resource,
            reason,
            expires,
        }) => {
            let w = client
                .add_waiver(admin::AddWaiverRequest {
                    name,
                    rule,
                    resource,
                    reason,
                    expires,
                })
                .await?
                .into_inner();
            out.waiver(&w);
        }
        Command::Waiver(WaiverCmd::List { name, all }) => {
            let r = client
                .list_waivers(admin::ListWaiversRequest { name, all })
                .await?
                .into_inner();
            out.waivers(&r.waivers);
        }
        Command::Waiver(WaiverCmd::Remove { name, id }) => {
            let env = client
                .remove_waiver(admin::RemoveWaiverRequest { name, id })
                .await?
                .into_inner();
            out.env(&env);
        }
        Command::Remediation(RemediationCmd::List { name }) => {
            let list = client
                .list_remediations(admin::ListRemediationsRequest { environment: name })
                .await?
                .into_inner();
            out.remediations(&list.remediations);
        }
    }
    Ok(())
}
