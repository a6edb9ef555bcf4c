//! The Rust client of a fleet (`cluster::Cluster`), against a real NATS
//! server (Debian's nats-server, which `tests/run.sh` installs) and hosts
//! that join it: a service found by name on a live host, failover past a
//! host that hangs, and a clear error for a name nobody serves.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasm_rpyc::Error;
use wasm_rpyc::cluster::{
    CONNECT_TIMEOUT, Cluster, ClusterConfig, ClusterError, Fleet, Offer, ServiceRecord, keep_member,
};
use wasm_rpyc_tests::{SETTLE, TESTBED, eventually, guest, runtime, serve};

/// A nats-server with JetStream on a free port; killed when dropped.
struct Nats {
    url: String,
    process: Child,
    store: std::path::PathBuf,
}

impl Nats {
    fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store =
            std::env::temp_dir().join(format!("wasm-rpyc-nats-{}-{port}", std::process::id()));
        let binary = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("nats-server is installed (tests/run.sh installs it)");
        let process = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + SETTLE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(25));
        }
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            process,
            store,
        }
    }

    /// Frequent heartbeats, so that records and views are fresh at once; a
    /// time-to-live far longer than a loaded machine may hold up a
    /// heartbeat or a read of the fleet (at 800 ms, a stall of a moment made
    /// a live host drop out, or the view count as cut off, and `find` fail).
    /// No test here needs a record to age out: a host that leaves deletes
    /// its own.
    fn config(&self, name: &str) -> ClusterConfig {
        let mut config = ClusterConfig::new(&self.url, name);
        config.heartbeat = Duration::from_millis(200);
        config.ttl = Duration::from_secs(10);
        config
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Keeps a host record in the fleet saying `TESTBED` is served on `port`,
/// until the token is cancelled.
async fn member(config: ClusterConfig, port: u16) -> CancellationToken {
    let fleet = Fleet::connect(config).await.unwrap();
    let stop = CancellationToken::new();
    let services = move || Offer {
        services: vec![ServiceRecord {
            aliases: vec!["TESTBED".into()],
            port,
            digest: None,
            open: 0,
            max: 1,
        }],
        ..Offer::default()
    };
    let localhost = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    tokio::spawn(keep_member(fleet, localhost, services, stop.clone()));
    stop
}

#[tokio::test]
async fn a_service_is_found_by_name_and_a_hung_host_is_passed_over() {
    let nats = Nats::start();
    let config = nats.config("rust-client");
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let _serving = member(config.clone(), host.addr.port()).await;
    // A host whose record is fresh but which hangs: its socket accepts
    // connections (the kernel does) and nothing ever answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _hung = member(config.clone(), hung.local_addr().unwrap().port()).await;

    let cluster = Cluster::connect(config).await.unwrap();
    let mut both = false;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let found = cluster
            .view()
            .find("testbed", Duration::from_secs(240))
            .unwrap();
        if found.len() == 2 {
            both = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(both, "both hosts are in the view");
    // Whichever comes first, the call reaches the live host (past the hung
    // one within the connect timeout of a second, not the half minute a call
    // waits for its reply: the bound leaves a loaded machine seconds).
    for _ in 0..6 {
        let started = Instant::now();
        let connection = cluster.connect_by_service("TESTBED").await.unwrap();
        let echoed: String = connection
            .root()
            .call("echo_string", ("hi",))
            .await
            .unwrap();
        assert_eq!(echoed, "hi");
        assert!(
            started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(14),
            "{:?}",
            started.elapsed()
        );
    }
    let Err(nobody) = cluster.connect_by_service("NOBODY").await else {
        panic!("nobody serves NOBODY");
    };
    assert!(
        matches!(nobody, Error::Cluster(ClusterError::NotServed { .. })),
        "{nobody}"
    );
    assert_eq!(
        nobody.to_string(),
        "no live host of the fleet serves NOBODY"
    );
}

#[tokio::test]
async fn a_host_that_leaves_is_no_longer_offered() {
    let nats = Nats::start();
    let config = nats.config("leaving");
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let serving = member(config.clone(), host.addr.port()).await;
    let cluster = Cluster::connect(config).await.unwrap();
    let listed = |cluster: &Cluster| {
        cluster
            .view()
            .find("TESTBED", Duration::from_secs(240))
            .unwrap()
            .len()
    };
    assert!(eventually(|| listed(&cluster) == 1).await, "listed once");
    // An object of a host lives as long as the host: when it goes, a call
    // says the connection is closed.
    let connection = cluster.connect_by_service("TESTBED").await.unwrap();
    let root = connection.root();
    let _: String = root.call("echo_string", ("hi",)).await.unwrap();
    drop(host);
    // The host finishes what it was doing first: calls fail once it is gone.
    let mut gone = None;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        match root.call::<String>("echo_string", ("hi",)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => {
                gone = Some(error);
                break;
            }
        }
    }
    let gone = gone.expect("calls fail once the host is gone");
    assert!(matches!(gone, Error::Closed), "{gone}");
    serving.cancel();
    // Deleted as it leaves (or aged out, had NATS not answered the delete).
    assert!(
        eventually(|| listed(&cluster) == 0).await,
        "gone once its record is deleted"
    );
    assert!(matches!(
        cluster.connect_by_service("TESTBED").await,
        Err(Error::Cluster(ClusterError::NotServed { .. }))
    ));
}
