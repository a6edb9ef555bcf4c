//! The conformance table (`tests/conformance/cases.json`) with the Rust
//! client: every language's example services behave as the seed's do. The
//! Python and JavaScript services are built by `services/build.sh`.

use std::path::PathBuf;

use serde_json::Value as Json;
use wasm_rpyc::{Exception, Function, IntoValue, ServiceComponent, Value, connect};
use wasm_rpyc_tests::{example, runtime, serve};

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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = target
        .join("polyglot")
        .join(language)
        .join(format!("{service}.wasm"));
    ServiceComponent::load(&runtime, &path)
        .await
        .unwrap_or_else(|e| panic!("{} (run `bash services/build.sh`): {e}", path.display()))
}

/// A case's argument as the client passes it.
fn argument(spec: &Json) -> Value {
    match spec {
        Json::Object(map) if map.contains_key("callback") => {
            let returns = argument(&map["callback"]);
            Function::new(move |_| {
                let returns = returns.clone();
                async move { Ok(returns) }
            })
            .into_value()
        }
        Json::Object(map) if map.contains_key("raising") => {
            let class = map["raising"].as_str().expect("a class name").to_owned();
            Function::new(move |_| {
                let error = Exception::new(class.clone(), "boom");
                async move { Err(error) }
            })
            .into_value()
        }
        Json::Object(map) if map.contains_key("int") => {
            let digits = map["int"].as_str().expect("digits");
            Value::Int(digits.parse().expect("an integer"))
        }
        other => expected(other),
    }
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
                let name = case["call"].as_str().expect("a method");
                let args: Vec<Value> = case["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(argument)
                    .collect();
                let kwargs: Vec<(String, Value)> = case
                    .get("kwargs")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(key, spec)| (key.clone(), argument(spec)))
                    .collect();
                let result = conn.root().call_kw::<Value>(name, args, kwargs).await;
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
