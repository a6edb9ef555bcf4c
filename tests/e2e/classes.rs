//! The seed's exposed classes with the Rust client over the native protocol:
//! `MyClass(a, b).foo()`, instances passed back, destructors on release.

use wasm_rpyc::connection::Config;
use wasm_rpyc::{RemoteObject, ServerConfig, VoidService, connect, connect_with};
use wasm_rpyc_tests::{SETTLE, example, runtime, serve, serve_with};

#[tokio::test]
async fn construct_call_pass_back_and_release() {
    let host = serve(example(&runtime(), "my-service").await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let aliases: Vec<String> = root.call("get_service_aliases", ()).await.unwrap();
    assert_eq!(aliases, ["FOO", "BAR", "SPAM"]);

    let one: RemoteObject = root.call("MyClass", (1, 2)).await.unwrap();
    assert_eq!(one.class(), "MyClass");
    assert_eq!(one.call::<i64>("foo", ()).await.unwrap(), 3);
    let two: RemoteObject = root.call("MyClass", (10, 20)).await.unwrap();
    let three: RemoteObject = one.call("add", (&two,)).await.unwrap();
    assert_eq!(three.call::<i64>("foo", ()).await.unwrap(), 33);
    assert!(root.call::<bool>("same", (&one, &one)).await.unwrap());
    assert!(!root.call::<bool>("same", (&one, &two)).await.unwrap());
    let error = one.call::<i64>("secret", ()).await.unwrap_err();
    assert!(error.exception().unwrap().is("AttributeError"), "{error}");
    assert_eq!(root.call::<u64>("live_objects", ()).await.unwrap(), 3);

    let copy = one.clone();
    drop(one);
    assert_eq!(
        root.call::<u64>("live_objects", ()).await.unwrap(),
        3,
        "a clone holds the object"
    );
    drop((copy, two, three));
    assert_eq!(root.call::<u64>("live_objects", ()).await.unwrap(), 0);
}

#[tokio::test]
async fn twelve_thousand_objects_through_tables_bounded_at_ten_thousand() {
    let host = serve(example(&runtime(), "my-service").await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    for i in 0..12_000i64 {
        let object: RemoteObject = root.call("MyClass", (i, 1)).await.unwrap();
        assert_eq!(object.call::<i64>("foo", ()).await.unwrap(), i + 1);
    }
    assert_eq!(root.call::<u64>("live_objects", ()).await.unwrap(), 0);
}

#[tokio::test]
async fn an_instance_lends_as_many_objects_as_its_connection_may() {
    let mut config = ServerConfig::default();
    config.connection.max_lent_objects = 10_500;
    let host = serve_with(example(&runtime(), "my-service").await, config).await;
    let mut client = Config::default();
    client.max_held_objects = 10_500;
    let conn = connect_with(host.addr, VoidService::default(), client)
        .await
        .unwrap();
    let root = conn.root();
    // Past the default of 10,000, all held at once.
    let mut held = Vec::new();
    for i in 0..10_500i64 {
        let object: RemoteObject = root.call("MyClass", (i, 1)).await.unwrap();
        held.push(object);
    }
    assert_eq!(held[10_400].call::<i64>("foo", ()).await.unwrap(), 10_401);
    let error = root
        .call::<RemoteObject>("MyClass", (0, 0))
        .await
        .unwrap_err();
    let error = error.exception().unwrap();
    assert!(
        // A full table is not a malformed value: nothing else is said.
        error
            .message
            .starts_with("the service lends as many objects as it may (10500)"),
        "{error}"
    );
    // Released all at once: the releases go a window at a time, so they
    // never fill the connection's queue of 1,000 requests.
    drop(held);
    // 10,500 releases through the guest: seconds on a loaded machine.
    let deadline = std::time::Instant::now() + SETTLE;
    while root.call::<u64>("live_objects", ()).await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "not released");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(root.call::<u64>("live_objects", ()).await.unwrap(), 0);
}
