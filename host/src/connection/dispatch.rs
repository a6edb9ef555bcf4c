//! Serving the peer's requests: each request becomes an operation on this
//! side's lent objects (its service and the methods of it), in arrival
//! order, and its result goes back as a reply.

use tokio::sync::mpsc;

use std::sync::Arc;

use super::objects::{Lent, Objects};
use super::{Peer, Shared};
use crate::exception::Exception;
use crate::protocol::{Holder, Message, ObjectId, ObjectRef, Request, Seq};
use crate::service::{Service, call_root, root_method, root_methods};
use crate::value::Value;

/// The class of a lent method: a client knows it without asking (RPyC's
/// clients pre-build `builtins.method` netrefs, so no INSPECT is spent).
const METHOD_CLASS: &str = "builtins.method";

/// Runs `service` for one connection: `on_connect`, every request until the
/// inbox closes or the peer sends `Close`, then `on_disconnect`.
pub(super) async fn serve<S: Service>(
    service: S,
    mut inbox: mpsc::Receiver<(Seq, Request)>,
    shared: &Arc<Shared>,
) {
    let mut dispatch = Dispatch {
        objects: Objects::new(shared.config.max_lent_objects),
        service,
    };
    let peer = Peer {
        shared: Arc::clone(shared),
    };
    if let Err(error) = dispatch.service.on_connect(peer).await {
        tracing::warn!(peer = %shared.peer, %error, "on_connect failed; closing the connection");
        shared.closing.cancel();
        return;
    }
    let mut waiting = shared.waiting_on_peer.subscribe();
    // DELs that arrive while the service waits on the peer, applied after.
    let mut deferred = Vec::new();
    while let Some((seq, request)) = inbox.recv().await {
        if shared.closing.is_cancelled() {
            break;
        }
        let result = {
            let handling = dispatch.handle(request);
            tokio::pin!(handling);
            loop {
                tokio::select! {
                    biased;
                    result = &mut handling => break result,
                    _ = waiting.changed() => {}
                    Some((seq, nested)) = inbox.recv(), if *waiting.borrow() > 0 => {
                        if let Some((seq, result)) = while_waiting(seq, nested, &mut deferred) {
                            let _ = shared.outbox.send(Message::Reply { seq, result }).await;
                        }
                    }
                }
            }
        };
        let Some(result) = result else {
            break;
        };
        if shared
            .outbox
            .send(Message::Reply { seq, result })
            .await
            .is_err()
        {
            break;
        }
        shared.send_releases().await;
        for (seq, del) in deferred.drain(..) {
            if let Some(result) = dispatch.handle(del).await {
                let _ = shared.outbox.send(Message::Reply { seq, result }).await;
            }
        }
    }
    shared.closing.cancel();
    dispatch.service.on_disconnect().await;
}

/// Answers a request that arrives while the service waits on the peer (for
/// a reply to a call it made). The service cannot be entered again until
/// its call ends, so a call into it fails at once, instead of waiting on a
/// reply that waits on it. DELs are kept for after the call; `None` means no
/// answer is due now.
fn while_waiting(
    seq: Seq,
    request: Request,
    deferred: &mut Vec<(Seq, Request)>,
) -> Option<(Seq, Result<Value, Exception>)> {
    match request {
        Request::Ping(data) => Some((seq, Ok(data))),
        Request::Del { .. } => {
            deferred.push((seq, request));
            None
        }
        // The reader stops at Close; the waiting call then fails as closed.
        Request::Close => None,
        _ => Some((
            seq,
            Err(Exception::new(
                "RuntimeError",
                "the service is busy: it is waiting for this side to answer its own call, and cannot be \
                 called again until then",
            )),
        )),
    }
}

/// This side's service and the objects lent of it.
struct Dispatch<S> {
    service: S,
    objects: Objects,
}

impl<S: Service> Dispatch<S> {
    /// The reply to `request`; `None` when the peer is closing.
    async fn handle(&mut self, request: Request) -> Option<Result<Value, Exception>> {
        Some(match request {
            Request::GetRoot => self.lend(Lent::Root),
            Request::GetAttr { target, name } => self.get_attr(target, &name),
            Request::Call {
                target,
                args,
                kwargs,
            } => self.call(target, args, kwargs).await,
            Request::CallAttr {
                target,
                name,
                args,
                kwargs,
            } => self.call_attr(target, &name, args, kwargs).await,
            Request::Del { target, count } => {
                self.objects.release(target, count).map(|()| Value::None)
            }
            Request::Inspect { target } => self.inspect(target),
            Request::Repr { target } | Request::Str { target } => {
                self.describe(target).map(Value::Str)
            }
            Request::Hash { target } => self.objects.get(target).map(|_| Value::Int(target.into())),
            Request::Dir { target } => self.dir(target),
            Request::Cmp { target, other, op } => self.compare(target, &other, &op),
            Request::SetAttr { target, name, .. } | Request::DelAttr { target, name } => self
                .objects
                .get(target)
                .and(Err(Exception::no_attribute(&name))),
            Request::BuffIter { target, .. } => self
                .objects
                .get(target)
                .and(Err(Exception::type_error("the object is not iterable"))),
            Request::Pickle { .. } => Err(Exception::new("ValueError", "pickling is disabled")),
            Request::Unsupported { operation } => Err(Exception::new(
                "NotImplementedError",
                format!("{operation} is not supported by wasm-rpyc"),
            )),
            Request::Invalid(exception) => Err(exception),
            Request::Ping(data) => Ok(data),
            Request::Close => return None,
        })
    }

    fn lend(&mut self, object: Lent) -> Result<Value, Exception> {
        let class = match &object {
            Lent::Root => format!("wasm_rpyc.{}", self.service.aliases()[0]),
            Lent::Method(_) => METHOD_CLASS.to_owned(),
        };
        let id = self.objects.lend(object)?;
        Ok(Value::Object(ObjectRef {
            holder: Holder::Sender,
            id,
            class,
        }))
    }

    fn get_attr(&mut self, target: ObjectId, name: &str) -> Result<Value, Exception> {
        match self.objects.get(target)? {
            Lent::Root => match root_method(&self.service, name) {
                Some(method) => self.lend(Lent::Method(method.to_owned())),
                None => Err(Exception::no_attribute(name)),
            },
            Lent::Method(method) => match name {
                "__name__" => Ok(Value::Str(method.clone())),
                "__doc__" => Ok(Value::None),
                _ => Err(Exception::no_attribute(name)),
            },
        }
    }

    async fn call(
        &mut self,
        target: ObjectId,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        match self.objects.get(target)? {
            Lent::Root => Err(Exception::type_error(format!(
                "'{}' object is not callable",
                self.service.aliases()[0]
            ))),
            Lent::Method(method) => {
                let method = method.clone();
                call_root(&mut self.service, &method, args, kwargs).await
            }
        }
    }

    async fn call_attr(
        &mut self,
        target: ObjectId,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        match self.objects.get(target)? {
            Lent::Root => call_root(&mut self.service, name, args, kwargs).await,
            Lent::Method(_) if name == "__call__" => self.call(target, args, kwargs).await,
            Lent::Method(_) => Err(Exception::no_attribute(name)),
        }
    }

    /// The methods a client builds its netref class from: names only.
    fn inspect(&self, target: ObjectId) -> Result<Value, Exception> {
        let names = match self.objects.get(target)? {
            Lent::Root => root_methods(&self.service)
                .into_iter()
                .map(|n| format!("exposed_{n}"))
                .collect(),
            Lent::Method(_) => vec!["__call__".to_owned()],
        };
        Ok(Value::Tuple(
            names
                .into_iter()
                .map(|name| Value::Tuple(vec![Value::Str(name), Value::None]))
                .collect(),
        ))
    }

    fn dir(&self, target: ObjectId) -> Result<Value, Exception> {
        let names = match self.objects.get(target)? {
            Lent::Root => root_methods(&self.service),
            Lent::Method(_) => vec!["__call__".into(), "__doc__".into(), "__name__".into()],
        };
        Ok(Value::Tuple(names.into_iter().map(Value::Str).collect()))
    }

    fn describe(&self, target: ObjectId) -> Result<String, Exception> {
        let service = &self.service.aliases()[0];
        Ok(match self.objects.get(target)? {
            Lent::Root => format!("<wasm-rpyc service {service}>"),
            Lent::Method(method) => format!("<bound method {service}.{method}>"),
        })
    }

    /// Equality is identity; other comparisons are `NotImplemented`.
    fn compare(&self, target: ObjectId, other: &Value, op: &str) -> Result<Value, Exception> {
        self.objects.get(target)?;
        let same =
            matches!(other, Value::Object(o) if o.holder == Holder::Receiver && o.id == target);
        Ok(match op {
            "__eq__" => Value::Bool(same),
            "__ne__" => Value::Bool(!same),
            _ => Value::NotImplemented,
        })
    }
}
