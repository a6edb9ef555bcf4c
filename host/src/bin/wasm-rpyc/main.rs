//! The `wasm-rpyc` command: parsing and wiring only. Its parts: the flags
//! (`args`, with the ranges of their values in `units`), logging (`logs`),
//! `serve` (what it serves: `plan`, from the flags or a `config` file),
//! `registry`, `ping`, `build` (`builder`), the fleet's commands (`fleet`),
//! and the process's signals (`signals`).

mod args;
mod builder;
mod config;
mod crate_build;
mod fleet;
mod logs;
mod ping;
mod plan;
mod registry;
mod serve;
mod signals;
mod units;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    logs::init(&cli.log)?;
    let args = match cli.command {
        Command::Serve(args) => *args,
        Command::Classic(mut args) => {
            args.classic = true;
            *args
        }
        Command::Registry(args) => {
            return tokio::runtime::Runtime::new()?.block_on(registry::serve(args));
        }
        Command::Build(args) => {
            let output = match args.output {
                Some(output) => output,
                None => builder::default_output(&args.source),
            };
            builder::build(&args.source, args.service.as_deref(), &output)?;
            println!("built {}", output.display());
            return Ok(());
        }
        Command::Ping(args) => return tokio::runtime::Runtime::new()?.block_on(ping::ping(args)),
        Command::Deploy(args) => return fleet::run(fleet::deploy(args)),
        Command::Undeploy(args) => return fleet::run(fleet::undeploy(args)),
        Command::Rollback(args) => return fleet::run(fleet::rollback(args)),
        Command::Status(args) => return fleet::run(fleet::status(args)),
    };
    let plan = plan::plan(args)?;
    tokio::runtime::Runtime::new()?.block_on(serve::serve(plan))
}
