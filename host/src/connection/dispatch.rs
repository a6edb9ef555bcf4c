//! Serving the peer's requests: each request becomes an operation on this
//! side's lent objects (its service, the service's methods and objects, and
//! native functions), in arrival order, and its result goes back as a reply.
//!
//! Only calls into the service need the service itself. Everything else
//! (names, attributes, inspection, releases, native functions) is answered
//! from the lent objects and what the service exposes, so it is answered
//! even while the service waits on the peer.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::objects::{Lent, METHOD_CLASS};
use super::queues::Incoming;
use super::shared::Shared;
use crate::exception::Exception;
use crate::local::{Local, ServiceObject};
use crate::metrics;
use crate::peer::{Peer, PeerLink};
use crate::protocol::{Holder, Message, ObjectId, ObjectRef, Request, Seq};
use crate::service::{
    Description, Exposed, ObjectRequest, Service, not_iterable, pickling_disabled,
};
use crate::value::Value;

/// Runs `service` for one connection: `on_connect`, every request until the
/// inbox closes or the peer sends `Close`, then the release of everything
/// the peer held, then `on_disconnect`.
pub(super) async fn serve<S: Service>(
    mut service: S,
    mut inbox: mpsc::Receiver<Incoming>,
    shared: Arc<Shared>,
) {
    let shared = &shared;
    let peer = Peer::new(Arc::clone(shared) as Arc<dyn PeerLink>);
    if let Err(error) = service.on_connect(peer).await {
        tracing::warn!(peer = %shared.peer(), %error, "on_connect failed; closing the connection");
        shared.status().close();
        return;
    }
    let mut answers = Answers {
        shared,
        exposed: Exposed::of(&service),
    };
    let mut waiting = shared.status().watch_waiting_on_peer();
    let peer_gone = shared.status().peer_gone();
    tokio::pin!(peer_gone);
    // The service's objects the peer released, for the service to let go
    // once it is free.
    let mut released = Vec::new();
    while let Some(Incoming { seq, request, held }) = inbox.recv().await {
        // Out of the queue: its bytes no longer count against the peer.
        drop(held);
        // Marked before the check, so the reader and writer, once closing,
        // either see this request served or see it refused.
        shared.status().set_serving(true);
        if shared.status().is_closing() {
            break;
        }
        // The releases the service asks for go out after the reply.
        let deferral = shared.held().defer_releases();
        let result = match answers.answer(request, &mut released).await {
            Answer::Reply(result) => result,
            Answer::Close => break,
            Answer::Service(call) => {
                let timed = metrics::recording().map(|m| (m, call.method(), Instant::now()));
                let result = {
                    let calling = call.run(&mut service);
                    tokio::pin!(calling);
                    loop {
                        tokio::select! {
                            biased;
                            result = &mut calling => break result,
                            () = &mut peer_gone => break Err(gone()),
                            _ = waiting.changed() => {}
                            Some(Incoming { seq, request: nested, held }) = inbox.recv(), if *waiting.borrow() > 0 => {
                                drop(held);
                                let result = match answers.answer(nested, &mut released).await {
                                    Answer::Reply(result) => result,
                                    // The reader stops at Close; the waiting call then fails as closed.
                                    Answer::Close => continue,
                                    Answer::Service(_) => Err(busy()),
                                };
                                answers.reply(seq, result).await;
                            }
                        }
                    }
                };
                if let Some((metrics, method, started)) = timed {
                    let service = answers.exposed.name();
                    metrics.call(service, &method, &result, started.elapsed());
                }
                let exposed = &answers.exposed;
                let unknown = |v: &Value| matches!(v, Value::Local(Local::Service(o)) if !exposed.knows_class(&o.class));
                if let Ok(value) = &result
                    && value.any(unknown)
                {
                    answers.exposed.update_classes(&service);
                }
                result
            }
        };
        let replied = answers.reply(seq, result).await;
        shared.status().touch();
        shared.status().set_serving(false);
        if !replied {
            break;
        }
        drop(deferral);
        for object in released.drain(..) {
            service.release_object(object).await;
        }
    }
    shared.status().set_serving(false);
    shared.status().close();
    let lent = shared.lent().clear();
    for object in released.into_iter().chain(lent) {
        service.release_object(object).await;
    }
    service.on_disconnect().await;
}

/// Why a call in progress was abandoned: nobody is left to answer.
fn gone() -> Exception {
    Exception::eof_error("the peer closed the connection during the call")
}

/// The answer to a request that enters the service while it waits on the
/// peer (for a reply to a call it made): it cannot be entered again until its
/// call ends, so the request fails at once instead of waiting on a reply that
/// waits on it.
fn busy() -> Exception {
    Exception::runtime_error(
        "the service is busy: it is waiting for this side to answer its own call, and cannot be \
         called again until then",
    )
}

/// What a request comes to.
enum Answer {
    /// Answered without the service.
    Reply(Result<Value, Exception>),
    /// A call into the service.
    Service(ServiceCall),
    /// The peer is closing.
    Close,
}

/// A call that enters the service.
enum ServiceCall {
    /// A member of the root: an exposed method or class.
    Root {
        name: String,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    },
    /// A request about one of the service's objects (`None`: its root, of
    /// a service that serves its objects): a call of an exposed class's
    /// method, or anything asked of an object the service serves itself.
    Object {
        object: Option<ServiceObject>,
        request: ObjectRequest,
    },
}

impl ServiceCall {
    /// The method called, as metrics name it: `Class.method` for an
    /// object's.
    fn method(&self) -> String {
        match self {
            ServiceCall::Root { name, .. } => name.clone(),
            ServiceCall::Object { object, request } => {
                let class = object.as_ref().map_or("", |o| o.class.as_str());
                let what = match request {
                    ObjectRequest::GetAttr(name) => name.clone(),
                    ObjectRequest::Call { method, .. } => method.clone().unwrap_or_default(),
                    ObjectRequest::Describe(description) => description.wit_name().to_owned(),
                    ObjectRequest::SetAttr { name, .. } | ObjectRequest::DelAttr(name) => {
                        name.clone()
                    }
                    ObjectRequest::Pickle { .. } => "__reduce_ex__".to_owned(),
                    ObjectRequest::BuffIter(_) => "__next__".to_owned(),
                    ObjectRequest::ExitContext(_) => "__exit__".to_owned(),
                    ObjectRequest::InstanceCheck(_) => "__instancecheck__".to_owned(),
                };
                format!("{class}.{what}")
            }
        }
    }

    async fn run<S: Service>(self, service: &mut S) -> Result<Value, Exception> {
        match self {
            ServiceCall::Root { name, args, kwargs } => service.call(&name, args, kwargs).await,
            ServiceCall::Object { object, request } => {
                service.object_request(object.as_ref(), request).await
            }
        }
    }
}

/// Answers requests from the lent objects and what the service exposes.
struct Answers<'a> {
    shared: &'a Shared,
    exposed: Exposed,
}

impl Answers<'_> {
    /// Sends the reply to request `seq`, lending the objects in it first;
    /// `false` when the connection is gone.
    async fn reply(&self, seq: Seq, mut result: Result<Value, Exception>) -> bool {
        let mut kept = Vec::new();
        if let Ok(value) = &mut result
            && let Err(exception) = self.shared.prepare(value, &mut kept)
        {
            result = Err(exception);
        }
        let sent = self.shared.send(Message::Reply { seq, result }).await;
        drop(kept);
        sent.is_ok()
    }

    /// The answer to `request`. Service objects the peer releases are added
    /// to `released`.
    async fn answer(&self, request: Request, released: &mut Vec<ServiceObject>) -> Answer {
        Answer::Reply(match request {
            Request::GetRoot => self.lend(Lent::Root),
            Request::GetAttr { target, name } => return self.get_attr(target, &name),
            Request::Call {
                target,
                args,
                kwargs,
            } => return self.call(target, None, args, kwargs).await,
            Request::CallAttr {
                target,
                name,
                args,
                kwargs,
            } => return self.call(target, Some(&name), args, kwargs).await,
            Request::Del { target, count } => {
                self.shared.lent().release(target, count).map(|freed| {
                    released.extend(freed);
                    Value::None
                })
            }
            Request::Inspect { target } => {
                return self.described(target, Description::Methods, |a| a.inspect(target));
            }
            Request::Repr { target } => {
                return self.described(target, Description::Repr, |a| {
                    a.describe(target).map(Value::Str)
                });
            }
            Request::Str { target } => {
                return self.described(target, Description::Str, |a| {
                    a.describe(target).map(Value::Str)
                });
            }
            Request::Hash { target } => {
                return self.described(target, Description::Hash, |a| {
                    a.lent(target).map(|_| Value::Int(target.into()))
                });
            }
            Request::Dir { target } => {
                return self.described(target, Description::Dir, |a| a.dir(target));
            }
            Request::Cmp { target, other, op } => match self.served_object(target) {
                Some(object) => {
                    let mut args = vec![other];
                    self.shared.resolve_locals(args.iter_mut());
                    return Answer::Service(ServiceCall::Object {
                        object,
                        request: ObjectRequest::Call {
                            method: Some(op),
                            args,
                            kwargs: Vec::new(),
                        },
                    });
                }
                None => self.compare(target, &other, &op),
            },
            Request::SetAttr {
                target,
                name,
                mut value,
            } => {
                self.shared.resolve_locals(std::iter::once(&mut value));
                return self.served_or(
                    target,
                    &name,
                    ObjectRequest::SetAttr {
                        name: name.clone(),
                        value,
                    },
                );
            }
            Request::DelAttr { target, name } => {
                return self.served_or(target, &name, ObjectRequest::DelAttr(name.clone()));
            }
            Request::BuffIter { target, count } => match self.served_object(target) {
                Some(object) => {
                    let count = u32::try_from(count).unwrap_or(u32::MAX);
                    return Answer::Service(ServiceCall::Object {
                        object,
                        request: ObjectRequest::BuffIter(count),
                    });
                }
                None => self.lent(target).and(Err(not_iterable())),
            },
            Request::CtxExit {
                target,
                mut exception,
            } => match self.served_object(target) {
                Some(object) => {
                    self.shared.resolve_locals(std::iter::once(&mut exception));
                    return Answer::Service(ServiceCall::Object {
                        object,
                        request: ObjectRequest::ExitContext(exception),
                    });
                }
                None => self
                    .lent(target)
                    .and(Err(Exception::no_attribute("__exit__"))),
            },
            Request::Pickle { target, protocol } => match self.served_object(target) {
                Some(object) => {
                    return Answer::Service(ServiceCall::Object {
                        object,
                        request: ObjectRequest::Pickle { protocol },
                    });
                }
                None => self.lent(target).and(Err(pickling_disabled())),
            },
            Request::InstanceCheck { target, instance } => {
                return self.instance_check(target, instance);
            }
            Request::Unsupported { operation } => Err(Exception::not_implemented_error(format!(
                "{operation} is not supported by wasm-rpyc"
            ))),
            Request::Invalid(exception) => Err(exception),
            Request::Ping(data) => Ok(data),
            Request::Close => return Answer::Close,
        })
    }

    fn lent(&self, id: ObjectId) -> Result<Lent, Exception> {
        self.shared.lent().get(id).cloned()
    }

    fn lend(&self, object: Lent) -> Result<Value, Exception> {
        let class = match &object {
            Lent::Root => format!("wasm_rpyc.{}", self.exposed.name()),
            Lent::Method(_) | Lent::BoundMethod { .. } => METHOD_CLASS.to_owned(),
            Lent::Local(local) => local.class().to_owned(),
        };
        let is_class = matches!(&object, Lent::Local(local) if local.is_class());
        let id = self.shared.lent().lend(object)?;
        Ok(Value::Object(ObjectRef {
            holder: Holder::Sender,
            id,
            class,
            is_class,
        }))
    }

    /// The object `target` names, if the service answers for it itself:
    /// `Some(None)` for its root.
    fn served_object(&self, target: ObjectId) -> Option<Option<ServiceObject>> {
        // A service that serves no objects costs no lookup.
        if !self.exposed.serves_objects() && !self.exposed.serves_root() {
            return None;
        }
        self.served(&self.lent(target).ok()?)
    }

    /// The object `lent` is, if the service answers for it itself.
    fn served(&self, lent: &Lent) -> Option<Option<ServiceObject>> {
        match lent {
            Lent::Root if self.exposed.serves_root() => Some(None),
            Lent::Local(Local::Service(object)) if self.exposed.serves(object) => {
                Some(Some(object.clone()))
            }
            _ => None,
        }
    }

    /// Asks the service to describe `target` if it answers for it itself,
    /// else answers with `otherwise`.
    fn described(
        &self,
        target: ObjectId,
        description: Description,
        otherwise: impl FnOnce(&Self) -> Result<Value, Exception>,
    ) -> Answer {
        match self.served_object(target) {
            Some(object) => Answer::Service(ServiceCall::Object {
                object,
                request: ObjectRequest::Describe(description),
            }),
            None => Answer::Reply(otherwise(self)),
        }
    }

    /// Asks the service `request` (setting or deleting the attribute
    /// `name`) of `target` if it answers for it itself; refused for any
    /// other object.
    fn served_or(&self, target: ObjectId, name: &str, request: ObjectRequest) -> Answer {
        match self.served_object(target) {
            Some(object) => Answer::Service(ServiceCall::Object { object, request }),
            None => Answer::Reply(self.lent(target).and(Err(Exception::no_attribute(name)))),
        }
    }

    /// Whether the class `target` is a class of `instance`: the service
    /// answers for its own objects; an object it does not hold (the id_pack
    /// names another of its class, or another connection's) is of none of
    /// its classes, as RPyC answers.
    fn instance_check(&self, target: ObjectId, instance: Option<ObjectRef>) -> Answer {
        let instance = instance.and_then(|named| match self.lent(named.id) {
            Ok(Lent::Local(local)) if local.class() == named.class => Some(Value::Local(local)),
            _ => None,
        });
        match (self.served_object(target), instance) {
            (Some(object), Some(instance)) => Answer::Service(ServiceCall::Object {
                object,
                request: ObjectRequest::InstanceCheck(instance),
            }),
            _ => Answer::Reply(self.lent(target).map(|_| Value::Bool(false))),
        }
    }

    fn get_attr(&self, target: ObjectId, name: &str) -> Answer {
        let lent = match self.lent(target) {
            Ok(lent) => lent,
            Err(exception) => return Answer::Reply(Err(exception)),
        };
        let served = |object| {
            Answer::Service(ServiceCall::Object {
                object,
                request: ObjectRequest::GetAttr(name.to_owned()),
            })
        };
        Answer::Reply(match lent {
            Lent::Root => match self.exposed.root_member(name) {
                Some(member) => self.lend(Lent::Method(member.to_owned())),
                None if self.exposed.serves_root() => return served(None),
                None => Err(self.exposed.no_member(name)),
            },
            Lent::Method(method) | Lent::BoundMethod { name: method, .. } => match name {
                "__name__" => Ok(Value::Str(method)),
                "__doc__" => Ok(Value::None),
                _ => Err(Exception::no_attribute(name)),
            },
            Lent::Local(Local::Service(object)) if self.exposed.serves(&object) => {
                return served(Some(object));
            }
            Lent::Local(Local::Service(object)) => {
                match self.exposed.class_method(&object.class, name) {
                    Some(method) => {
                        let mut objects = self.shared.lent();
                        if let Err(exception) = objects.add_ref(target) {
                            return Answer::Reply(Err(exception));
                        }
                        let bound = Lent::BoundMethod {
                            of: target,
                            name: method.to_owned(),
                        };
                        drop(objects);
                        self.lend(bound)
                    }
                    None => Err(Exception::no_attribute(name)),
                }
            }
            Lent::Local(Local::Function(_)) => Err(Exception::no_attribute(name)),
        })
    }

    /// Calls the object `target` itself (`name` is `None`) or its method
    /// `name`.
    async fn call(
        &self,
        target: ObjectId,
        name: Option<&str>,
        mut args: Vec<Value>,
        mut kwargs: Vec<(String, Value)>,
    ) -> Answer {
        let lent = match self.lent(target) {
            Ok(lent) => lent,
            Err(exception) => return Answer::Reply(Err(exception)),
        };
        let not_callable = |what: &str| {
            Answer::Reply(Err(Exception::type_error(format!(
                "'{what}' object is not callable"
            ))))
        };
        if let Some(object) = self.served(&lent) {
            let is_member = |name| self.exposed.root_member(name).is_some();
            // The root's exposed methods are called by name below.
            if object.is_some() || name.is_some_and(|name| !is_member(name)) {
                return self.call_served(object, name, args, kwargs);
            }
        }
        // What is called, and by which name (`__call__` calls the object).
        let member = match (name, &lent) {
            (None | Some("__call__"), Lent::Root) => return not_callable(self.exposed.name()),
            (Some(name), Lent::Root) => match self.exposed.root_member(name) {
                Some(member) => member.to_owned(),
                None => return Answer::Reply(Err(self.exposed.no_member(name))),
            },
            (None | Some("__call__"), Lent::Method(method)) => method.clone(),
            (None | Some("__call__"), Lent::BoundMethod { name, .. }) => name.clone(),
            (None | Some("__call__"), Lent::Local(Local::Function(_))) => String::new(),
            (None, Lent::Local(Local::Service(object))) => return not_callable(&object.class),
            (Some(name), Lent::Local(Local::Service(object))) => {
                match self.exposed.class_method(&object.class, name) {
                    Some(method) => method.to_owned(),
                    None => return Answer::Reply(Err(Exception::no_attribute(name))),
                }
            }
            (Some(name), _) => return Answer::Reply(Err(Exception::no_attribute(name))),
        };
        let values = args.iter_mut().chain(kwargs.iter_mut().map(|(_, v)| v));
        self.shared.resolve_locals(values);
        match lent {
            Lent::Local(Local::Function(function)) => {
                Answer::Reply(function.call(args, kwargs).await)
            }
            Lent::Root | Lent::Method(_) => match self.exposed.builtin(&member, &args, &kwargs) {
                Some(result) => Answer::Reply(result),
                None => Answer::Service(ServiceCall::Root {
                    name: member,
                    args,
                    kwargs,
                }),
            },
            Lent::BoundMethod { of, .. } => match self.lent(of) {
                Ok(Lent::Local(Local::Service(object))) => {
                    Self::call_method(object, member, args, kwargs)
                }
                Ok(_) | Err(_) => Answer::Reply(Err(Exception::reference_error(
                    "the method's object is gone",
                ))),
            },
            Lent::Local(Local::Service(object)) => Self::call_method(object, member, args, kwargs),
        }
    }

    /// Calls the exposed method `name` of an exposed class's instance.
    fn call_method(
        object: ServiceObject,
        name: String,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Answer {
        Answer::Service(ServiceCall::Object {
            object: Some(object),
            request: ObjectRequest::Call {
                method: Some(name),
                args,
                kwargs,
            },
        })
    }

    /// Calls an object the service serves itself, or its method `name`.
    fn call_served(
        &self,
        object: Option<ServiceObject>,
        name: Option<&str>,
        mut args: Vec<Value>,
        mut kwargs: Vec<(String, Value)>,
    ) -> Answer {
        let values = args.iter_mut().chain(kwargs.iter_mut().map(|(_, v)| v));
        self.shared.resolve_locals(values);
        Answer::Service(ServiceCall::Object {
            object,
            request: ObjectRequest::Call {
                method: name.filter(|name| *name != "__call__").map(str::to_owned),
                args,
                kwargs,
            },
        })
    }

    /// The methods a client builds its netref class from: names only.
    fn inspect(&self, target: ObjectId) -> Result<Value, Exception> {
        let names = match self.lent(target)? {
            Lent::Root => self
                .exposed
                .root_members()
                .into_iter()
                .map(|n| format!("exposed_{n}"))
                .collect(),
            Lent::Local(Local::Service(object)) => self
                .exposed
                .class_methods(&object.class)
                .into_iter()
                .map(|n| format!("exposed_{n}"))
                .collect(),
            Lent::Method(_) | Lent::BoundMethod { .. } | Lent::Local(Local::Function(_)) => {
                vec!["__call__".to_owned()]
            }
        };
        Ok(Value::Tuple(
            names
                .into_iter()
                .map(|name| Value::Tuple(vec![Value::Str(name), Value::None]))
                .collect(),
        ))
    }

    fn dir(&self, target: ObjectId) -> Result<Value, Exception> {
        let names = match self.lent(target)? {
            Lent::Root => self.exposed.root_members(),
            Lent::Local(Local::Service(object)) => self.exposed.class_methods(&object.class),
            Lent::Method(_) | Lent::BoundMethod { .. } | Lent::Local(Local::Function(_)) => {
                vec!["__call__".into(), "__doc__".into(), "__name__".into()]
            }
        };
        Ok(Value::Tuple(names.into_iter().map(Value::Str).collect()))
    }

    fn describe(&self, target: ObjectId) -> Result<String, Exception> {
        let service = self.exposed.name();
        Ok(match self.lent(target)? {
            Lent::Root => format!("<wasm-rpyc service {service}>"),
            Lent::Method(method) => format!("<bound method {service}.{method}>"),
            Lent::BoundMethod { name, of } => {
                let class = match self.lent(of) {
                    Ok(Lent::Local(local)) => local.class().to_owned(),
                    _ => "object".to_owned(),
                };
                format!("<bound method {class}.{name}>")
            }
            Lent::Local(Local::Service(object)) => {
                format!("<{service}.{} object {target}>", object.class)
            }
            Lent::Local(Local::Function(_)) => format!("<native function {target}>"),
        })
    }

    /// Equality is identity; other comparisons are `NotImplemented`.
    fn compare(&self, target: ObjectId, other: &Value, op: &str) -> Result<Value, Exception> {
        self.lent(target)?;
        let same =
            matches!(other, Value::Object(o) if o.holder == Holder::Receiver && o.id == target);
        Ok(match op {
            "__eq__" => Value::Bool(same),
            "__ne__" => Value::Bool(!same),
            _ => Value::NotImplemented,
        })
    }
}
