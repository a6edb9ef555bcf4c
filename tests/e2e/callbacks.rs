//! The seed's callbacks with the Rust client: a Rust closure passed as an
//! argument reaches the wasm service as a netref it calls back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasm_rpyc::{Exception, Function, Value, connect};
use wasm_rpyc_tests::{example, runtime, serve};

#[tokio::test]
async fn a_closure_is_called_back_and_released() {
    let host = serve(example(&runtime(), "callback").await).await;
    let conn = connect(host.addr).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let foofunc = Function::new(move |_args| {
        counted.fetch_add(1, Ordering::Relaxed);
        async { Ok(Value::Str("foo".into())) }
    });
    let result: String = conn.root().call("bar", (&foofunc,)).await.unwrap();
    assert_eq!(result, "foobar");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    conn.ping().await.unwrap(); // the release follows the reply
    assert_eq!(conn.lent_objects(), 0, "the host released the callback");

    let failing = Function::new(|_| async { Err(Exception::new("KeyError", "inside")) });
    let error = conn
        .root()
        .call::<String>("bar", (failing,))
        .await
        .unwrap_err();
    assert_eq!(
        error.exception(),
        Some(&Exception::new("KeyError", "inside"))
    );
}

#[tokio::test]
async fn a_callback_may_ask_the_busy_service_what_does_not_enter_it() {
    let host = serve(example(&runtime(), "callback").await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let asks_name = Function::new(move |_| {
        let root = root.clone();
        async move {
            let name: String = root
                .call("get_service_name", ())
                .await
                .map_err(to_exception)?;
            Ok(Value::Str(name))
        }
    });
    let result: String = conn.root().call("bar", (asks_name,)).await.unwrap();
    assert_eq!(result, "SERVERbar");

    let root = conn.root();
    let reenters = Function::new(move |_| {
        let root = root.clone();
        async move {
            let inner = Function::new(|_| async { Ok(Value::Str("inner".into())) });
            let result: String = root.call("bar", (inner,)).await.map_err(to_exception)?;
            Ok(Value::Str(result))
        }
    });
    let error = conn
        .root()
        .call::<String>("bar", (reenters,))
        .await
        .unwrap_err();
    assert!(
        error
            .exception()
            .unwrap()
            .message
            .contains("the service is busy"),
        "{error}"
    );
}

#[tokio::test]
async fn twelve_thousand_callbacks_through_tables_bounded_at_ten_thousand() {
    let host = serve(example(&runtime(), "callback").await).await;
    let conn = connect(host.addr).await.unwrap();
    for _ in 0..12_000 {
        let x = Function::new(|_| async { Ok(Value::Str("x".into())) });
        assert_eq!(
            conn.root().call::<String>("bar", (x,)).await.unwrap(),
            "xbar"
        );
    }
    conn.ping().await.unwrap();
    assert_eq!(conn.lent_objects(), 0);
}

fn to_exception(error: wasm_rpyc::Error) -> Exception {
    match error.exception() {
        Some(exception) => exception.clone(),
        None => Exception::new("RuntimeError", error.to_string()),
    }
}

#[tokio::test]
async fn a_callback_lent_to_a_call_that_is_refused_is_released() {
    let host = serve(wasm_rpyc_tests::guest(&runtime(), wasm_rpyc_tests::TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let func = Function::new(|_| async { Ok(Value::None) });
    // `func` converts (a netref), then `5` does not: the call is refused.
    let error = conn
        .root()
        .call::<Value>("call_with", (&func, 5))
        .await
        .unwrap_err();
    assert_eq!(
        error.exception().map(|e| e.type_name.as_str()),
        Some("TypeError")
    );
    conn.ping().await.unwrap();
    assert_eq!(conn.lent_objects(), 0, "the host gave the netref back");
}
