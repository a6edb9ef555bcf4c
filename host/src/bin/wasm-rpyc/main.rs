//! The `wasm-rpyc` command: parsing and wiring only. Its parts: the flags
//! (`args`), logging (`logs`), `serve`, `registry`, `ping`, and the process's
//! signals (`signals`).

mod args;
mod logs;
mod ping;
mod registry;
mod serve;
mod signals;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    logs::init(&cli.log)?;
    let args = match cli.command {
        Command::Serve(args) => *args,
        Command::Registry(args) => {
            return tokio::runtime::Runtime::new()?.block_on(registry::serve(args));
        }
        Command::Ping(args) => return tokio::runtime::Runtime::new()?.block_on(ping::ping(args)),
    };
    serve::check(&args)?;
    tokio::runtime::Runtime::new()?.block_on(serve::serve(args))
}
