//! The `starling` desktop binary's library: command line, demo, and the Prosody test bed
//! shared by the demo and the integration tests. No protocol logic lives here: everything
//! goes through `starling_core::Client`.

pub mod cli;
pub mod demo;
pub mod testbed;

use std::process::ExitCode;

use clap::Parser;

/// Entry point of the `starling` binary.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starling: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                msg.push_str(": ");
                msg.push_str(&cause.to_string());
            }
            eprintln!("starling: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,starling=debug,starling_core=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STARLING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if let Err(e) = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
    {
        eprintln!("starling: logging was already set up: {e}");
    }
}
