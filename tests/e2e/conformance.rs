//! The conformance table (`tests/conformance/cases.json`) with the Rust
//! client: every language's example services behave as the seed's do. The
//! Python and JavaScript services are built by `services/build.sh`.

use std::collections::HashMap;

use serde_json::Value as Json;
use wasm_rpyc::{
    Exception, FromValue, Function, IntoValue, RemoteObject, ServiceComponent, Value, connect,
};
use wasm_rpyc_tests::{example, polyglot, runtime, serve};

fn table() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the table")).expect("JSON")
}

/// `service` written in `language`, as the build leaves it.
async fn component(language: &str, service: &str) -> ServiceComponent {
    let runtime = runtime();
    if language == "rust" {
        return example(&runtime, service).await;
    }
    let path = polyglot(language, service);
    ServiceComponent::load(&runtime, &path)
        .await
        .unwrap_or_else(|e| panic!("{} (run `bash services/build.sh`): {e}", path.display()))
}

/// The instances a case names (`{"new": [...], "name": "x"}`, `{"ref": "x"}`).
type Named = HashMap<String, RemoteObject>;

/// A case's argument as the client passes it.
async fn argument(spec: &Json, root: &RemoteObject, named: &mut Named) -> Value {
    let Json::Object(map) = spec else {
        return expected(spec);
    };
    if let Some(returns) = map.get("callback") {
        let returns = expected(returns);
        return Function::new(move |_| {
            let returns = returns.clone();
            async move { Ok(returns) }
        })
        .into_value();
    }
    if let Some(class) = map.get("raising") {
        let class = class.as_str().expect("a class name").to_owned();
        return Function::new(move |_| {
            let error = Exception::new(class.clone(), "boom");
            async move { Err(error) }
        })
        .into_value();
    }
    if let Some(digits) = map.get("int") {
        return Value::Int(
            digits
                .as_str()
                .expect("digits")
                .parse()
                .expect("an integer"),
        );
    }
    if let Some(args) = map.get("new") {
        let instance: RemoteObject = root
            .call("MyClass", plain(args))
            .await
            .expect("MyClass(...)");
        if let Some(name) = map.get("name").and_then(Json::as_str) {
            named.insert(name.to_owned(), instance.clone());
        }
        return instance.into_value();
    }
    let name = map["ref"].as_str().expect("a name");
    named[name].clone().into_value()
}

/// Plain JSON arguments as values.
fn plain(args: &Json) -> Vec<Value> {
    args.as_array()
        .expect("a list")
        .iter()
        .map(expected)
        .collect()
}

/// A plain JSON value as a `Value` (lists as tuples).
fn expected(json: &Json) -> Value {
    match json {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if n.is_f64() => Value::Float(n.as_f64().expect("a float")),
        Json::Number(n) => Value::Int(n.as_i64().expect("an integer").into()),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::Tuple(items.iter().map(expected).collect()),
        Json::Object(_) => panic!("no plain value: {json}"),
    }
}

/// Runs one case on `root`; what it names is dropped (released) at the end.
async fn run(case: &Json, root: &RemoteObject) -> Result<Value, wasm_rpyc::Error> {
    let mut named = Named::new();
    let target = match case.get("on") {
        Some(spec) => RemoteObject::from_value(argument(spec, root, &mut named).await)?,
        None => root.clone(),
    };
    let mut args = Vec::new();
    for spec in case["args"].as_array().expect("args") {
        args.push(argument(spec, root, &mut named).await);
    }
    let mut kwargs = Vec::new();
    for (key, spec) in case
        .get("kwargs")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        kwargs.push((key.clone(), argument(spec, root, &mut named).await));
    }
    let result: Value = match case.get("attr").and_then(Json::as_str) {
        Some(attribute) => target.get_attr(attribute).await?,
        None => {
            let name = case["call"].as_str().expect("a method or an attribute");
            target.call_kw(name, args, kwargs).await?
        }
    };
    match case.get("then").and_then(Json::as_str) {
        Some(then) => RemoteObject::from_value(result)?.call(then, ()).await,
        None => Ok(result),
    }
}

#[tokio::test]
async fn every_language_passes_the_table() {
    let table = table();
    let languages = table["languages"].as_array().expect("languages");
    let services = table["services"].as_object().expect("services");
    for language in languages.iter().map(|l| l.as_str().expect("a name")) {
        for (service, cases) in services {
            let host = serve(component(language, service).await).await;
            let conn = connect(host.addr).await.unwrap();
            for case in cases.as_array().expect("cases") {
                let limited = case.get("languages").and_then(Json::as_array);
                if limited.is_some_and(|only| !only.iter().any(|l| l == language)) {
                    continue;
                }
                let result = run(case, &conn.root()).await;
                let what = format!("{language} {service}: {case}");
                match case.get("raises").and_then(Json::as_str) {
                    Some(class) => {
                        let error = result.expect_err(&what);
                        let raised = error.exception().map(|e| e.type_name.as_str());
                        assert_eq!(raised, Some(class), "{what}: {error}");
                    }
                    None => assert_eq!(result.expect(&what), expected(&case["returns"]), "{what}"),
                }
                conn.ping().await.unwrap();
                assert_eq!(
                    conn.lent_objects(),
                    0,
                    "{what}: the service released what it was passed"
                );
            }
        }
    }
}
