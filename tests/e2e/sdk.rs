//! A service written with the Rust SDK's `#[service]`: what the attribute
//! generates works end to end.

use wasm_rpyc::{Function, Value, connect};
use wasm_rpyc_tests::{SDK_SERVICE, capture_logs, guest, runtime, serve};

#[tokio::test]
async fn state_lives_per_connection_and_the_hooks_run() {
    let logs = capture_logs();
    let host = serve(guest(&runtime(), SDK_SERVICE).await).await;
    let a = connect(host.addr).await.unwrap();
    let b = connect(host.addr).await.unwrap();
    for expected in 1..=3 {
        assert_eq!(a.root().call::<u32>("count", ()).await.unwrap(), expected);
    }
    assert_eq!(b.root().call::<u32>("count", ()).await.unwrap(), 1);
    assert!(
        a.root().call::<bool>("connected", ()).await.unwrap(),
        "on_connect ran on the connection's own state"
    );
    a.close().await;
    logs.wait_for("disconnecting after 3 calls").await;
    assert_eq!(
        logs.count("disconnecting after 3 calls"),
        1,
        "on_disconnect saw the state"
    );
}

#[tokio::test]
async fn names_parameters_and_errors_follow_the_signatures() {
    let host = serve(guest(&runtime(), SDK_SERVICE).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let aliases: Vec<String> = root.call("get_service_aliases", ()).await.unwrap();
    assert_eq!(aliases, ["TALLY", "COUNTER"]);

    let words = vec!["a".to_owned(), "b".to_owned()];
    assert_eq!(
        root.call::<String>("join", (words.clone(),)).await.unwrap(),
        "a b"
    );
    let joined: String = root
        .call_kw("join", (words,), [("sep", Value::Str("-".into()))])
        .await
        .unwrap();
    assert_eq!(joined, "a-b");
    let pair: (char, i32) = root.call("pair", ((5, 'x'),)).await.unwrap();
    assert_eq!(pair, ('x', 5));
    let nested = Value::Tuple(vec![
        Value::Int(1),
        Value::Tuple(vec![Value::Str("two".into()), Value::Bytes(vec![3])]),
        Value::FrozenSet(vec![Value::Float(0.5)]),
        Value::BigInt("1".repeat(45)), // beyond i128
        Value::None,
    ]);
    assert_eq!(
        root.call::<Value>("echo", (nested.clone(),)).await.unwrap(),
        nested
    );

    let raised = |error: wasm_rpyc::Error| error.exception().map(|e| e.type_name.clone());
    let error = root
        .call::<()>("fail", ("KeyError", "missing"))
        .await
        .unwrap_err();
    assert_eq!(raised(error).as_deref(), Some("KeyError"));
    let error = root.call::<u32>("secret", ()).await.unwrap_err();
    assert_eq!(
        raised(error).as_deref(),
        Some("AttributeError"),
        "only exposed_ methods are exported"
    );
    let error = root.call::<String>("join", (1,)).await.unwrap_err();
    assert_eq!(raised(error).as_deref(), Some("TypeError"));
}

#[tokio::test]
async fn a_borrowed_netref_calls_back_and_is_released_with_the_reply() {
    let host = serve(guest(&runtime(), SDK_SERVICE).await).await;
    let conn = connect(host.addr).await.unwrap();
    let double = Function::new(|args: Vec<Value>| async move {
        match args.as_slice() {
            [Value::Int(n)] => Ok(Value::Int(n * 2)),
            other => panic!("called with {other:?}"),
        }
    });
    let result: i64 = conn.root().call("apply", (&double, 21)).await.unwrap();
    assert_eq!(result, 42);
    conn.ping().await.unwrap();
    assert_eq!(conn.lent_objects(), 0);
}
