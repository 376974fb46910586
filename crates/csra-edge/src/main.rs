//! The `csra-edge` binary: the command line (`cli`) over the csra-edge library.
//!
//! Exit codes: 0 done, 1 an error (the message says what to do), 2 a command line clap
//! cannot parse, 3 the run finished but some results were not delivered (stdout could not be
//! written, the MQTT queue overflowed or the broker never acknowledged, attention pictures
//! failed): the summary says how many.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// The CPU check runs from `.preinit_array`, before every static constructor: tract's operator
/// registries (the `inventory` crate) run code at load time, and in a build for a newer core
/// that code already uses instructions an older CPU lacks (LSE atomics), so a check at the top
/// of `main` would come after the SIGILL.
// The one placement attribute of the crate: the ELF loader calls each pointer of the section
// once, with no arguments, which is what the `extern "C" fn()` type states.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[link_section = ".preinit_array"]
static CHECK_CPU_FEATURES: extern "C" fn() = check_cpu_features;

/// Exits with the missing features named when this build assumes some the CPU lacks.
extern "C" fn check_cpu_features() {
    if let Err(error) = csra_edge::cpu_features::check() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    // Elsewhere there is no pre-initialisation hook; main is the earliest place.
    #[cfg(not(target_os = "linux"))]
    check_cpu_features();
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
