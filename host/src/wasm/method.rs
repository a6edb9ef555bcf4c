//! An exposed method's signature: binding a caller's positional and keyword
//! arguments to the export's parameters as Python does, and turning what the
//! export returns into a value or an exception.

use wasmtime::component::{ComponentExportIndex, Type, Val};

use super::convert::{self, Keep, Lend, Mismatch};
use crate::exception::Exception;
use crate::service::bind_arguments;
use crate::value::Value;

/// An `exposed-*` export, ready to call by index.
#[derive(Clone)]
pub(crate) struct Method {
    /// The Python name (`exposed-get-value` is `get_value`).
    pub(crate) name: String,
    pub(crate) export: ComponentExportIndex,
    /// Parameter names (snake_case, as keyword arguments use them) and types.
    pub(crate) params: Vec<(String, Type)>,
    pub(crate) result: Option<Type>,
}

/// The Python spelling of a WIT name: kebab-case becomes snake_case.
pub(crate) fn python_name(wit: &str) -> String {
    wit.replace('-', "_")
}

impl Method {
    /// Binds positional then keyword arguments to the parameters, in
    /// parameter order. An `option<T>` parameter may be left out.
    pub(crate) fn bind(
        &self,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Vec<Option<Value>>, Exception> {
        let params = self.params.iter().map(|(param, _)| param.as_str());
        let slots = bind_arguments(&self.name, params, args, kwargs)?;
        let missing: Vec<String> = self
            .params
            .iter()
            .zip(&slots)
            .filter(|((_, ty), slot)| slot.is_none() && !matches!(ty, Type::Option(_)))
            .map(|((p, _), _)| format!("'{p}'"))
            .collect();
        if !missing.is_empty() {
            return Err(Exception::type_error(format!(
                "{}() missing {} required argument{}: {}",
                self.name,
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )));
        }
        Ok(slots)
    }

    /// Converts bound arguments to the parameters' types; a left-out
    /// `option<T>` is `none`.
    pub(crate) fn convert(
        &self,
        slots: Vec<Option<Value>>,
        lend: &mut dyn Lend,
    ) -> Result<Vec<Val>, Exception> {
        self.params
            .iter()
            .zip(slots)
            .map(|((param, ty), slot)| match slot {
                None => Ok(Val::Option(None)),
                Some(value) => {
                    convert::to_val(value, ty, lend).map_err(|m| self.mismatch(param, m))
                }
            })
            .collect()
    }

    fn mismatch(&self, param: &str, m: Mismatch) -> Exception {
        let type_name = if m.overflow {
            "OverflowError"
        } else {
            "TypeError"
        };
        Exception::new(
            type_name,
            format!(
                "{}() argument '{param}{}': expected {}, got {}",
                self.name, m.path, m.expected, m.got
            ),
        )
    }

    /// How many result slots a call needs.
    pub(crate) fn result_slots(&self) -> Vec<Val> {
        self.result.iter().map(|_| Val::Bool(false)).collect()
    }

    /// What the caller receives for the export's `result` (none when the
    /// export returns nothing). A top-level `result<T, E>` is unwrapped: `ok`
    /// is the value, `err` is raised.
    /// Resources in it go to `keep`.
    pub(crate) fn outcome(
        &self,
        result: Option<Val>,
        keep: &mut dyn Keep,
    ) -> Result<Value, Exception> {
        let (Some(val), Some(ty)) = (result, &self.result) else {
            return Ok(Value::None);
        };
        let unreturnable = |e: convert::Unreturnable| Exception::runtime_error(e.to_string());
        match (val, ty) {
            (Val::Result(Ok(payload)), Type::Result(r)) => match (payload, r.ok()) {
                (Some(payload), Some(ty)) => {
                    convert::from_val(*payload, &ty, keep).map_err(unreturnable)
                }
                _ => Ok(Value::None),
            },
            (Val::Result(Err(payload)), Type::Result(r)) => {
                Err(raised(payload.map(|p| *p), r.err()))
            }
            (val, ty) => convert::from_val(val, ty, keep).map_err(unreturnable),
        }
    }
}

/// The exception for an export's `err`: the shared `error` record gives type,
/// message and traceback; a string is an `Exception` with that message;
/// anything else is an `Exception` showing the payload.
fn raised(payload: Option<Val>, ty: Option<Type>) -> Exception {
    match payload {
        Some(Val::Record(fields)) => match error_record(&fields) {
            Some(exception) => exception,
            None => shown(Val::Record(fields), ty),
        },
        Some(Val::String(message)) => Exception::plain(message),
        Some(val) => shown(val, ty),
        None => Exception::plain(""),
    }
}

/// The exception the shared `error` record's `fields` describe, if they are
/// its.
fn error_record(fields: &[(String, Val)]) -> Option<Exception> {
    let [
        (type_field, Val::String(type_name)),
        (message_field, Val::String(message)),
        (traceback_field, Val::Option(traceback)),
    ] = fields
    else {
        return None;
    };
    if (
        type_field.as_str(),
        message_field.as_str(),
        traceback_field.as_str(),
    ) != ("type-name", "message", "traceback")
    {
        return None;
    }
    let mut exception = Exception::new(type_name.clone(), message.clone());
    exception.traceback = match traceback.as_deref() {
        Some(Val::String(text)) => Some(text.clone()),
        _ => None,
    };
    Some(exception)
}

fn shown(val: Val, ty: Option<Type>) -> Exception {
    let message = ty
        .and_then(|ty| convert::from_val(val, &ty, &mut convert::Refuse).ok())
        .map_or_else(
            || "the service returned an error".to_owned(),
            |v| v.to_string(),
        );
    Exception::plain(message)
}
