//! The `csra-edge` binary: the command line (`cli`) over the csra-edge library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logs go to stderr, so stdout carries nothing but result lines.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli::main(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
