//! The `peer` interface the host imports into guests: calls from a service
//! to the other side of its connection: its root (the seed's
//! `self._conn.root.foo()`) and the objects it lent (a callback `func()`).

use wasmtime::StoreContextMut;
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Linker, Type, Val};

use super::convert;
use super::guest_objects::StoreKeep;
use super::host::HostState;
use super::netrefs::{StoreLend, named};
use crate::error::Error;
use crate::exception::Exception;
use crate::held::PeerObject;
use crate::peer::Peer;
use crate::value::Value;

/// The interface's name, as guests import it.
pub(crate) const PEER_INTERFACE: &str = "wasm-rpyc:service/peer@0.1.0";

/// What a guest asks of its peer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    CallRoot,
    Call,
    CallAsync,
    CallMethod,
    GetAttr,
}

/// What a guest asks of its peer, with the object and name it names.
enum Asked {
    Root(String),
    Call(PeerObject),
    Method(PeerObject, String),
    Attr(PeerObject, String),
}

/// Defines the `peer` interface in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut interface = linker.instance(PEER_INTERFACE)?;
    for (name, operation) in [
        ("call-root", Operation::CallRoot),
        ("call", Operation::Call),
        ("call-async", Operation::CallAsync),
        ("call-method", Operation::CallMethod),
        ("get-attr", Operation::GetAttr),
    ] {
        interface.func_new_async(name, move |mut store, ty, params, results| {
            Box::new(async move {
                let outcome = ask(&mut store, operation, &ty, params).await;
                results[0] = outcome_val(&mut store, outcome, &ty).await?;
                Ok(())
            })
        })?;
    }
    interface.func_wrap("connection", |store, ()| Ok((store.data().connection,)))?;
    Ok(())
}

/// The peer `asked` goes to: the peer of the running call's connection for
/// its root, the peer that lent the object for a netref (in a shared
/// instance, that may be another connection's, whose number comes too).
fn route(state: &HostState, asked: &Asked) -> Result<(Peer, Option<u64>), Exception> {
    let object = match asked {
        Asked::Root(_) => None,
        Asked::Call(object) | Asked::Method(object, _) | Asked::Attr(object, _) => Some(object),
    };
    match (object, &state.connections) {
        (Some(object), Some(connections)) => connections
            .lender_of(object)
            .map(|(number, peer)| (peer, Some(number)))
            .ok_or_else(|| {
                Exception::eof_error(
                    "the peer is gone: the connection that lent this object closed",
                )
            }),
        _ => state
            .peer
            .clone()
            .map(|peer| (peer, None))
            .ok_or_else(|| Exception::eof_error("this service has no peer")),
    }
}

/// Sends what the guest asks and waits for the peer's answer (for
/// `call-async`, only until it is sent). Netrefs the guest passes in
/// arguments go back to the peer as its own objects; the guest gives those
/// handles up.
async fn ask(
    store: &mut StoreContextMut<'_, HostState>,
    operation: Operation,
    ty: &ComponentFunc,
    params: &[Val],
) -> Result<Value, Exception> {
    let text = |at: usize| match &params[at] {
        Val::String(s) => Ok(s.clone()),
        _ => Err(Exception::type_error("a name must be a string")),
    };
    let (asked, arguments_at) = match operation {
        Operation::CallRoot => (Asked::Root(text(0)?), Some(1)),
        Operation::Call | Operation::CallAsync => (Asked::Call(named(store, &params[0])?), Some(1)),
        Operation::CallMethod => (Asked::Method(named(store, &params[0])?, text(1)?), Some(2)),
        Operation::GetAttr => (Asked::Attr(named(store, &params[0])?, text(1)?), None),
    };
    let (peer, lender) = route(store.data(), &asked)?;
    let connections = store.data().connections.clone();
    let types: Vec<Type> = ty.params().map(|(_, t)| t).collect();
    let mut keep = StoreKeep::new(store);
    let mut received = |at: usize| {
        convert::from_val(params[at].clone(), &types[at], &mut keep)
            .map_err(|e| Exception::type_error(e.to_string()))
    };
    let arguments = match arguments_at {
        Some(at) => received(at)
            .and_then(args)
            .and_then(|args| Ok((args, kwargs(received(at + 1)?)?))),
        None => Ok((Vec::new(), Vec::new())),
    };
    if arguments.is_err() {
        // Not sent: the guest's objects in them are its own again.
        keep.give_back();
    }
    // A shared instance waits on the lender: a call from it is refused
    // meanwhile. A call that is not waited for holds nothing up.
    let _waiting = match (&connections, lender) {
        (Some(connections), Some(number)) if operation != Operation::CallAsync => {
            Some(connections.wait_on(number))
        }
        _ => None,
    };
    let answer = match (asked, arguments) {
        (_, Err(exception)) => Err(Error::Remote(exception)),
        (Asked::Root(name), Ok((args, kwargs))) => peer.call_root(&name, args, kwargs).await,
        (Asked::Call(object), Ok((args, kwargs))) if operation == Operation::CallAsync => peer
            .call_without_waiting(&object, args, kwargs)
            .map(|()| Value::None),
        (Asked::Call(object), Ok((args, kwargs))) => peer.call(&object, args, kwargs).await,
        (Asked::Method(object, name), Ok((args, kwargs))) => {
            peer.call_method(&object, &name, args, kwargs).await
        }
        (Asked::Attr(object, name), Ok(_)) => peer.get_attr(&object, &name).await,
    };
    keep.finish().await;
    answer.map_err(|error| match error {
        Error::Remote(exception) => exception,
        Error::Closed => Exception::eof_error("the peer is gone: the connection is closed"),
        Error::Timeout(limit) => {
            Exception::timeout_error(format!("the peer did not answer within {limit:?}"))
        }
        other => Exception::runtime_error(format!("cannot call the peer: {other}")),
    })
}

fn args(value: Value) -> Result<Vec<Value>, Exception> {
    match value {
        Value::Tuple(args) => Ok(args),
        _ => Err(Exception::type_error("args must be a list of values")),
    }
}

fn kwargs(value: Value) -> Result<Vec<(String, Value)>, Exception> {
    value
        .into_keyword_pairs()
        .ok_or_else(|| Exception::type_error("a keyword argument must be (name, value)"))
}

/// The `result<value, error>` a guest receives; the peer's objects in the
/// answer become the guest's netrefs.
async fn outcome_val(
    store: &mut StoreContextMut<'_, HostState>,
    outcome: Result<Value, Exception>,
    ty: &ComponentFunc,
) -> wasmtime::Result<Val> {
    let result_type = ty.results().next().expect("peer functions return a result");
    let err = |e: Exception| {
        let traceback = e.traceback.map_or(Value::None, Value::Str);
        Value::Tuple(vec![
            Value::Str("err".into()),
            Value::Tuple(vec![
                Value::Str(e.type_name),
                Value::Str(e.message),
                traceback,
            ]),
        ])
    };
    let Type::Result(result) = &result_type else {
        return Err(wasmtime::Error::msg("peer functions return a result"));
    };
    let as_case = match outcome {
        // `call-async` answers nothing.
        Ok(_) if result.ok().is_none() => Value::Str("ok".into()),
        Ok(value) => Value::Tuple(vec![Value::Str("ok".into()), value]),
        Err(e) => err(e),
    };
    // Netrefs in the answer are inside `value`s: no netref type is needed.
    let mut lend = StoreLend::new(store, None);
    match convert::to_val(as_case, &result_type, &mut lend) {
        Ok(val) => Ok(val),
        Err(mismatch) => {
            lend.take_back();
            let refused = Exception::type_error(format!(
                "the peer's answer cannot be passed to the service: expected {}, got {}",
                mismatch.expected, mismatch.got
            ));
            convert::to_val(err(refused), &result_type, &mut StoreLend::new(store, None))
                .map_err(|m| wasmtime::Error::msg(format!("{m:?}")))
        }
    }
}
