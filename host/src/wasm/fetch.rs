//! Reading what the peer lent by reference where a service wants a value: a
//! Python list (or set, deque, range...) passed for a WIT `list<T>`, tuple,
//! record or flags arrives as a netref and is read in one BUFFITER round
//! trip, nested ones likewise. Tuples need no round trip: pass tuples where
//! speed matters.

use std::future::Future;
use std::pin::Pin;

use wasmtime::component::Type;

use super::convert;
use crate::error::Error;
use crate::exception::Exception;
use crate::held::PeerObject;
use crate::peer::Peer;
use crate::value::Value;

/// The most items read from one of the peer's sequences. A sequence that
/// long should travel as a tuple (by value) or bytes; reading more by
/// reference would let a peer make the host buffer without bound.
pub const MAX_FETCHED_ITEMS: u64 = 1_000_000;

type Fetching<'a> = Pin<Box<dyn Future<Output = Result<Value, Exception>> + Send + 'a>>;

/// `value` with the peer's sequences read where `ty` wants a sequence.
pub(crate) fn fetch<'a>(value: Value, ty: &'a Type, peer: &'a Peer) -> Fetching<'a> {
    Box::pin(async move {
        if convert::is_dynamic_value(ty) {
            // Any value fits, netrefs included: nothing is read.
            return Ok(value);
        }
        Ok(match (value, ty) {
            (
                Value::Remote(object),
                Type::List(_)
                | Type::FixedLengthList(_)
                | Type::Tuple(_)
                | Type::Record(_)
                | Type::Flags(_)
                | Type::Map(_),
            ) => {
                let items = read(peer, &object).await?;
                fetch(Value::Tuple(items), ty, peer).await?
            }
            (Value::Tuple(items), Type::List(list)) => {
                Value::Tuple(each(items, |_| Some(list.ty()), peer).await?)
            }
            (Value::Tuple(items), Type::FixedLengthList(list)) => {
                Value::Tuple(each(items, |_| Some(list.ty()), peer).await?)
            }
            (Value::Tuple(items), Type::Tuple(tuple)) => {
                let types: Vec<Type> = tuple.types().collect();
                Value::Tuple(each(items, |i| types.get(i).cloned(), peer).await?)
            }
            (Value::Tuple(items), Type::Record(record)) => {
                let types: Vec<Type> = record.fields().map(|f| f.ty).collect();
                Value::Tuple(each(items, |i| types.get(i).cloned(), peer).await?)
            }
            (Value::None, Type::Option(_)) => Value::None,
            (value, Type::Option(option)) => fetch(value, &option.ty(), peer).await?,
            (value, _) => value,
        })
    })
}

/// Fetches each item with the type `type_of` gives its position (none: as is).
async fn each(
    items: Vec<Value>,
    type_of: impl Fn(usize) -> Option<Type>,
    peer: &Peer,
) -> Result<Vec<Value>, Exception> {
    let mut fetched = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        fetched.push(match type_of(i) {
            Some(ty) => fetch(item, &ty, peer).await?,
            None => item,
        });
    }
    Ok(fetched)
}

async fn read(peer: &Peer, object: &PeerObject) -> Result<Vec<Value>, Exception> {
    let class = object.class();
    let items = peer
        .read_items(object, MAX_FETCHED_ITEMS + 1)
        .await
        .map_err(|error| match error {
            Error::Remote(exception) => exception,
            other => Exception::runtime_error(format!(
                "cannot read the {class} passed by reference: {other}"
            )),
        })?;
    if items.len() as u64 > MAX_FETCHED_ITEMS {
        return Err(Exception::value_error(format!(
            "a {class} of more than {MAX_FETCHED_ITEMS} items cannot be passed by reference; pass a tuple"
        )));
    }
    Ok(items)
}
