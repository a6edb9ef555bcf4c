//! Arbitrary arguments for a real component's exports: every value is
//! converted to the parameter's WIT type or refused with an exception, the
//! result converted back, and the instance stays usable.

use std::sync::{Mutex, OnceLock};

use arbitrary::{Result, Unstructured};
use tokio::runtime::Runtime as Tokio;
use wasm_rpyc::value::{Holder, ObjectRef};
use wasm_rpyc::wasm::WasmService;
use wasm_rpyc::{Limits, PeerObject, Runtime, Service, ServiceComponent, Value};

/// Exports that spend resources on purpose (loops, allocations, sleeps,
/// floods of output, huge results, kept handles): they test limits, not conversion, and
/// would only slow the fuzzer down.
const RESOURCE_HOGS: [&str; 9] = [
    "spin", "work", "sleep", "shout", "allocate", "recurse", "bytes_of", "text_of", "keep",
];

/// Containers nest at most this deep in generated values.
const MAX_NESTING: u32 = 4;

/// The testbed component (an export for every WIT type) with one instance.
struct Harness {
    tokio: Tokio,
    methods: Vec<String>,
    service: Mutex<WasmService>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let runtime = Runtime::new(Limits::default()).expect("a wasm runtime");
        let component = tokio
            .block_on(ServiceComponent::load(
                &runtime,
                wasm_rpyc_tests::TESTBED.as_ref(),
            ))
            .expect("the testbed loads");
        let methods = component
            .methods()
            .into_iter()
            .filter(|name| !RESOURCE_HOGS.contains(name))
            .map(str::to_owned)
            .collect();
        Harness {
            tokio,
            methods,
            service: Mutex::new(component.instance()),
        }
    })
}

/// Calls one of the testbed's exports with arguments made from `data`. The
/// call may fail with an exception, never panic; an `echo_*` export given
/// its own result returns it unchanged; and afterwards the instance (or its
/// fresh successor after a trap) answers a good call.
pub fn wasm_call(data: &[u8]) {
    let harness = harness();
    let mut u = Unstructured::new(data);
    let Ok((method, args, kwargs)) = call(&mut u, &harness.methods) else {
        return;
    };
    let mut service = harness.service.lock().unwrap_or_else(|e| e.into_inner());
    harness.tokio.block_on(async {
        let result = service.call(method, args, kwargs).await;
        if let (Ok(first), true) = (&result, method.starts_with("echo_")) {
            let second = service.call(method, vec![first.clone()], Vec::new()).await;
            assert_eq!(
                format!("{:?}", Ok::<_, ()>(first)),
                format!("{:?}", second.as_ref().map_err(|_| ())),
                "{method} changed its own result: {second:?}"
            );
        }
        let good = service
            .call("twice", vec![Value::Int(21)], Vec::new())
            .await;
        assert_eq!(
            good.ok(),
            Some(Value::Int(42)),
            "the instance failed after {method}: {result:?}"
        );
    });
}

type Call<'a> = (&'a str, Vec<Value>, Vec<(String, Value)>);

fn call<'a>(u: &mut Unstructured<'_>, methods: &'a [String]) -> Result<Call<'a>> {
    let method = u.choose(methods)?;
    let args = (0..u.int_in_range(0..=3)?)
        .map(|_| value(u, MAX_NESTING))
        .collect::<Result<_>>()?;
    let kwargs = (0..u.int_in_range(0..=1)?)
        .map(|_| Ok((u.arbitrary()?, value(u, MAX_NESTING)?)))
        .collect::<Result<_>>()?;
    Ok((method, args, kwargs))
}

/// A value of any kind a peer can send.
fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let items = |u: &mut Unstructured<'_>| -> Result<Vec<Value>> {
        (0..u.int_in_range(0..=4)?)
            .map(|_| value(u, depth - 1))
            .collect()
    };
    let kinds = if depth == 0 { 11 } else { 14 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::None,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(i128::from(u.arbitrary::<i8>()?)),
        3 => Value::Int(u.arbitrary()?),
        4 => Value::BigInt(u.arbitrary()?),
        5 => Value::Float(u.arbitrary()?),
        6 => Value::Complex(u.arbitrary()?, u.arbitrary()?),
        7 => Value::Str(u.arbitrary()?),
        8 => Value::Bytes(u.arbitrary()?),
        9 => {
            if u.arbitrary()? {
                Value::NotImplemented
            } else {
                Value::Ellipsis
            }
        }
        10 => {
            let (id, class): (u64, String) = (u.arbitrary()?, u.arbitrary()?);
            if u.arbitrary()? {
                Value::Remote(PeerObject::never_released(id, class))
            } else {
                Value::Object(ObjectRef {
                    holder: Holder::Receiver,
                    id,
                    class,
                    is_class: u.arbitrary()?,
                })
            }
        }
        11 => Value::Tuple(items(u)?),
        12 => Value::FrozenSet(items(u)?),
        _ => Value::Slice(Box::new([
            value(u, depth - 1)?,
            value(u, depth - 1)?,
            value(u, depth - 1)?,
        ])),
    })
}
