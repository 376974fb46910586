//! `csra-host`: train, evaluate and inspect CSRA models on a workstation.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(args.log_level()))
        .format_timestamp_millis()
        .init();
    if !csra_host::allocator::keep_freed_memory() {
        log::debug!("the C library's malloc keeps its own trimming behaviour");
    }
    match cli::run(args) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", csra_core::error_chain(err.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The reader of our stdout went away (`csra-host eval ... | head`): not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
