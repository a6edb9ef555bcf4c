//! RPyC's request handlers (`HANDLE_*` in `rpyc/core/consts.py`): one table
//! for both directions, the number a request carries and its name.

/// Declares the handlers once: each variant, its number and RPyC's name.
macro_rules! handlers {
    ($($variant:ident = $number:literal => $name:literal,)*) => {
        /// An RPyC request handler.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Handler {
            $($variant = $number,)*
        }

        impl Handler {
            /// The handler a request's number names, if any.
            pub(super) fn from_number(number: i128) -> Option<Self> {
                match number {
                    $($number => Some(Handler::$variant),)*
                    _ => None,
                }
            }

            /// RPyC's name: `HANDLE_GETATTR`.
            pub(super) fn name(self) -> &'static str {
                match self {
                    $(Handler::$variant => $name,)*
                }
            }
        }
    };
}

handlers! {
    Ping = 1 => "HANDLE_PING",
    Close = 2 => "HANDLE_CLOSE",
    GetRoot = 3 => "HANDLE_GETROOT",
    GetAttr = 4 => "HANDLE_GETATTR",
    DelAttr = 5 => "HANDLE_DELATTR",
    SetAttr = 6 => "HANDLE_SETATTR",
    Call = 7 => "HANDLE_CALL",
    CallAttr = 8 => "HANDLE_CALLATTR",
    Repr = 9 => "HANDLE_REPR",
    Str = 10 => "HANDLE_STR",
    Cmp = 11 => "HANDLE_CMP",
    Hash = 12 => "HANDLE_HASH",
    Dir = 13 => "HANDLE_DIR",
    Pickle = 14 => "HANDLE_PICKLE",
    Del = 15 => "HANDLE_DEL",
    Inspect = 16 => "HANDLE_INSPECT",
    BuffIter = 17 => "HANDLE_BUFFITER",
    OldSlicing = 18 => "HANDLE_OLDSLICING",
    CtxExit = 19 => "HANDLE_CTXEXIT",
    InstanceCheck = 20 => "HANDLE_INSTANCECHECK",
}

impl Handler {
    /// The number a request carries.
    pub(super) fn number(self) -> i128 {
        self as i128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_handlers_agree_both_ways() {
        for number in 1..=20 {
            let handler = Handler::from_number(number).unwrap();
            assert_eq!(handler.number(), number);
        }
        assert_eq!(Handler::from_number(0), None);
        assert_eq!(Handler::from_number(21), None);
        assert_eq!(Handler::from_number(i128::MIN), None);
        assert_eq!(Handler::GetAttr.name(), "HANDLE_GETATTR");
    }
}
