//! Hot deploy in the library: a `Replaceable` served under load is replaced;
//! no call fails, new connections get the new version, open ones keep theirs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasm_rpyc::connect;
use wasm_rpyc::replace::Replaceable;
use wasm_rpyc_tests::{TESTBED, calculator, guest, runtime, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_component_serves_new_connections_and_drops_no_call() {
    let runtime = runtime();
    let slot = Replaceable::new(calculator(&runtime).await);
    let host = serve(slot.clone()).await;
    let addr = host.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let stop = Arc::clone(&stop);
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
                }
            }
            (calls, fresh_names)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
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
