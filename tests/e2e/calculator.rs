//! The seed's calculator over a real socket with the Rust client.

use futures::future::join_all;
use wasm_rpyc::{Error, Value, connect};
use wasm_rpyc_tests::{calculator, runtime, serve};

fn remote(result: Result<impl std::fmt::Debug, Error>) -> wasm_rpyc::Exception {
    match result {
        Err(Error::Remote(exception)) => exception,
        other => panic!("expected a remote exception, got {other:?}"),
    }
}

#[tokio::test]
async fn every_method_answers_as_the_seed_says() {
    let host = serve(calculator(&runtime()).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    assert_eq!(root.call::<i64>("add", (4, 7)).await.unwrap(), 11);
    assert_eq!(root.call::<i64>("sub", (4, 7)).await.unwrap(), -3);
    assert_eq!(root.call::<i64>("mul", (4, 7)).await.unwrap(), 28);
    assert_eq!(root.call::<f64>("div", (7, 2)).await.unwrap(), 3.5);
    assert_eq!(root.call::<f64>("div", (1.5, 0.5)).await.unwrap(), 3.0);
    assert_eq!(root.call::<i64>("exposed_add", (1, 2)).await.unwrap(), 3);
    let kw = root.call_kw::<i64>("sub", (), [("b", Value::Int(1)), ("a", Value::Int(10))]);
    assert_eq!(kw.await.unwrap(), 9);
}

#[tokio::test]
async fn errors_keep_their_python_types() {
    let host = serve(calculator(&runtime()).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();

    let e = remote(root.call::<f64>("div", (4, 0)).await);
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("ZeroDivisionError", "division by zero")
    );

    // `foo` exists but is not exposed: exactly the error of a missing name.
    let foo = remote(root.call::<()>("foo", ()).await);
    let missing = remote(root.call::<()>("nope", ()).await);
    assert_eq!(foo.type_name, "AttributeError");
    assert_eq!(foo.message, "cannot access 'foo'");
    assert_eq!(missing.message, "cannot access 'nope'");

    let e = remote(root.call::<i64>("add", (1,)).await);
    assert!(
        e.is("TypeError") && e.message.contains("missing 1 required argument: 'b'"),
        "{e}"
    );
    let e = remote(root.call::<i64>("add", (1, 2, 3)).await);
    assert!(
        e.is("TypeError") && e.message.contains("takes 2 positional arguments but 3"),
        "{e}"
    );
    let e = remote(root.call::<i64>("add", ("4", 7)).await);
    assert_eq!(
        e.message,
        "add() argument 'a': expected int (s64), got str '4'"
    );
    assert!(e.is("TypeError"));
    let e = remote(
        root.call_kw::<i64>("add", (1,), [("c", Value::Int(2))])
            .await,
    );
    assert!(
        e.is("TypeError") && e.message.contains("unexpected keyword argument 'c'"),
        "{e}"
    );
    let e = remote(
        root.call_kw::<i64>("add", (1, 2), [("a", Value::Int(2))])
            .await,
    );
    assert!(
        e.is("TypeError") && e.message.contains("multiple values for argument 'a'"),
        "{e}"
    );

    let e = remote(root.call::<i64>("add", (1i128 << 70, 1)).await);
    assert!(e.is("OverflowError"), "{e}");
    let e = remote(root.call::<i64>("add", (i64::MAX, 1)).await);
    assert!(e.is("OverflowError"), "the guest's own overflow: {e}");

    // The connection is still good after every error.
    assert_eq!(root.call::<i64>("add", (4, 7)).await.unwrap(), 11);
}

#[tokio::test]
async fn the_root_names_itself() {
    let host = serve(calculator(&runtime()).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    assert_eq!(
        root.call::<String>("get_service_name", ()).await.unwrap(),
        "CALCULATOR"
    );
    let aliases: Vec<String> = root.call("get_service_aliases", ()).await.unwrap();
    assert_eq!(aliases, ["CALCULATOR"]);
    conn.ping().await.unwrap();
}

#[tokio::test]
async fn a_result_of_the_wrong_type_is_a_client_side_error() {
    let host = serve(calculator(&runtime()).await).await;
    let conn = connect(host.addr).await.unwrap();
    let result = conn.root().call::<String>("add", (4, 7)).await;
    assert!(
        matches!(result, Err(Error::UnexpectedResult(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_in_flight_from_many_tasks_share_one_connection() {
    let host = serve(calculator(&runtime()).await).await;
    let conn = connect(host.addr).await.unwrap();
    let tasks: Vec<_> = (0..16i64)
        .map(|task| {
            let root = conn.root();
            tokio::spawn(async move {
                let calls = (0..50i64).map(|i| {
                    let root = root.clone();
                    async move { (i, root.call::<i64>("mul", (task, i)).await.unwrap()) }
                });
                for (i, product) in join_all(calls).await {
                    assert_eq!(product, task * i);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(conn.calls_in_flight(), 0);
}
