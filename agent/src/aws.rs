//! AWS SDK configuration and the account identity.
//!
//! The agent uses the standard credential chain (environment, profile, SSO,
//! web identity, container and instance metadata). `--aws-endpoint-url`
//! points every client at one endpoint (an emulator in tests and the demo).
//! Every operation is bounded by `--aws-timeout`, with the SDK's standard
//! retries (throttling backs off) inside that bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// Per-resource reads in flight at once, per service: enough to collect a
/// few hundred buckets quickly, few enough not to throttle the account.
const S3_CONCURRENCY: usize = 8;
const IAM_CONCURRENCY: usize = 4;

/// Shared SDK configuration, per-region clients and per-service limits.
#[derive(Clone)]
pub struct Cloud {
    base: SdkConfig,
    ec2: Arc<Mutex<HashMap<String, aws_sdk_ec2::Client>>>,
    s3: Arc<Mutex<HashMap<String, aws_sdk_s3::Client>>>,
    iam: aws_sdk_iam::Client,
    /// Bounds concurrent per-bucket reads across all regions.
    pub s3_limit: Arc<Semaphore>,
    /// Bounds concurrent per-user / per-policy IAM reads.
    pub iam_limit: Arc<Semaphore>,
    /// Whether the emulator compatibility layer is on (`--emulator-compat`).
    pub compat: bool,
}

impl Cloud {
    pub async fn new(config: &Config) -> Cloud {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(config.aws_timeout.min(Duration::from_secs(10)))
            .operation_timeout(config.aws_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.regions[0].clone()))
            .timeout_config(timeouts)
            // Throttling and transient errors back off and retry inside the
            // operation timeout (the backoff is scaled so that all attempts
            // fit, and the last error, not a timeout, is what is reported);
            // what still fails fails the partition.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff((config.aws_timeout / 10).min(Duration::from_secs(1))),
            );
        if let Some(url) = &config.aws_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let base = loader.load().await;
        // IAM is global; its endpoint lives in us-east-1.
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&base)
                .region(Region::new("us-east-1"))
                .build(),
        );
        Cloud {
            base,
            ec2: Arc::new(Mutex::new(HashMap::new())),
            s3: Arc::new(Mutex::new(HashMap::new())),
            iam,
            s3_limit: Arc::new(Semaphore::new(S3_CONCURRENCY)),
            iam_limit: Arc::new(Semaphore::new(IAM_CONCURRENCY)),
            compat: config.emulator_compat,
        }
    }

    /// The S3 client of a region. Path-style addressing when an endpoint
    /// is overridden (emulators and VPC endpoints have no per-bucket DNS).
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut clients = self.s3.lock().expect("s3 clients lock");
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_s3::config::Builder::from(&self.base)
                    .region(Region::new(region.to_string()))
                    .force_path_style(self.base.endpoint_url().is_some())
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.iam.clone()
    }

    /// The EC2 client of a region (created once, then reused).
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let mut clients = self.ec2.lock().expect("ec2 clients lock");
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_ec2::config::Builder::from(&self.base)
                    .region(Region::new(region.to_string()))
                    .build();
                aws_sdk_ec2::Client::from_conf(conf)
            })
            .clone()
    }

    /// The account these credentials belong to (STS GetCallerIdentity),
    /// retried with backoff until it succeeds or the agent stops.
    pub async fn resolve_account(&self, token: &CancellationToken) -> anyhow::Result<String> {
        let sts = aws_sdk_sts::Client::new(&self.base);
        let mut delay = Duration::from_millis(500);
        loop {
            match sts.get_caller_identity().send().await {
                Ok(out) => {
                    return out.account().map(String::from).ok_or_else(|| {
                        anyhow::anyhow!("STS GetCallerIdentity returned no account")
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sts::error::DisplayErrorContext(&e),
                        "cannot resolve the account with STS GetCallerIdentity; retrying in {delay:?}");
                }
            }
            tokio::select! {
                _ = token.cancelled() => anyhow::bail!("stopped before the account was resolved"),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}
