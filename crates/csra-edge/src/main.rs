//! The `csra-edge` binary: the command line (`cli`) over the csra-edge library.
//!
//! Exit codes: 0 done, 1 an error (the message says what to do), 2 a command line clap
//! cannot parse, 3 the run finished but some results were not delivered (stdout could not be
//! written, the MQTT queue overflowed or the broker never acknowledged, attention pictures
//! failed): the summary says how many.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logs go to stderr, so stdout carries nothing but result lines.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli::main(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", csra_core::error_chain(error.as_ref()));
            if error.downcast_ref::<cli::Incomplete>().is_some() {
                ExitCode::from(cli::EXIT_INCOMPLETE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
