//! The vectors the real rpyc package produced (`host/tests/data/`), for the
//! codec's tests.

use serde_json::Value as Json;

use crate::value::Value;

/// Brine values with their bytes, frames with their payloads, and dumped
/// exceptions with their bytes.
pub(crate) struct Vectors {
    pub(crate) brine: Vec<(Value, Vec<u8>)>,
    pub(crate) frames: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) exceptions: Vec<(Value, Vec<u8>)>,
}

impl Vectors {
    pub(crate) fn load() -> Self {
        let json: Json =
            serde_json::from_str(include_str!("../../../tests/data/rpyc_vectors.json"))
                .expect("valid JSON");
        let pairs = |key: &str, value_key: &str| -> Vec<(Value, Vec<u8>)> {
            json[key]
                .as_array()
                .expect("a list")
                .iter()
                .map(|v| (value(&v[value_key]), unhex(&v["hex"])))
                .collect()
        };
        Vectors {
            brine: pairs("brine", "value"),
            exceptions: pairs("exceptions", "exception"),
            frames: json["frames"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|f| (unhex(&f["payload"]), unhex(&f["frame"])))
                .collect(),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(json: &Json) -> Vec<u8> {
    let text = json.as_str().expect("hex text");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn float(json: &Json) -> f64 {
    f64::from_be_bytes(unhex(json).try_into().expect("eight bytes"))
}

/// Rebuilds a value from the generator's `["kind", ...]` description.
fn value(json: &Json) -> Value {
    let items = |json: &Json| json.as_array().expect("items").iter().map(value).collect();
    match json[0].as_str().expect("a kind") {
        "none" => Value::None,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "notimpl" => Value::NotImplemented,
        "ellipsis" => Value::Ellipsis,
        "int" => {
            let text = json[1].as_str().expect("decimal");
            text.parse()
                .map_or_else(|_| Value::BigInt(text.to_owned()), Value::Int)
        }
        "float" => Value::Float(float(&json[1])),
        "complex" => Value::Complex(float(&json[1]), float(&json[2])),
        "str" => Value::Str(json[1].as_str().expect("text").to_owned()),
        "bytes" => Value::Bytes(unhex(&json[1])),
        "tuple" => Value::Tuple(items(&json[1])),
        "fset" => Value::FrozenSet(items(&json[1])),
        "slice" => Value::Slice(Box::new([
            value(&json[1]),
            value(&json[2]),
            value(&json[3]),
        ])),
        other => panic!("unknown kind {other}"),
    }
}
