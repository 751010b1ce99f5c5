//! `holdfast deploy`: a deployment inside a deploy window.
//!
//! 1. Pause enforcement of the environment (with an expiry), so the
//!    deployment is not reverted while it runs.
//! 2. Run the command, its output streamed as it comes (to stderr with
//!    `--output json`, so stdout holds only the JSON document).
//! 3. If it failed: the baseline is not touched; the pause stays until its
//!    expiry (or is ended with `--on-failure resume`); exit with the
//!    command's code.
//! 4. If it succeeded: collect fresh, store a candidate baseline, print its
//!    diff against the current one; with `--approve`, approve it and end
//!    this pause. Without `--approve` the candidate waits for a person
//!    (`holdfast baseline approve`) and the pause stays, so the deployed
//!    change is not reverted in the meantime.

use std::time::Duration;

use holdfast_proto::admin::v1 as admin;

use crate::output::Output;
use crate::{create_baseline, Client, Failure};

pub struct Deploy {
    pub name: String,
    pub duration: Duration,
    pub approve: bool,
    pub resume_on_failure: bool,
    pub reason: String,
    pub timeout: Duration,
    /// With --approve: approve only a candidate without unwaived findings
    /// at or above this severity (else it waits, and the pause stays).
    pub require_compliant: Option<&'static str>,
    pub command: Vec<String>,
}

fn fail(message: String) -> Failure {
    Failure { code: 1, message }
}

pub async fn run(client: &mut Client, out: &Output, d: Deploy) -> Result<(), Failure> {
    let shown = d.command.join(" ");
    let reason = if d.reason.is_empty() {
        format!("deploy: {shown}")
    } else {
        format!("deploy: {} ({shown})", d.reason)
    };
    let env = client
        .pause_enforcement(admin::PauseEnforcementRequest {
            name: d.name.clone(),
            duration_seconds: d.duration.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
            reason: reason.clone(),
            resource_types: Vec::new(),
            resources: Vec::new(),
        })
        .await?
        .into_inner();
    // Ours is the newest pause with our reason.
    let pause = env
        .pauses
        .iter()
        .filter(|p| p.reason == reason)
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .cloned()
        .ok_or_else(|| fail("the controller did not record the pause".into()))?;
    eprintln!(
        "holdfast: enforcement of {} paused until {} (pause {})",
        d.name, pause.until, pause.id
    );

    let mut cmd = tokio::process::Command::new(&d.command[0]);
    cmd.args(&d.command[1..]);
    if out.is_json() {
        // stdout carries the one JSON document; the command's own output
        // goes to stderr.
        cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    }
    let status = cmd.status().await;
    let code = match status {
        Ok(s) if s.success() => 0,
        Ok(s) => s.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + s.signal().unwrap_or(0)
        }),
        Err(e) => {
            eprintln!("holdfast: cannot run {:?}: {e}", d.command[0]);
            127
        }
    };
    if code != 0 {
        if d.resume_on_failure {
            resume(client, &d.name, &pause.id).await?;
            eprintln!("holdfast: the command failed (exit code {code}); baseline unchanged; enforcement resumed");
        } else {
            eprintln!(
                "holdfast: the command failed (exit code {code}); baseline unchanged; enforcement stays paused until {} (holdfast enforcement resume {} --pause {})",
                pause.until, d.name, pause.id
            );
        }
        return Err(Failure {
            code: u8::try_from(code).unwrap_or(1),
            message: format!("deployment command exited with {code}"),
        });
    }

    eprintln!("holdfast: the command succeeded; collecting the environment for a new baseline");
    let current = client
        .get_environment(admin::GetEnvironmentRequest {
            name: d.name.clone(),
        })
        .await?
        .into_inner()
        .current_baseline;
    let candidate = create_baseline(client, &d.name, reason, d.timeout, true, None).await?;
    let version = candidate
        .summary
        .as_ref()
        .map(|s| s.version)
        .ok_or_else(|| fail("the controller returned no candidate version".into()))?;
    let diffs = if current > 0 {
        let diff = client
            .diff_baselines(admin::DiffBaselinesRequest {
                environment: d.name.clone(),
                from_version: current,
                to_version: version,
            })
            .await?
            .into_inner();
        if !out.is_json() {
            eprintln!("holdfast: candidate v{version} against the current v{current}:");
            out.baseline_diff(current, &format!("v{version}"), &diff.diffs);
        }
        diff.diffs
    } else {
        Vec::new()
    };
    let summary = if d.approve {
        let s = client
            .approve_baseline(admin::ApproveBaselineRequest {
                environment: d.name.clone(),
                version,
                reason: "approved by holdfast deploy --approve".into(),
                require_compliant: d.require_compliant.unwrap_or_default().to_string(),
            })
            .await
            .map_err(|s| {
                let mut f = Failure::from(s);
                f.message = format!(
                    "{}; candidate v{version} waits (holdfast baseline approve {} {version}) and enforcement stays paused until {}",
                    f.message, d.name, pause.until
                );
                f
            })?
            .into_inner();
        resume(client, &d.name, &pause.id).await?;
        eprintln!("holdfast: enforcement resumed");
        Some(s)
    } else {
        eprintln!(
            "holdfast: candidate v{version} waits for approval (holdfast baseline approve {} {version}); enforcement stays paused until {}",
            d.name, pause.until
        );
        candidate.summary
    };
    // One document for scripts: the baseline and what it changed.
    out.deployed(summary.as_ref(), current, &diffs);
    Ok(())
}

async fn resume(client: &mut Client, name: &str, pause: &str) -> Result<(), Failure> {
    client
        .resume_enforcement(admin::ResumeEnforcementRequest {
            name: name.to_string(),
            pause_id: pause.to_string(),
        })
        .await?;
    Ok(())
}
