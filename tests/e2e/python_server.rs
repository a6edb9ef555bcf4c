//! The Rust client speaking RPyC to Python's own `ThreadedServer` serving the
//! seed's `CalculatorService` (`tests/python/calculator_server.py`).

use futures::future::join_all;
use wasm_rpyc::{Error, Value, connect_rpyc};
use wasm_rpyc_tests::PythonServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_a_python_threaded_server() {
    let server = PythonServer::start("calculator_server.py");
    let conn = connect_rpyc(server.addr()).await.unwrap();
    let root = conn.root();
    assert_eq!(root.call::<i64>("add", (4, 7)).await.unwrap(), 11);
    assert_eq!(root.call::<f64>("div", (7, 2)).await.unwrap(), 3.5);
    assert_eq!(
        root.call::<String>("add", ("foo", "bar")).await.unwrap(),
        "foobar"
    );
    let big = 10i128.pow(30);
    assert_eq!(
        root.call::<Value>("mul", (big, big)).await.unwrap(),
        Value::BigInt(format!("1{}", "0".repeat(60)))
    );
    let kw = root.call_kw::<i64>("sub", (), [("a", Value::Int(10)), ("b", Value::Int(1))]);
    assert_eq!(kw.await.unwrap(), 9);
    assert_eq!(
        root.call::<String>("get_service_name", ()).await.unwrap(),
        "CALCULATOR"
    );
    conn.ping().await.unwrap();

    let Err(Error::Remote(e)) = root.call::<f64>("div", (4, 0)).await else {
        panic!("div(4, 0) must raise")
    };
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("ZeroDivisionError", "division by zero")
    );
    let traceback = e.traceback.expect("a Python server sends its traceback");
    assert!(traceback.contains("exposed_div"), "{traceback}");
    let Err(Error::Remote(e)) = root.call::<()>("foo", ()).await else {
        panic!("foo must be unreachable")
    };
    assert!(e.is("AttributeError"), "{e}");

    let calls = (0..20i64).map(|i| {
        let root = root.clone();
        async move { root.call::<i64>("mul", (i, i)).await.unwrap() }
    });
    assert_eq!(
        join_all(calls).await,
        (0..20).map(|i| i * i).collect::<Vec<_>>()
    );
    conn.close().await;
}
