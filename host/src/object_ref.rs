//! Naming objects passed by reference: which side holds one, and its id in
//! that side's table.

use serde::{Deserialize, Serialize};

/// Names an object within the table of the side that holds it.
pub type ObjectId = u64;

/// Which side of a connection holds an object, seen from the side that sends
/// the message carrying the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Holder {
    /// The sender holds it and lends it (RPyC's `REMOTE_REF`).
    Sender,
    /// The receiver holds it; the sender hands back a reference it was lent
    /// (RPyC's `LOCAL_REF`).
    Receiver,
}

/// An object passed by reference: it stays with its holder, the other side
/// operates on it through the connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Who holds the object, relative to the message's sender.
    pub holder: Holder,
    /// Its id in the holder's table.
    pub id: ObjectId,
    /// Its class, dotted as Python names it (`builtins.method`, `builtins.list`);
    /// for a class, its own name.
    pub class: String,
    /// Whether the object is itself a class: RPyC names a class by its own
    /// name and no instance, and the other side's proxy of it is a class
    /// (`isinstance(x, proxy)`).
    #[serde(default)]
    pub is_class: bool,
}
