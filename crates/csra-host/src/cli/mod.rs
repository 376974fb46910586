//! Argument parsing and the subcommands.

/// `println!` that returns the write error instead of panicking, so output piped into `head`
/// ends quietly (see `main`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod common;
mod eval;
mod explain;
mod export;
mod export_check;
mod graft;
mod import;
mod paper_tables;
mod predict;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train, evaluate, inspect and export CSRA multi-label models (libtorch, GPU when present).
#[derive(Debug, Parser)]
#[command(name = "csra-host", version, about)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The default `log` filter for the verbosity flags.
    pub fn log_level(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model with the official recipe; writes checkpoints, a JSON-lines log and a plot.
    Train(Box<train::TrainArgs>),
    /// Score a checkpoint on a dataset: mAP, CP/CR/CF1, OP/OR/OF1, top-3, per-class AP.
    Eval(eval::EvalArgs),
    /// Print the labels a checkpoint sees in images, folders or globs.
    Predict(predict::PredictArgs),
    /// Write attention heat maps over images (the paper's Fig. 4).
    Explain(explain::ExplainArgs),
    /// Export a checkpoint to ONNX with its manifest and labels, verified against tch in tract.
    Export(Box<export::ExportArgs>),
    /// Read a CSRA checkpoint trained in PyTorch (official repository or mmpretrain) into a
    /// run directory the other commands use.
    Import(import::ImportArgs),
    /// Turn any ONNX classifier with a GAP + FC tail into the training-free Max head.
    Graft(graft::GraftArgs),
    /// Run the paper's ablations in miniature (voc2007-mini, coco-mini) and write their page.
    PaperTables(paper_tables::PaperTablesArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Export(args) => export::run(*args),
        Command::Import(args) => import::run(args),
        Command::Graft(args) => graft::run(args),
        Command::PaperTables(args) => paper_tables::run(args),
    }
}
