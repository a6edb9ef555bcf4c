//! Names, aliases and the per-connection hooks.

use wasm_rpyc::{Service, connect};
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
    let component = guest(&runtime(), TESTBED).await;
    let mut service = component.instance();
    service.on_connect().await.unwrap();
    let count = |v| wasm_rpyc::Value::Int(v);
    assert_eq!(
        service.call("disconnects", vec![], vec![]).await,
        Ok(count(0))
    );
    service.on_disconnect().await;
    assert_eq!(
        service.call("disconnects", vec![], vec![]).await,
        Ok(count(1))
    );
    assert_eq!(service.call("connects", vec![], vec![]).await, Ok(count(1)));
}
