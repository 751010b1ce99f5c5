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

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// Shared SDK configuration and per-region clients.
#[derive(Clone)]
pub struct Cloud {
    base: SdkConfig,
    ec2: Arc<Mutex<HashMap<String, aws_sdk_ec2::Client>>>,
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
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(url) = &config.aws_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Cloud {
            base: loader.load().await,
            ec2: Arc::new(Mutex::new(HashMap::new())),
        }
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
