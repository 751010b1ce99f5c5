//! The end-to-end harness: starts real etcd, the AWS emulator (moto's
//! server), the controller and agents as processes on free loopback ports,
//! and runs the `holdfast` CLI against them. Every process is killed when its
//! handle drops; if the test is failing, the tail of every log is printed.
//!
//! Binaries come from the cargo target directory (`cargo build --workspace
//! --bins` first; the README's test command does). External programs:
//! `etcd` on PATH (or `HOLDFAST_ETCD_BIN`), `moto_server` from the repository's
//! `.venv` (or `HOLDFAST_MOTO_SERVER`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The longest any single CLI call may take in a test.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(150);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free loopback port")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Path of a workspace binary in the same target directory as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process with a log file; killed on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Proc> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("log file {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// SIGKILL: dies at once, no clean-up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stops answering but keeps its state.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after 15 s).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        self.signal_child(&child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_child(&self, child: &Child, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} log ({}) -----\n{}",
                self.name,
                self.log.display(),
                self.log_tail(60)
            );
        }
        if let Some(mut c) = self.child.take() {
            self.signal_child(&c, "CONT");
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_port(port: u16, timeout: Duration, what: &str) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not open 127.0.0.1:{port} within {timeout:?}")
}

/// A plain HTTP GET on loopback; returns the status code and body.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP response")?;
    let body = resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((code, body))
}

/// One unsigned EC2 DescribeSecurityGroups call into `region` (moto reads
/// the region from the credential scope), waiting as long as it takes.
fn warm_ec2(port: u16, region: &str) -> Result<()> {
    let body = "Action=DescribeSecurityGroups&Version=2016-11-15";
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    if !resp.starts_with("HTTP/1.1 200") && !resp.starts_with("HTTP/1.0 200") {
        bail!(
            "warming up moto's EC2 in {region} failed: {}",
            resp.lines().next().unwrap_or("no answer")
        );
    }
    Ok(())
}

/// A single-member etcd with its data in a temp dir.
pub struct Etcd {
    pub proc: Proc,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let etcd = std::env::var("HOLDFAST_ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let proc = Proc::spawn(
            "etcd",
            Command::new(etcd)
                .arg("--name")
                .arg("test")
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--listen-client-urls")
                .arg(&url)
                .arg("--advertise-client-urls")
                .arg(&url)
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-cluster")
                .arg(format!("test=http://127.0.0.1:{peer}")),
            dir.path().join("etcd.log"),
        )?;
        wait_port(client, Duration::from_secs(20), "etcd")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, body)) = http_get(client, "/health") {
                if body.contains("true") {
                    return Ok(Etcd {
                        proc,
                        url,
                        _dir: dir,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("etcd did not become healthy")
    }
}

/// moto's server: the AWS API emulator.
pub struct Moto {
    pub proc: Proc,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

pub fn moto_server_path() -> PathBuf {
    std::env::var_os("HOLDFAST_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"))
}

impl Moto {
    pub fn start() -> Result<Moto> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let server = moto_server_path();
        if !server.exists() {
            bail!(
                "{} not found: run deploy/dev/setup.sh (or set HOLDFAST_MOTO_SERVER)",
                server.display()
            );
        }
        let proc = Proc::spawn(
            "moto",
            Command::new(server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true"),
            dir.path().join("moto.log"),
        )?;
        wait_port(port, Duration::from_secs(30), "moto")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http_get(port, "/moto-api/data.json") {
                // moto builds a region's EC2 backend (default VPC, subnets,
                // groups) on the first call into it, which can take seconds
                // on a loaded machine: more than the agent's --aws-timeout
                // in these tests. Build it now, for the regions tests use.
                for region in [REGION, "eu-west-1"] {
                    warm_ec2(port, region)?;
                }
                return Ok(Moto {
                    proc,
                    port,
                    url: format!("http://127.0.0.1:{port}"),
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("moto did not answer")
    }
}

/// A multi-member etcd cluster on loopback; members can be killed and
/// restarted with their data.
pub struct EtcdCluster {
    procs: Vec<Option<Proc>>,
    members: Vec<(u16, u16)>,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub fn start(n: usize) -> Result<EtcdCluster> {
        let dir = tempfile::tempdir()?;
        let members: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut c = EtcdCluster {
            dir,
            procs: (0..n).map(|_| None).collect(),
            members,
        };
        for i in 0..n {
            c.start_member(i)?;
        }
        for i in 0..n {
            c.wait_healthy(i)?;
        }
        Ok(c)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts (or restarts, with its data) member `i`.
    pub fn start_member(&mut self, i: usize) -> Result<()> {
        let (client, peer) = self.members[i];
        let etcd = std::env::var("HOLDFAST_ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let proc = Proc::spawn(
            &format!("etcd-m{i}"),
            Command::new(etcd)
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(self.dir.path().join(format!("m{i}")))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &self.initial_cluster()])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "holdfast-test",
                ]),
            self.dir.path().join(format!("m{i}.log")),
        )?;
        self.procs[i] = Some(proc);
        Ok(())
    }

    pub fn wait_healthy(&self, i: usize) -> Result<()> {
        let port = self.members[i].0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, body)) = http_get(port, "/health") {
                if body.contains("true") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("etcd member m{i} did not become healthy")
    }

    /// SIGKILL member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            p.kill9();
        }
    }

    /// Client URLs of every member, comma-separated.
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(|(c, _)| format!("http://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The controller binary.
pub struct Controller {
    pub proc: Proc,
    pub port: u16,
    pub url: String,
    etcd_url: String,
    dir: PathBuf,
    pub id: String,
    lease_ttl: String,
}

impl Controller {
    pub fn start(etcd_url: &str, dir: &Path) -> Result<Controller> {
        Self::start_replica(etcd_url, dir, "controller", "10s")
    }

    /// One replica of several: its own id, log file and lease TTL.
    pub fn start_replica(
        etcd_url: &str,
        dir: &Path,
        id: &str,
        lease_ttl: &str,
    ) -> Result<Controller> {
        let port = free_port();
        let mut c = Controller {
            proc: Self::spawn(etcd_url, port, dir, id, lease_ttl)?,
            port,
            url: format!("http://127.0.0.1:{port}"),
            etcd_url: etcd_url.to_string(),
            dir: dir.to_path_buf(),
            id: id.to_string(),
            lease_ttl: lease_ttl.to_string(),
        };
        c.wait_ready()?;
        Ok(c)
    }

    fn spawn(etcd_url: &str, port: u16, dir: &Path, id: &str, lease_ttl: &str) -> Result<Proc> {
        Proc::spawn(
            id,
            Command::new(bin("holdfast-controller"))
                .args(["--listen", &format!("127.0.0.1:{port}"), "--etcd", etcd_url])
                .args(["--id", id, "--lease-ttl", lease_ttl])
                .env("RUST_LOG", "info,holdfast_controller=debug"),
            dir.join(format!("{id}.log")),
        )
    }

    fn wait_ready(&mut self) -> Result<()> {
        wait_port(self.port, Duration::from_secs(30), "controller")
    }

    /// Stops the controller (SIGTERM) and starts it again on the same port;
    /// returns how the stopped process exited.
    pub fn restart(&mut self) -> Result<Option<std::process::ExitStatus>> {
        let status = self.proc.stop();
        self.proc = Self::spawn(
            &self.etcd_url,
            self.port,
            &self.dir,
            &self.id,
            &self.lease_ttl,
        )?;
        self.wait_ready()?;
        Ok(status)
    }
}

/// The agent binary, pointed at the emulator.
pub struct Agent {
    pub proc: Proc,
}

impl Agent {
    pub fn start(
        controllers: &[&str],
        moto_url: &str,
        regions: &[&str],
        interval: &str,
        dir: &Path,
    ) -> Result<Agent> {
        let proc = Proc::spawn(
            "agent",
            Command::new(bin("holdfast-agent"))
                .args(["--controller", &controllers.join(",")])
                .args(["--regions", &regions.join(",")])
                .args(["--interval", interval])
                .args(["--aws-endpoint-url", moto_url])
                .args(["--aws-timeout", "3s", "--emulator-compat"])
                .env("RUST_LOG", "info,holdfast_agent=debug")
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            dir.join("agent.log"),
        )?;
        Ok(Agent { proc })
    }
}

/// What a CLI run returned.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "CLI output is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `holdfast` against a controller.
/// A CLI run that does not end within [`CLI_TIMEOUT`] is killed and fails
/// the test, so a hanging call cannot hang the suite.
pub fn cli(controller: &str, args: &[&str]) -> CliOutput {
    let mut child = Command::new(bin("holdfast"))
        .args(["--controller", controller])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run holdfast");
    // Drain both pipes while waiting, so a large output cannot block it.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for holdfast") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("holdfast {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `holdfast ... --output json`, asserting success.
pub fn cli_json(controller: &str, args: &[&str]) -> Value {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--output", "json"]);
    let out = cli(controller, &full);
    assert_eq!(out.code, 0, "holdfast {args:?} failed: {}", out.stderr);
    out.json()
}

/// A whole stack: etcd, moto, controller and one agent.
// Fields drop in order: processes first (printing their logs if the test
// failed), the directory holding the logs last.
pub struct Stack {
    pub agent: Option<Agent>,
    pub controller: Controller,
    /// Between the agent and the emulator, when asked for.
    pub proxy: Option<FaultProxy>,
    pub moto: Moto,
    pub etcd: Etcd,
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Starts everything; the agent collects every `interval`.
    pub fn start(interval: &str) -> Result<Stack> {
        Stack::start_with(interval, &[REGION], false)
    }

    /// Starts everything with the agent collecting `regions`; with
    /// `proxied`, the agent reaches the emulator through a [`FaultProxy`].
    pub fn start_with(interval: &str, regions: &[&str], proxied: bool) -> Result<Stack> {
        let dir = tempfile::tempdir()?;
        let etcd = Etcd::start()?;
        let moto = Moto::start()?;
        let proxy = if proxied {
            Some(FaultProxy::start(moto.port)?)
        } else {
            None
        };
        let controller = Controller::start(&etcd.url, dir.path())?;
        let mut stack = Stack {
            dir,
            etcd,
            moto,
            proxy,
            controller,
            agent: None,
        };
        stack.start_agent(regions, interval)?;
        Ok(stack)
    }

    /// Starts (or replaces) the agent.
    pub fn start_agent(&mut self, regions: &[&str], interval: &str) -> Result<()> {
        if let Some(mut old) = self.agent.take() {
            old.proc.stop();
        }
        let aws_url = match &self.proxy {
            Some(p) => p.url(),
            None => self.moto.url.clone(),
        };
        self.agent = Some(Agent::start(
            &[&self.controller.url],
            &aws_url,
            regions,
            interval,
            self.dir.path(),
        )?);
        Ok(())
    }

    pub fn cli(&self, args: &[&str]) -> CliOutput {
        cli(&self.controller.url, args)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        cli_json(&self.controller.url, args)
    }

    /// The AWS SDK client of the test itself: an independent client, not
    /// holdfast's code.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        ec2_client(&self.moto.url, REGION).await
    }

    /// Creates the environment and waits until its agent is connected.
    pub fn create_env(&self, name: &str) {
        let env = self.json(&[
            "env",
            "create",
            name,
            "--account",
            ACCOUNT,
            "--regions",
            REGION,
        ]);
        assert_eq!(env["name"], name);
        wait_for("the agent to connect", Duration::from_secs(30), || {
            let e = self.json(&["env", "show", name]);
            e["agent_connected"]
                .as_bool()
                .unwrap_or(false)
                .then_some(())
        });
    }

    /// The open drift (or all with `all`).
    pub fn drift(&self, env: &str, all: bool) -> Vec<Value> {
        let mut args = vec!["drift", "list", env];
        if all {
            args.push("--all");
        }
        self.json(&args).as_array().cloned().unwrap_or_default()
    }

    pub fn remediations(&self, env: &str) -> Vec<Value> {
        self.json(&["remediation", "list", env])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The status of the environment's security-group partition in
    /// [`REGION`].
    pub fn partition(&self, env: &str) -> Option<Value> {
        let e = self.json(&["env", "show", env]);
        e["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["region"] == REGION && p["resource_type"] == "aws.ec2.security_group")
            .cloned()
    }
}

pub async fn ec2_client(url: &str, region: &str) -> aws_sdk_ec2::Client {
    let creds =
        aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "holdfast-tests");
    let conf = aws_sdk_ec2::config::Builder::new()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// A tcp rule for the SDK.
pub fn tcp(port: i32, cidr: &str) -> aws_sdk_ec2::types::IpPermission {
    aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
        .build()
}

/// Creates a VPC and a security group with the given ingress; returns the id.
pub async fn create_group(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    ingress: Vec<aws_sdk_ec2::types::IpPermission>,
) -> String {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let g = ec2
        .create_security_group()
        .group_name(name)
        .description(format!("{name} tier"))
        .vpc_id(vpc_id)
        .send()
        .await
        .expect("create group");
    let id = g.group_id().expect("group id").to_string();
    if !ingress.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(ingress))
            .send()
            .await
            .expect("authorize");
    }
    id
}

/// The group's ingress as (protocol, from, to, cidr) tuples, sorted.
pub async fn ingress(ec2: &aws_sdk_ec2::Client, id: &str) -> Vec<(String, i32, i32, String)> {
    let out = ec2
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .expect("describe");
    let g = &out.security_groups()[0];
    let mut rules = Vec::new();
    for p in g.ip_permissions() {
        for r in p.ip_ranges() {
            rules.push((
                p.ip_protocol().unwrap_or_default().to_string(),
                p.from_port().unwrap_or(-1),
                p.to_port().unwrap_or(-1),
                r.cidr_ip().unwrap_or_default().to_string(),
            ));
        }
    }
    rules.sort();
    rules
}

fn sdk_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("testing", "testing", None, None, "holdfast-tests")
}

/// An independent S3 client (path-style, as the emulator needs).
pub fn s3_client(url: &str, region: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .force_path_style(true)
        .credentials_provider(sdk_credentials())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An independent IAM client.
pub fn iam_client(url: &str) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::config::Builder::new()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(sdk_credentials())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

/// What the fault proxy saw and does.
#[derive(Default)]
struct ProxyState {
    /// Requests for this signing service (`iam`, `s3`, `ec2`) are answered
    /// with a throttling error instead of being forwarded.
    throttle: Option<String>,
    /// (service, action) → requests seen.
    seen: std::collections::BTreeMap<(String, String), usize>,
}

/// An HTTP proxy in front of the emulator that counts requests per service
/// and action and can throttle one service: every request of that service
/// is answered with the throttling error AWS sends (`Throttling` for query
/// APIs, `SlowDown` for S3). One request per connection.
pub struct FaultProxy {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || {
                            let _ = proxy_one(conn, upstream_port, &st);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(FaultProxy { port, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Throttle every request of `service` (None: forward everything).
    pub fn throttle(&self, service: Option<&str>) {
        self.state.lock().expect("proxy state").throttle = service.map(String::from);
    }

    /// Requests seen for one (service, action) so far.
    pub fn count(&self, service: &str, action: &str) -> usize {
        self.state
            .lock()
            .expect("proxy state")
            .seen
            .get(&(service.to_string(), action.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn proxy_one(
    mut conn: TcpStream,
    upstream: u16,
    state: &std::sync::Mutex<ProxyState>,
) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    // The signing service names the API: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
    let service = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1).map(String::from))
        .and_then(|c| c.split('/').nth(3).map(String::from))
        .unwrap_or_default();
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let action = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(String::from)
        .unwrap_or_else(|| {
            // S3: method and sub-resource, e.g. "GET ?versioning".
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let sub = query
                .split('&')
                .next()
                .unwrap_or("")
                .split('=')
                .next()
                .unwrap_or("");
            format!("{method} ?{sub}")
        });
    let throttled = {
        let mut st = state.lock().expect("proxy state");
        *st.seen.entry((service.clone(), action)).or_default() += 1;
        st.throttle.as_deref() == Some(service.as_str())
    };
    if throttled {
        let (status, xml) = if service == "s3" {
            ("503 Slow Down", "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_string())
        } else {
            ("400 Bad Request", "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>".to_string())
        };
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    let forwarded: String = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    up.write_all(forwarded.as_bytes())?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&buf[head_end..])?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Tell the client this connection ends with the response.
    let resp_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    let resp_head = String::from_utf8_lossy(&resp[..resp_end]).to_string();
    let mut out: String = resp_head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(&resp[resp_end..])?;
    Ok(())
}

/// A webhook receiver on loopback: records the body of every POST and
/// answers 200. Stopping it closes the port (deliveries fail with
/// "connection refused"); it can start again on the same port.
pub struct Receiver {
    pub port: u16,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start(port: u16) -> Result<Receiver> {
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut r = Receiver {
            port,
            received,
            stop: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            thread: None,
        };
        r.listen()?;
        Ok(r)
    }

    fn listen(&mut self) -> Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))?;
        listener.set_nonblocking(true)?;
        self.stop.store(false, std::sync::atomic::Ordering::SeqCst);
        let (stop, received) = (self.stop.clone(), self.received.clone());
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = receive_one(conn, &received);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
        Ok(())
    }

    /// Closes the port.
    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Opens the same port again.
    pub fn restart(&mut self) -> Result<()> {
        self.listen()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.received.lock().expect("receiver lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn receive_one(mut conn: TcpStream, received: &std::sync::Mutex<Vec<Value>>) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    // One or more requests on a kept-alive connection.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
        received.lock().expect("receiver lock").push(body);
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        buf.drain(..head_end + length);
    }
}
