//! Hot deploy in the library: a `Replaceable` served under load is replaced;
//! no call fails, new connections get the new version, open ones keep theirs.
//! A component served from a file follows the file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wasm_rpyc::connect;
use wasm_rpyc::replace::{Loader, Replaceable, Watched, WatchedFile, keep_current};
use wasm_rpyc_tests::{
    SDK_SERVICE, SETTLE, TESTBED, calculator, eventually, guest, runtime, serve,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_component_serves_new_connections_and_drops_no_call() {
    let runtime = runtime();
    let slot = Replaceable::new(calculator(&runtime).await);
    let host = serve(slot.clone()).await;
    let addr = host.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // How many clients have met the old version on a fresh connection.
    let met_old = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, met_old) = (Arc::clone(&stop), Arc::clone(&met_old));
        clients.push(tokio::spawn(async move {
            let kept = connect(addr).await.unwrap();
            let (mut calls, mut fresh_names) = (0u32, Vec::<String>::new());
            // Until told to stop, and a fresh connection has met the new version.
            let met_new = |names: &[String]| names.last().is_some_and(|n| n == "TESTBED");
            while !(stop.load(Ordering::Relaxed) && met_new(&fresh_names)) {
                calls += 1;
                let sum: i64 = kept
                    .root()
                    .call("add", (calls, 1))
                    .await
                    .expect("no call fails");
                assert_eq!(sum, i64::from(calls) + 1);
                if calls % 10 == 0 {
                    let fresh = connect(addr).await.expect("no connect fails");
                    let name: String = fresh.root().call("get_service_name", ()).await.unwrap();
                    fresh_names.push(name);
                    if fresh_names.len() == 1 {
                        met_old.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (calls, fresh_names)
        }));
    }
    // Every client meets the old version first (each would take 300 ms on
    // an idle machine; a loaded one may take far longer).
    assert!(
        eventually(|| met_old.load(Ordering::Relaxed) >= 8).await,
        "the clients never got going"
    );
    slot.replace(guest(&runtime, TESTBED).await);
    assert_eq!(slot.current().aliases()[0], "TESTBED");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        let finished = tokio::time::timeout(Duration::from_secs(60), client);
        let (calls, names) = finished.await.expect("in time").expect("no client failed");
        total += calls;
        assert_eq!(names.first().map(String::as_str), Some("CALCULATOR"));
    }
    assert!(total > 100, "{total} calls");
    let fresh = connect(addr).await.unwrap();
    assert_eq!(fresh.root().call::<i32>("echo_s32", (3,)).await.unwrap(), 3);
}

/// Whether a fresh connection to `addr` finds the testbed's `echo_s32`.
async fn serves_testbed(addr: SocketAddr) -> bool {
    let fresh = connect(addr).await.unwrap();
    fresh.root().call::<i32>("echo_s32", (3,)).await.is_ok()
}

/// Waits (at most [`SETTLE`]: following the file compiles it, seconds on a
/// loaded machine) until a fresh connection finds the testbed or not.
async fn until_serving_testbed(addr: SocketAddr, wanted: bool) {
    let deadline = Instant::now() + SETTLE;
    while serves_testbed(addr).await != wanted {
        assert!(
            Instant::now() < deadline,
            "still not serving the expected version"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_served_file_is_followed_kept_when_broken_and_reloaded_on_demand() {
    let dir = std::env::temp_dir().join(format!("wasm-rpyc-keep-current-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("served.wasm");
    std::fs::copy(TESTBED, &file).unwrap();
    let loader = Loader::new(runtime());
    let slot = Replaceable::new(loader.load(&file).await.unwrap());
    let host = serve(slot.clone()).await;
    let (reload, stop) = (Arc::new(Notify::new()), CancellationToken::new());
    let watched = Watched::new(
        WatchedFile::new(&file),
        slot.clone(),
        host.addr.port(),
        loader,
    );
    let watch = Some(Duration::from_millis(20));
    let keeping = tokio::spawn(keep_current(
        vec![watched],
        watch,
        Arc::clone(&reload),
        None,
        stop.clone(),
    ));
    assert!(serves_testbed(host.addr).await);

    std::fs::write(&file, b"not a component").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        serves_testbed(host.addr).await,
        "a broken file leaves the version served"
    );

    std::fs::copy(SDK_SERVICE, &file).unwrap();
    until_serving_testbed(host.addr, false).await;

    // Replaced by hand, then reloaded from the (unchanged) file on demand.
    slot.replace(guest(&runtime(), TESTBED).await);
    assert!(serves_testbed(host.addr).await);
    reload.notify_one();
    until_serving_testbed(host.addr, false).await;

    stop.cancel();
    keeping.await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
