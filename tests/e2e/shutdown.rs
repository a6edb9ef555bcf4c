//! Graceful shutdown: the listener stops accepting, a call in progress
//! finishes and gets its reply, `on-disconnect` runs, and the server's task
//! ends once its connections have, within the grace period.

use std::time::{Duration, Instant};

use wasm_rpyc::{Server, ServerConfig, Value, connect};
use wasm_rpyc_tests::{HeldCallback, TESTBED, capture_logs, eventually, guest, runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_progress_finishes_then_the_server_stops() {
    let logs = capture_logs();
    // A name of its own: its log lines are told from other tests' servers'.
    let component = guest(&runtime(), TESTBED)
        .await
        .with_aliases(&["shutdown-test".into()]);
    let mut config = ServerConfig::default();
    // Far longer than anything here takes, even on a loaded machine: a
    // server that waited out its grace, rather than stopping once its
    // connections ended, is told apart.
    config.shutdown_grace = Duration::from_secs(60);
    let server = Server::bind("127.0.0.1:0", component, config)
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
    // A call in progress that says so: the service calls this client back,
    // and the callback answers only once the server has begun to stop.
    // (Guessing how long a call takes to reach the service fails on a
    // loaded machine.)
    let callback = HeldCallback::new(Value::Int(600));
    let root = conn.root();
    let lent = callback.function.clone();
    let working = tokio::spawn(async move { root.call::<i64>("call_with", (&lent, &lent)).await });
    callback.entered().await;

    let started = Instant::now();
    stop.send(()).unwrap();
    // The server logs that it stops just before it closes its connections.
    let stopping = ["shutting down", "service=SHUTDOWN-TEST"];
    logs.wait_for_all(&stopping).await;
    assert_eq!(logs.count_all(&stopping), 1, "the server began to stop");
    callback.release();
    let result = working.await.unwrap();
    assert_eq!(result.unwrap(), 600, "the call in progress got its reply");
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("the server stopped once its connection ended, within the grace period")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        logs.count(&format!("on-disconnect {tag}")),
        1,
        "on-disconnect ran"
    );
    // The client sees the close once its task has read it.
    assert!(
        eventually(|| conn.is_closed()).await,
        "the connection was not closed"
    );
    assert!(connect(addr).await.is_err(), "no longer accepting");
}
