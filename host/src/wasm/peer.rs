//! The `peer` interface the host imports into guests: calls from a service
//! to the other side of its connection (the seed's `self._conn.root.foo()`).

use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Linker, Type, Val};

use super::convert;
use super::host::HostState;
use crate::connection::Peer;
use crate::error::Error;
use crate::exception::Exception;
use crate::value::Value;

/// The interface's name, as guests import it.
pub(crate) const PEER_INTERFACE: &str = "wasm-rpyc:service/peer@0.1.0";

/// Defines the `peer` interface in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker
        .instance(PEER_INTERFACE)?
        .func_new_async("call-root", |store, ty, params, results| {
            let peer = store.data().peer.clone();
            Box::new(async move {
                let outcome = call_root(peer, &ty, params).await;
                results[0] = outcome_val(outcome, &ty)?;
                Ok(())
            })
        })
}

/// `call-root(name, args, kwargs)`: the peer's answer, or why there is none.
async fn call_root(
    peer: Option<Peer>,
    ty: &ComponentFunc,
    params: &[Val],
) -> Result<Value, Exception> {
    let peer = peer.ok_or_else(|| Exception::new("EOFError", "this service has no peer"))?;
    let types: Vec<Type> = ty.params().map(|(_, t)| t).collect();
    let [Val::String(name), args, kwargs] = params else {
        return Err(Exception::type_error(
            "call-root takes a name, args and kwargs",
        ));
    };
    let received = |val: &Val, ty: &Type| {
        convert::from_val(val.clone(), ty).map_err(|e| Exception::type_error(e.to_string()))
    };
    let Value::Tuple(args) = received(args, &types[1])? else {
        return Err(Exception::type_error("args must be a list of values"));
    };
    let Value::Tuple(pairs) = received(kwargs, &types[2])? else {
        return Err(Exception::type_error(
            "kwargs must be a list of (name, value)",
        ));
    };
    let kwargs = pairs
        .into_iter()
        .map(|pair| match pair {
            Value::Tuple(kv) => match <[Value; 2]>::try_from(kv) {
                Ok([Value::Str(key), value]) => Ok((key, value)),
                _ => Err(Exception::type_error(
                    "a keyword argument must be (name, value)",
                )),
            },
            _ => Err(Exception::type_error(
                "a keyword argument must be (name, value)",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    peer.call_root(name, args, kwargs)
        .await
        .map_err(|error| match error {
            Error::Remote(exception) => exception,
            Error::Closed => {
                Exception::new("EOFError", "the peer is gone: the connection is closed")
            }
            Error::Timeout(limit) => Exception::new(
                "TimeoutError",
                format!("the peer did not answer within {limit:?}"),
            ),
            other => Exception::new("RuntimeError", format!("cannot call the peer: {other}")),
        })
}

/// The `result<value, error>` a guest receives.
fn outcome_val(outcome: Result<Value, Exception>, ty: &ComponentFunc) -> wasmtime::Result<Val> {
    let result_type = ty.results().next().expect("call-root returns a result");
    let as_case = match outcome {
        Ok(value) => Value::Tuple(vec![Value::Str("ok".into()), value]),
        Err(e) => Value::Tuple(vec![
            Value::Str("err".into()),
            Value::Tuple(vec![Value::Str(e.type_name), Value::Str(e.message)]),
        ]),
    };
    match convert::to_val(as_case, &result_type) {
        Ok(val) => Ok(val),
        // The peer's answer cannot cross into the guest (a netref, for now).
        Err(mismatch) => {
            let error = Value::Tuple(vec![
                Value::Str("err".into()),
                Value::Tuple(vec![
                    Value::Str("TypeError".into()),
                    Value::Str(format!(
                        "the peer's answer cannot be passed to the service: expected {}, got {}",
                        mismatch.expected, mismatch.got
                    )),
                ]),
            ]);
            convert::to_val(error, &result_type).map_err(|m| wasmtime::Error::msg(format!("{m:?}")))
        }
    }
}
