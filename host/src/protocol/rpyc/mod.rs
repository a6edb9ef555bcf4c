//! RPyC 6's wire format, for the unmodified Python `rpyc` package: channel
//! framing, brine values and vinegar exceptions. Facts in
//! `shared/reference/rpyc-protocol.md`; the installed package is the final word.

pub mod brine;
pub mod channel;
pub mod vinegar;

#[cfg(test)]
mod vectors;
