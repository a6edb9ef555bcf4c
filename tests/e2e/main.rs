//! End-to-end tests: components built from source, served on real sockets,
//! called by the Rust client. One module per topic.

mod budgets;
mod calculator;
mod callbacks;
mod capabilities;
mod classes;
mod cluster;
mod conformance;
mod decoupled;
mod deploy;
mod hooks;
mod hostile;
mod loading;
mod plain_python;
mod python_server;
mod registry;
mod replace;
mod sdk;
mod shared;
mod shutdown;
mod tls;
mod traps;
mod values;
