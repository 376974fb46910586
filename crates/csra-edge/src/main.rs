//! The `csra-edge` binary; everything lives in the library's [`csra_edge::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logs go to stderr, so stdout carries nothing but result lines.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match csra_edge::cli::main(csra_edge::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
