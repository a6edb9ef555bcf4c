//! Every WIT type a service may use, converted both ways by the export's own
//! signature.

use wasm_rpyc::{Error, Exception, IntoValue, RemoteObject, Value, connect};
use wasm_rpyc_tests::{TESTBED, guest, runtime, serve};

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

fn t(items: Vec<Value>) -> Value {
    Value::Tuple(items)
}

async fn echo(root: &RemoteObject, kind: &str, value: Value) -> Result<Value, Exception> {
    match root.call::<Value>(&format!("echo_{kind}"), (value,)).await {
        Ok(value) => Ok(value),
        Err(Error::Remote(exception)) => Err(exception),
        Err(other) => panic!("echo_{kind}: {other}"),
    }
}

/// Echoes `value` through `echo_<kind>` and expects `expected` back.
async fn round_trip(root: &RemoteObject, kind: &str, value: Value, expected: Value) {
    assert_eq!(echo(root, kind, value).await, Ok(expected), "echo_{kind}");
}

/// Sends `value` to `echo_<kind>` and expects an exception of `type_name`.
async fn refused(root: &RemoteObject, kind: &str, value: Value, type_name: &str) -> String {
    let exception = echo(root, kind, value.clone())
        .await
        .expect_err(&format!("echo_{kind}({value}) must fail"));
    assert_eq!(
        exception.type_name, type_name,
        "echo_{kind}({value}): {exception}"
    );
    exception.message
}

#[tokio::test]
async fn scalars_round_trip_with_range_checks() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    round_trip(&root, "bool", Value::Bool(true), Value::Bool(true)).await;
    refused(&root, "bool", Value::Int(1), "TypeError").await;

    let ranges: [(&str, i128, i128); 8] = [
        ("s8", i8::MIN.into(), i8::MAX.into()),
        ("u8", 0, u8::MAX.into()),
        ("s16", i16::MIN.into(), i16::MAX.into()),
        ("u16", 0, u16::MAX.into()),
        ("s32", i32::MIN.into(), i32::MAX.into()),
        ("u32", 0, u32::MAX.into()),
        ("s64", i64::MIN.into(), i64::MAX.into()),
        ("u64", 0, u64::MAX.into()),
    ];
    for (kind, min, max) in ranges {
        round_trip(&root, kind, Value::Int(min), Value::Int(min)).await;
        round_trip(&root, kind, Value::Int(max), Value::Int(max)).await;
        refused(&root, kind, Value::Int(min - 1), "OverflowError").await;
        let message = refused(&root, kind, Value::Int(max + 1), "OverflowError").await;
        assert!(message.contains(&format!("{min}..={max}")), "{message}");
        refused(&root, kind, Value::Float(1.0), "TypeError").await;
    }
    refused(&root, "u64", Value::BigInt("1".repeat(60)), "OverflowError").await;

    round_trip(&root, "f64", Value::Float(1.25), Value::Float(1.25)).await;
    round_trip(&root, "f64", Value::Int(3), Value::Float(3.0)).await;
    round_trip(&root, "f32", Value::Float(0.5), Value::Float(0.5)).await;
    refused(&root, "f64", s("1.0"), "TypeError").await;

    round_trip(&root, "char", s("é"), s("é")).await;
    refused(&root, "char", s("ab"), "TypeError").await;
    refused(&root, "char", s(""), "TypeError").await;
    round_trip(&root, "string", s("héllo"), s("héllo")).await;
    refused(&root, "string", Value::Bytes(b"x".to_vec()), "TypeError").await;
}

#[tokio::test]
async fn sequences_round_trip_as_tuples_and_bytes() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    round_trip(
        &root,
        "bytes",
        Value::Bytes(vec![0, 1, 255]),
        Value::Bytes(vec![0, 1, 255]),
    )
    .await;
    round_trip(
        &root,
        "bytes",
        vec![7u8, 8].into_value(),
        Value::Bytes(vec![7, 8]),
    )
    .await;
    refused(&root, "bytes", vec![256i32].into_value(), "OverflowError").await;
    round_trip(
        &root,
        "list",
        vec![1, -2, 3].into_value(),
        vec![1, -2, 3].into_value(),
    )
    .await;
    round_trip(&root, "list", t(vec![]), t(vec![])).await;
    let message = refused(&root, "list", t(vec![Value::Int(1), s("x")]), "TypeError").await;
    assert!(message.contains("argument 'v[1]'"), "{message}");
    let nested = vec![vec!["a", "b"], vec![], vec!["c"]].into_value();
    round_trip(&root, "nested", nested.clone(), nested).await;
    let tuple = (1, "x", true).into_value();
    round_trip(&root, "tuple", tuple.clone(), tuple).await;
    refused(&root, "tuple", (1, "x").into_value(), "TypeError").await;
}

#[tokio::test]
async fn option_result_record_variant_enum_flags_follow_the_mapping() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    round_trip(&root, "option", Value::None, Value::None).await;
    round_trip(&root, "option", s("x"), s("x")).await;
    refused(&root, "option", Value::Int(1), "TypeError").await;

    let results = t(vec![
        t(vec![s("ok"), Value::Int(1)]),
        t(vec![s("err"), s("bad")]),
    ]);
    round_trip(&root, "results", results.clone(), results).await;
    refused(&root, "results", t(vec![s("maybe")]), "TypeError").await;
    refused(&root, "results", t(vec![s("ok")]), "TypeError").await;

    let point = (3, -4, "p").into_value();
    round_trip(&root, "record", point.clone(), point).await;
    refused(&root, "record", (3, -4).into_value(), "TypeError").await;

    round_trip(&root, "variant", s("empty"), s("empty")).await;
    let circle = t(vec![s("circle"), Value::Float(1.5)]);
    round_trip(&root, "variant", circle.clone(), circle).await;
    let rect = t(vec![s("rect"), (2.0, 3.0).into_value()]);
    round_trip(&root, "variant", rect.clone(), rect).await;
    refused(&root, "variant", s("circle"), "TypeError").await;
    refused(
        &root,
        "variant",
        t(vec![s("empty"), Value::Int(1)]),
        "TypeError",
    )
    .await;
    refused(&root, "variant", s("hexagon"), "TypeError").await;

    round_trip(&root, "enum", s("green"), s("green")).await;
    refused(&root, "enum", s("purple"), "TypeError").await;

    let flags = Value::FrozenSet(vec![s("read"), s("exec")]);
    round_trip(&root, "flags", flags.clone(), flags).await;
    round_trip(
        &root,
        "flags",
        t(vec![s("write")]),
        Value::FrozenSet(vec![s("write")]),
    )
    .await;
    round_trip(&root, "flags", t(vec![]), Value::FrozenSet(vec![])).await;
    refused(&root, "flags", t(vec![s("delete")]), "TypeError").await;
}

#[tokio::test]
async fn the_dynamic_value_carries_anything() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let anything = t(vec![
        Value::None,
        Value::Bool(false),
        Value::Int(-5),
        Value::Int(1 << 100),
        Value::BigInt(format!("-{}", "9".repeat(50))),
        Value::Float(2.5),
        Value::Complex(1.0, -2.0),
        s("text"),
        Value::Bytes(vec![1, 2]),
        t(vec![t(vec![]), Value::FrozenSet(vec![Value::Int(1)])]),
    ]);
    round_trip(&root, "value", anything.clone(), anything).await;
    round_trip(&root, "value", Value::None, Value::None).await;
}

#[tokio::test]
async fn optional_and_keyword_arguments_bind_by_name() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    assert_eq!(root.call::<i32>("sum_two", (1,)).await.unwrap(), 1);
    assert_eq!(root.call::<i32>("sum_two", (1, 2)).await.unwrap(), 3);
    assert_eq!(root.call::<i32>("sum_two", (1, ())).await.unwrap(), 1);
    let kw = root.call_kw::<i32>("sum_two", (), [("b", Value::Int(5)), ("a", Value::Int(1))]);
    assert_eq!(kw.await.unwrap(), 6);
    assert_eq!(
        root.call::<i32>("get_value", ()).await.unwrap(),
        42,
        "kebab-case becomes snake_case"
    );
    assert_eq!(
        root.call::<i32>("twice", (21,)).await.unwrap(),
        42,
        "methods of exported interfaces"
    );
}

#[tokio::test]
async fn errors_a_service_returns_become_exceptions() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let raised = root.call::<()>("raise", ("KeyError", "no such key")).await;
    let Err(Error::Remote(e)) = raised else {
        panic!("{raised:?}")
    };
    assert_eq!(
        (e.type_name.as_str(), e.message.as_str()),
        ("KeyError", "no such key")
    );
    let raised = root
        .call::<()>("raise", ("mymodule.MyError", "custom"))
        .await;
    assert_eq!(
        raised.unwrap_err().exception().unwrap().type_name,
        "mymodule.MyError"
    );
    let raised = root.call::<()>("fail_with_string", ()).await;
    let e = raised.unwrap_err();
    assert_eq!(
        e.exception().unwrap(),
        &Exception::new("Exception", "plain string error")
    );
    let hidden = root.call::<i32>("hidden", ()).await.unwrap_err();
    assert_eq!(
        hidden.exception().unwrap(),
        &Exception::no_attribute("hidden")
    );
}
