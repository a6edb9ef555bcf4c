//! The `objects` interface: a component whose SDK answers for its own
//! objects (a Python class built by `wasm-rpyc build`) exports it, and the
//! host turns every request about one of them, or about the root's members
//! beyond its exposed callables, into a call of one of its functions.

use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Type};

use super::method::Method;
use crate::service::ObjectRequest;
use crate::value::Value;

/// The exported interface's name.
pub(crate) const OBJECTS_INTERFACE: &str = "wasm-rpyc:service/objects@0.1.0";

/// The handle of the connection's service object, the root.
pub(crate) const ROOT_HANDLE: u64 = 0;

/// The functions of an `objects` export, ready to call.
#[derive(Clone)]
pub(crate) struct ObjectsExports {
    get_attr: Method,
    call: Method,
    describe: Method,
    set_attr: Method,
    del_attr: Method,
    pickle: Method,
    buff_iter: Method,
    exit_context: Method,
    instance_check: Method,
    release: Method,
}

impl ObjectsExports {
    /// Finds the functions in the exported instance `interface` of type
    /// `ty`; why not, when one is missing or has another shape.
    pub(crate) fn find(
        component: &Component,
        engine: &Engine,
        interface: &ComponentExportIndex,
        ty: &ComponentInstance,
    ) -> Result<Self, String> {
        let method = |name: &str, params: usize, returns: bool| {
            let func = ty
                .exports(engine)
                .find_map(|(member, item)| match item.ty {
                    ComponentItem::ComponentFunc(func) if member == name => Some(func),
                    _ => None,
                })
                .ok_or_else(|| format!("`{name}` is missing"))?;
            check(name, &func, params, returns)?;
            let export = component
                .get_export_index(Some(interface), name)
                .expect("listed export");
            Ok::<_, String>(Method {
                name: name.to_owned(),
                export,
                // The host passes the object's handle itself.
                params: func
                    .params()
                    .skip(1)
                    .map(|(p, t)| (p.to_owned(), t))
                    .collect(),
                result: func.results().next(),
            })
        };
        Ok(ObjectsExports {
            get_attr: method("get-attr", 2, true)?,
            call: method("call", 4, true)?,
            describe: method("describe", 2, true)?,
            set_attr: method("set-attr", 3, true)?,
            del_attr: method("del-attr", 2, true)?,
            pickle: method("pickle", 2, true)?,
            buff_iter: method("buff-iter", 2, true)?,
            exit_context: method("exit-context", 2, true)?,
            instance_check: method("instance-check", 2, true)?,
            release: method("release", 1, false)?,
        })
    }

    /// The function that answers `request`, and its arguments after the
    /// object's handle.
    pub(crate) fn request(&self, request: ObjectRequest) -> (&Method, Vec<Option<Value>>) {
        match request {
            ObjectRequest::GetAttr(name) => (&self.get_attr, vec![Some(Value::Str(name))]),
            ObjectRequest::Call {
                method,
                args,
                kwargs,
            } => {
                let kwargs = kwargs
                    .into_iter()
                    .map(|(name, value)| Value::Tuple(vec![Value::Str(name), value]))
                    .collect();
                let method = method.map_or(Value::None, Value::Str);
                (
                    &self.call,
                    vec![
                        Some(method),
                        Some(Value::Tuple(args)),
                        Some(Value::Tuple(kwargs)),
                    ],
                )
            }
            ObjectRequest::Describe(what) => (
                &self.describe,
                vec![Some(Value::Str(what.wit_name().to_owned()))],
            ),
            ObjectRequest::SetAttr { name, value } => {
                (&self.set_attr, vec![Some(Value::Str(name)), Some(value)])
            }
            ObjectRequest::DelAttr(name) => (&self.del_attr, vec![Some(Value::Str(name))]),
            ObjectRequest::Pickle { protocol } => {
                (&self.pickle, vec![Some(Value::Int(protocol.into()))])
            }
            ObjectRequest::BuffIter(count) => {
                (&self.buff_iter, vec![Some(Value::Int(count.into()))])
            }
            ObjectRequest::ExitContext(exception) => (&self.exit_context, vec![Some(exception)]),
            ObjectRequest::InstanceCheck(instance) => (&self.instance_check, vec![Some(instance)]),
        }
    }

    /// The function that releases an object.
    pub(crate) fn release(&self) -> &Method {
        &self.release
    }
}

/// Checks that `func` takes the object's `u64` handle and `params` in all,
/// and returns a `result` when `returns`, else nothing.
fn check(name: &str, func: &ComponentFunc, params: usize, returns: bool) -> Result<(), String> {
    let takes_handle = matches!(func.params().next(), Some((_, Type::U64)));
    let result = func.results().next();
    let returns_fits = match returns {
        true => matches!(result, Some(Type::Result(_))),
        false => result.is_none(),
    };
    if takes_handle && func.params().len() == params && returns_fits {
        return Ok(());
    }
    Err(format!(
        "`{name}` does not have the shape of {OBJECTS_INTERFACE}'s"
    ))
}
