//! RPyC 6's wire format, for the unmodified Python `rpyc` package: channel
//! framing, brine values, boxing of references, vinegar exceptions, and the
//! codec that turns them into protocol messages. Facts in
//! `shared/reference/rpyc-protocol.md`; the installed package is the final word.

pub mod boxing;
pub mod brine;
pub mod channel;
mod codec;
mod handler;
pub mod vinegar;

pub use codec::RpycCodec;

#[cfg(test)]
mod vectors;
