//! Names, aliases and the per-connection hooks.

use wasm_rpyc::connect;
use wasm_rpyc_tests::{TESTBED, guest, runtime, serve};

#[tokio::test]
async fn a_component_declares_its_aliases() {
    let component = guest(&runtime(), TESTBED).await;
    assert_eq!(component.aliases(), ["TESTBED", "BENCH"]);
    let renamed = component
        .clone()
        .with_aliases(&["calc".into(), "other".into()]);
    assert_eq!(renamed.aliases(), ["CALC", "OTHER"]);

    let host = serve(component).await;
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(
        conn.root()
            .call::<String>("get_service_name", ())
            .await
            .unwrap(),
        "TESTBED"
    );
    let aliases: Vec<String> = conn.root().call("get_service_aliases", ()).await.unwrap();
    assert_eq!(aliases, ["TESTBED", "BENCH"]);
}

#[tokio::test]
async fn every_connection_has_its_own_instance_and_runs_on_connect_once() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let a = connect(host.addr).await.unwrap();
    let b = connect(host.addr).await.unwrap();
    for _ in 0..3 {
        a.root().call::<u32>("counter", ()).await.unwrap();
    }
    assert_eq!(
        b.root().call::<u32>("counter", ()).await.unwrap(),
        1,
        "b's state is its own"
    );
    assert_eq!(a.root().call::<u32>("connects", ()).await.unwrap(), 1);
    assert_eq!(b.root().call::<u32>("connects", ()).await.unwrap(), 1);
}

#[tokio::test]
async fn on_disconnect_runs_once_when_the_connection_ends() {
    let logs = wasm_rpyc_tests::capture_logs();
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let tag = format!("hooks-test-{}", std::process::id());
    conn.root()
        .call::<()>("set_tag", (tag.as_str(),))
        .await
        .unwrap();
    let line = format!("on-disconnect {tag}");
    assert_eq!(logs.count(&line), 0, "not before the connection ends");
    conn.close().await;
    logs.wait_for(&line).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        logs.count(&line),
        1,
        "on-disconnect ran once, and its output reached the log"
    );
}
