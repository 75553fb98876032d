//! kubelab: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use kubelab::{cli, commands};

fn main() -> ExitCode {
    // Like other Unix tools: a closed pipe (`kubelab show 02 | head`) ends the process
    // quietly instead of a panic on the next print.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    // A completion script calling back (COMPLETE=bash ...) is answered here, and exits.
    kubelab::completion::answer_if_asked();
    // clap exits with 2 on usage errors, as documented in --help.
    let cli = cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(commands::run(cli));
    // A blocking read of the terminal (a shell's input) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", kubelab::report::error_chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}
