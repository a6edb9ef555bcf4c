//! A plain Python class (`tests/python/plain/rich.py`, built by
//! `wasm-rpyc build` in `services/build.sh`) with the Rust client: dynamic
//! values, the service's objects as `RemoteObject`s, exposed attributes,
//! the access policy, custom exceptions and releases.

use wasm_rpyc::{Error, Exception, IntoValue, RemoteObject, ServiceComponent, Value, connect};
use wasm_rpyc_tests::{Host, polyglot, runtime, serve};

async fn rich() -> Host {
    let path = polyglot("python", "rich");
    let component = ServiceComponent::load(&runtime(), &path)
        .await
        .unwrap_or_else(|e| panic!("{} (run `bash services/build.sh`): {e}", path.display()));
    serve(component).await
}

fn remote(result: Result<Value, Error>) -> Exception {
    match result {
        Err(Error::Remote(exception)) => exception,
        other => panic!("expected the service's exception, got {other:?}"),
    }
}

#[tokio::test]
async fn a_plain_python_class_takes_any_values_and_binds_as_python() {
    let host = rich().await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    assert_eq!(root.call::<String>("add", ("a", "b")).await.unwrap(), "ab");
    assert_eq!(root.call::<f64>("add", (1.5, 2)).await.unwrap(), 3.5);
    assert_eq!(root.call::<i64>("add", (4, 7)).await.unwrap(), 11);
    let greeting: (String, String, Vec<i64>, Vec<Value>) = root
        .call_kw("greet", ("ann",), [("greeting", "hi".into_value())])
        .await
        .unwrap();
    assert_eq!((greeting.0.as_str(), greeting.1.as_str()), ("hi", "ann"));
    let error = remote(root.call("add", (1,)).await);
    assert_eq!(error.type_name, "TypeError");
    assert!(
        error
            .message
            .contains("missing 1 required positional argument: 'b'"),
        "{error}"
    );
    assert_eq!(root.get_attr::<i64>("the_answer").await.unwrap(), 43);
    assert_eq!(root.get_attr::<String>("prop").await.unwrap(), "property");
    let error = remote(root.get_attr("_private").await);
    assert_eq!(
        (error.type_name.as_str(), error.message.as_str()),
        ("AttributeError", "cannot access '_private'")
    );
    let error = remote(root.call("fail", ()).await);
    assert_eq!(
        (error.type_name.as_str(), error.message.as_str()),
        ("rich.Fault", "it failed")
    );
}

#[tokio::test]
async fn the_services_objects_are_remote_objects() {
    let host = rich().await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let numbers: RemoteObject = root.call("numbers", (5,)).await.unwrap();
    assert_eq!(numbers.class(), "builtins.list");
    assert_eq!(numbers.call::<i64>("__len__", ()).await.unwrap(), 5);
    assert_eq!(numbers.call::<i64>("__getitem__", (2,)).await.unwrap(), 2);
    let items: RemoteObject = root.call("items", ()).await.unwrap();
    assert!(items.call::<bool>("__contains__", ("a",)).await.unwrap());
    let error = remote(items.call("keys", ()).await);
    assert_eq!(error.message, "cannot access 'keys'");

    let tracked: RemoteObject = root.call("tracked", (5,)).await.unwrap();
    assert_eq!(tracked.class(), "rich.Tracked");
    assert_eq!(tracked.call::<i64>("value", ()).await.unwrap(), 5);
    assert_eq!(tracked.call::<i64>("exposed_value", ()).await.unwrap(), 5);
    let error = remote(tracked.call("hidden", ()).await);
    assert_eq!(error.type_name, "AttributeError");
    let error = remote(tracked.get_attr("__dict__").await);
    assert_eq!(error.message, "cannot access '__dict__'");
    // Passed back, an object is the service's own.
    let same: bool = root
        .call("same", (tracked.clone(), tracked.clone()))
        .await
        .unwrap();
    assert!(same);

    let point: RemoteObject = root.call("Point", (3, 4)).await.unwrap();
    assert_eq!(point.call::<i64>("norm2", ()).await.unwrap(), 25);
    assert_eq!(point.get_attr::<String>("kind").await.unwrap(), "point");
    let double: RemoteObject = root.call("function", ()).await.unwrap();
    assert_eq!(double.invoke::<i64>((21,)).await.unwrap(), 42);
}

#[tokio::test]
async fn objects_the_client_drops_are_finalised_in_the_guest() {
    let host = rich().await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let before: i64 = root.call("finalised", ()).await.unwrap();
    // More than the 10,000 a connection may hold at once.
    for n in 0..12_000_i64 {
        let tracked: RemoteObject = root.call("tracked", (n,)).await.unwrap();
        assert_eq!(tracked.call::<i64>("value", ()).await.unwrap(), n);
    }
    let after: i64 = root.call("finalised", ()).await.unwrap();
    assert!(after - before >= 11_990, "{before} then {after}");
}
