//! Graceful shutdown: the listener stops accepting, a call in progress
//! finishes and gets its reply, `on-disconnect` runs, and the server's task
//! ends within the grace period.

use std::time::{Duration, Instant};

use wasm_rpyc::{Server, ServerConfig, connect};
use wasm_rpyc_tests::{TESTBED, capture_logs, guest, runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_progress_finishes_then_the_server_stops() {
    let logs = capture_logs();
    let server = Server::bind(
        "127.0.0.1:0",
        guest(&runtime(), TESTBED).await,
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let conn = connect(addr).await.unwrap();
    let tag = format!("shutdown-test-{}", std::process::id());
    conn.root()
        .call::<()>("set_tag", (tag.as_str(),))
        .await
        .unwrap();
    let root = conn.root();
    let working = tokio::spawn(async move { root.call::<u32>("work", (600,)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;

    let started = Instant::now();
    stop.send(()).unwrap();
    let result = working.await.unwrap();
    assert_eq!(result.unwrap(), 600, "the call in progress got its reply");
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server stopped within the grace period")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        logs.count(&format!("on-disconnect {tag}")),
        1,
        "on-disconnect ran"
    );
    assert!(conn.is_closed());
    assert!(connect(addr).await.is_err(), "no longer accepting");
}
