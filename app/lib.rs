//! The `starling` desktop binary's library: command line, demo, and the Prosody test bed
//! shared by the demo and the integration tests, and the Slint UI ([`ui::App`]) that the
//! desktop window and the Android app both run. No protocol logic lives here: everything
//! goes through `starling_core::Client`.
//!
//! The `desktop` feature (default) adds the window on winit and the `starling` binary's
//! entry point; without it (the Android build) the UI has no desktop backend.

pub mod cli;
pub mod demo;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod push_gateway;
pub mod testbed;
// Slint global handles borrow the window (`Shell<'_>`); `w.global::<Shell>()` reads better.
#[allow(elided_lifetimes_in_paths)]
pub mod ui;

/// Entry point of the `starling` binary.
#[cfg(feature = "desktop")]
pub fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    use std::process::ExitCode;
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
    let result = match cli.command {
        None => match profile_dir(cli.profile.as_deref()) {
            Ok(dir) => desktop::run_profile(&runtime, &dir, cli.uri.as_deref()),
            Err(e) => Err(e),
        },
        Some(cli::Command::Demo(ref args)) if args.wants_window() => {
            run_demo_window(&runtime, args, cli.profile.clone())
        }
        Some(_) => runtime.block_on(cli::run(cli)),
    };
    match result {
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

/// The profile directory: `--profile`, else the XDG data dir.
pub fn profile_dir(given: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => starling_core::default_profile_dir()
            .ok_or_else(|| anyhow::anyhow!("cannot find a home directory; pass --profile DIR")),
    }
}

/// `starling demo`: the local server and accounts, then the window logged in as alice.
#[cfg(feature = "desktop")]
fn run_demo_window(
    runtime: &tokio::runtime::Runtime,
    args: &demo::DemoArgs,
    profile: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let session = runtime.block_on(demo::start(args, profile))?;
    let opts = desktop::WindowOptions {
        open: Some((session.user_jid.clone(), session.bot_jid.clone())),
        screenshot: args.screenshot.clone(),
        min_conversations: 3,
        min_messages: 3,
    };
    let shown = desktop::run(runtime, session.user.clone(), opts);
    let stopped = runtime.block_on(session.stop());
    shown.and(stopped)
}

#[cfg(feature = "desktop")]
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
