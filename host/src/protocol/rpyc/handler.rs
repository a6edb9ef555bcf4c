//! RPyC's request handlers (`HANDLE_*` in `rpyc/core/consts.py`): one table
//! for both directions, the number a request carries and its name.

/// An RPyC request handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handler {
    Ping = 1,
    Close = 2,
    GetRoot = 3,
    GetAttr = 4,
    DelAttr = 5,
    SetAttr = 6,
    Call = 7,
    CallAttr = 8,
    Repr = 9,
    Str = 10,
    Cmp = 11,
    Hash = 12,
    Dir = 13,
    Pickle = 14,
    Del = 15,
    Inspect = 16,
    BuffIter = 17,
    OldSlicing = 18,
    CtxExit = 19,
    InstanceCheck = 20,
}

/// Every handler, in number order.
const HANDLERS: [Handler; 20] = [
    Handler::Ping,
    Handler::Close,
    Handler::GetRoot,
    Handler::GetAttr,
    Handler::DelAttr,
    Handler::SetAttr,
    Handler::Call,
    Handler::CallAttr,
    Handler::Repr,
    Handler::Str,
    Handler::Cmp,
    Handler::Hash,
    Handler::Dir,
    Handler::Pickle,
    Handler::Del,
    Handler::Inspect,
    Handler::BuffIter,
    Handler::OldSlicing,
    Handler::CtxExit,
    Handler::InstanceCheck,
];

impl Handler {
    /// The handler a request's number names, if any.
    pub(super) fn from_number(number: i128) -> Option<Self> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        HANDLERS.get(index).copied()
    }

    /// The number a request carries.
    pub(super) fn number(self) -> i128 {
        self as i128
    }

    /// RPyC's name: `HANDLE_GETATTR`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Handler::Ping => "HANDLE_PING",
            Handler::Close => "HANDLE_CLOSE",
            Handler::GetRoot => "HANDLE_GETROOT",
            Handler::GetAttr => "HANDLE_GETATTR",
            Handler::DelAttr => "HANDLE_DELATTR",
            Handler::SetAttr => "HANDLE_SETATTR",
            Handler::Call => "HANDLE_CALL",
            Handler::CallAttr => "HANDLE_CALLATTR",
            Handler::Repr => "HANDLE_REPR",
            Handler::Str => "HANDLE_STR",
            Handler::Cmp => "HANDLE_CMP",
            Handler::Hash => "HANDLE_HASH",
            Handler::Dir => "HANDLE_DIR",
            Handler::Pickle => "HANDLE_PICKLE",
            Handler::Del => "HANDLE_DEL",
            Handler::Inspect => "HANDLE_INSPECT",
            Handler::BuffIter => "HANDLE_BUFFITER",
            Handler::OldSlicing => "HANDLE_OLDSLICING",
            Handler::CtxExit => "HANDLE_CTXEXIT",
            Handler::InstanceCheck => "HANDLE_INSTANCECHECK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_handlers_agree_both_ways() {
        for (index, handler) in HANDLERS.iter().enumerate() {
            assert_eq!(handler.number(), index as i128 + 1);
            assert_eq!(Handler::from_number(handler.number()), Some(*handler));
        }
        assert_eq!(Handler::from_number(0), None);
        assert_eq!(Handler::from_number(21), None);
        assert_eq!(Handler::from_number(i128::MIN), None);
        assert_eq!(Handler::GetAttr.name(), "HANDLE_GETATTR");
    }
}
