//! Replicated controllers on a three-member etcd cluster, with real
//! processes on loopback: failover, fencing, store outages and admin calls
//! on any replica.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use holdfast_tests::*;
use serde_json::Value;

const ENV: &str = "prod";
const TTL: &str = "4s";

// Fields drop in order: processes first (printing their logs if the test
// failed), the directory holding the logs last.
struct Fleet {
    agent: Agent,
    controllers: Vec<Controller>,
    moto: Moto,
    etcd: EtcdCluster,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// `replicas` controllers; the agent knows `agent_knows` of them.
    fn start(replicas: usize, agent_knows: &[usize]) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let etcd = EtcdCluster::start(3).expect("etcd cluster");
        let moto = Moto::start().expect("moto");
        let controllers: Vec<Controller> = (0..replicas)
            .map(|i| {
                Controller::start_replica(&etcd.urls(), dir.path(), &format!("replica-{i}"), TTL)
                    .expect("controller")
            })
            .collect();
        let urls: Vec<&str> = agent_knows
            .iter()
            .map(|i| controllers[*i].url.as_str())
            .collect();
        let agent = Agent::start(&urls, &moto.url, &[REGION], "1s", dir.path()).expect("agent");
        Fleet {
            agent,
            controllers,
            moto,
            etcd,
            dir,
        }
    }

    /// A CLI call on the first replica that is alive (not `avoid`).
    fn json_on(&self, i: usize, args: &[&str]) -> Value {
        cli_json(&self.controllers[i].url, args)
    }

    fn decider(&self, via: usize) -> Option<String> {
        self.json_on(via, &["env", "show", ENV])["decider"]
            .as_str()
            .map(String::from)
    }

    fn index_of(&self, id: &str) -> usize {
        self.controllers
            .iter()
            .position(|c| c.id == id)
            .expect("a known replica")
    }

    fn drift(&self, via: usize) -> Vec<Value> {
        self.json_on(via, &["drift", "list", ENV, "--all"])
            .as_array()
            .cloned()
            .unwrap()
    }

    fn remediations(&self, via: usize) -> Vec<Value> {
        self.json_on(via, &["remediation", "list", ENV])
            .as_array()
            .cloned()
            .unwrap()
    }

    async fn setup_group(&self, via: usize) -> (aws_sdk_ec2::Client, String) {
        let ec2 = ec2_client(&self.moto.url, REGION).await;
        let sg = create_group(&ec2, "web", vec![tcp(443, "0.0.0.0/0")]).await;
        self.json_on(
            via,
            &[
                "env",
                "create",
                ENV,
                "--account",
                ACCOUNT,
                "--regions",
                REGION,
            ],
        );
        wait_for("a decider", Duration::from_secs(30), || self.decider(via));
        self.json_on(via, &["baseline", "create", ENV]);
        (ec2, sg)
    }
}

fn healed_count(drift: &[Value]) -> usize {
    drift.iter().filter(|d| d["status"] == "healed").count()
}

/// The deciding replica is killed (-9) while a remediation is in flight:
/// the agent is connected elsewhere within seconds, the remediation is
/// applied exactly once (journal and cloud agree) and no drift is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_decider_mid_enforcement_applies_the_remediation_once() {
    let mut f = Fleet::start(3, &[0, 1, 2]);
    let (ec2, sg) = f.setup_group(0).await;
    let owner = f.index_of(&f.decider(0).unwrap());
    let other = (owner + 1) % 3;
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the drift", Duration::from_secs(30), || {
        (f.drift(other).len() == 1).then_some(())
    });

    // Hold the agent so the remediation is sent but not yet executed, then
    // kill the decider while it waits for the outcome.
    f.agent.proc.pause();
    f.json_on(other, &["enforcement", "set", ENV, "enforce"]);
    wait_for("a sent remediation", Duration::from_secs(20), || {
        f.remediations(other)
            .iter()
            .any(|r| r["status"] == "sent")
            .then_some(())
    });
    f.controllers[owner].proc.kill9();
    let killed_at = Instant::now();
    f.agent.proc.resume();

    let new_owner = wait_for("another replica to decide", Duration::from_secs(30), || {
        f.decider(other).filter(|d| *d != f.controllers[owner].id)
    });
    eprintln!("takeover by {new_owner} after {:?}", killed_at.elapsed());
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "failover took {:?}",
        killed_at.elapsed()
    );

    wait_for("the heal", Duration::from_secs(40), || {
        (healed_count(&f.drift(other)) == 1).then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    let drift = f.drift(other);
    assert_eq!(
        drift.len(),
        1,
        "no drift record missing or duplicated: {drift:#?}"
    );
    // Exactly one remediation, applied, with the calls the cloud shows.
    let rems = wait_for("the journal to settle", Duration::from_secs(30), || {
        let r = f.remediations(other);
        r.iter().all(|r| r["status"] != "sent").then_some(r)
    });
    let applied: Vec<&Value> = rems.iter().filter(|r| r["status"] == "applied").collect();
    assert_eq!(applied.len(), 1, "applied exactly once: {rems:#?}");
    assert_eq!(
        applied[0]["actions"],
        serde_json::json!(["RevokeSecurityGroupIngress tcp 22-22 0.0.0.0/0"])
    );
    // The killed replica's remediation either reached the agent (and is
    // the applied one, its outcome recorded by the successor) or did not
    // (and is abandoned, having made no call): never applied twice.
    for r in rems.iter().filter(|r| r["status"] != "applied") {
        assert_eq!(
            r["status"], "abandoned",
            "no other remediation ran: {rems:#?}"
        );
        assert_eq!(
            r["actions"],
            serde_json::json!([]),
            "an abandoned remediation made no call: {rems:#?}"
        );
    }
}

/// A decider paused (SIGSTOP) past its lease TTL, then resumed, writes and
/// sends nothing as a decider afterwards; another replica decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_decider_is_fenced_out_after_it_resumes() {
    let f = Fleet::start(3, &[0, 1, 2]);
    let (ec2, sg) = f.setup_group(0).await;
    f.json_on(0, &["enforcement", "set", ENV, "enforce"]);
    let paused_id = f.decider(0).unwrap();
    let paused = f.index_of(&paused_id);
    let other = (paused + 1) % 3;

    f.controllers[paused].proc.pause();
    let successor = wait_for("another replica to decide", Duration::from_secs(40), || {
        f.decider(other).filter(|d| *d != paused_id)
    });
    f.controllers[paused].proc.resume();
    let resumed_at = SystemTime::now();

    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for("the heal", Duration::from_secs(30), || {
        (healed_count(&f.drift(other)) == 1).then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    std::thread::sleep(Duration::from_secs(3));

    let after = |ts: &Value| {
        let t = time::OffsetDateTime::parse(
            ts.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        SystemTime::from(t) > resumed_at
    };
    for d in f.drift(other) {
        if after(&d["updated_at"]) {
            assert_eq!(d["decided_by"], successor.as_str(), "{d:#}");
        }
    }
    let rems = f.remediations(other);
    assert_eq!(rems.len(), 1, "{rems:#?}");
    assert_eq!(rems[0]["decided_by"], successor.as_str());
    assert_eq!(rems[0]["status"], "applied");
    assert_eq!(
        f.decider(other).as_deref(),
        Some(successor.as_str()),
        "the resumed replica did not take back the account"
    );
    let log = std::fs::read_to_string(f.dir.path().join(format!("{paused_id}.log"))).unwrap();
    assert!(
        log.contains("lease expired; stopped deciding")
            || log.contains("no longer owns the account"),
        "the paused replica noticed it lost its lease"
    );
}

/// Losing one etcd member does not stop decisions; losing all of them stops
/// every decision and enforcement; when they return, everything resumes and
/// nothing recorded before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_one_etcd_member_and_pause_without_quorum() {
    let mut f = Fleet::start(1, &[0]);
    let (ec2, sg) = f.setup_group(0).await;
    f.json_on(0, &["enforcement", "set", ENV, "enforce"]);

    f.etcd.kill(0);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for(
        "a heal with one member down",
        Duration::from_secs(40),
        || (healed_count(&f.drift(0)) == 1).then_some(()),
    );
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );

    f.etcd.kill(1);
    f.etcd.kill(2);
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(3306, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![
            ("tcp".into(), 443, 443, "0.0.0.0/0".into()),
            ("tcp".into(), 3306, 3306, "0.0.0.0/0".into())
        ],
        "no enforcement without the store"
    );

    for i in 0..3 {
        f.etcd.start_member(i).unwrap();
    }
    for i in 0..3 {
        f.etcd.wait_healthy(i).unwrap();
    }
    wait_for("decisions to resume", Duration::from_secs(60), || {
        let d = cli(
            &f.controllers[0].url,
            &["drift", "list", ENV, "--all", "--output", "json"],
        );
        (d.code == 0 && healed_count(d.json().as_array().unwrap()) == 2).then_some(())
    });
    assert_eq!(
        ingress(&ec2, &sg).await,
        vec![("tcp".into(), 443, 443, "0.0.0.0/0".into())]
    );
    let rems = f.remediations(0);
    assert_eq!(
        rems.iter().filter(|r| r["status"] == "applied").count(),
        2,
        "{rems:#?}"
    );
    assert_eq!(f.drift(0).len(), 2, "both drifts recorded, none lost");
}

/// An admin change made on replica A is acted on by the decider on
/// replica B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_change_on_one_replica_reaches_the_decider_on_another_within_a_second() {
    let f = Fleet::start(2, &[1]);
    let (ec2, sg) = f.setup_group(0).await;
    assert_eq!(
        f.decider(0).as_deref(),
        Some("replica-1"),
        "the agent streams to replica-1"
    );
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(tcp(22, "0.0.0.0/0"))
        .send()
        .await
        .unwrap();
    wait_for(
        "the drift (seen through replica-0)",
        Duration::from_secs(30),
        || (f.drift(0).len() == 1).then_some(()),
    );

    let before = SystemTime::now();
    f.json_on(0, &["enforcement", "set", ENV, "enforce"]);
    let rem = wait_for("the remediation", Duration::from_secs(10), || {
        f.remediations(0).into_iter().next()
    });
    let decided = time::OffsetDateTime::parse(
        rem["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lag = SystemTime::from(decided)
        .duration_since(before)
        .unwrap_or_default();
    eprintln!("replica-1 decided {lag:?} after the change on replica-0");
    assert!(lag < Duration::from_secs(1), "took {lag:?}");
    assert_eq!(rem["decided_by"], "replica-1");
    wait_for("the heal", Duration::from_secs(30), || {
        (healed_count(&f.drift(0)) == 1).then_some(())
    });
}
