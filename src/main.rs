//! kubelab: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use kubelab::{cli, commands};

fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): a connection the API server drops must be
    // an error kubelab reports, not a signal that kills it mid-run. A closed stdout
    // (`kubelab show 02 | head`) still ends kubelab quietly, as other Unix tools do.
    quiet_on_closed_stdout();
    // A completion script calling back (COMPLETE=bash ...) is answered here, and exits.
    kubelab::completion::answer_if_asked();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Before anything can change: from here on Ctrl-C and SIGTERM are latched, never
    // the default "die now".
    runtime.block_on(async { kubelab::system::catch_interrupts() });
    // clap exits with 2 on usage errors, as documented in --help.
    let cli = cli::parse();
    let result = runtime.block_on(commands::run(cli));
    // A blocking read of the terminal (a shell's input) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    // Asked last, so a signal during the shutdown counts too.
    let interrupted = kubelab::system::was_interrupted();
    match result {
        // Interrupted after the last step that watches for it: the work is complete
        // and nothing is left, but the user asked to stop, and scripts see that.
        Ok(_) if interrupted => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
        Ok(code) => code,
        // Its reader went away (`kubelab man | head`): quietly, as after SIGPIPE.
        Err(error) if closed_pipe(&error) => ExitCode::from(141),
        Err(error) => {
            eprintln!("error: {}", kubelab::report::error_chain(&error));
            // An interrupt ends with 130 also when a step it cut short failed.
            ExitCode::from(if interrupted { 130 } else { error.exit_code() })
        }
    }
}

/// The panic `println!` raises when stdout's reader has gone ends the process with the
/// status a SIGPIPE death would give (128 + 13), without a message.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Whether an error comes from writing to a pipe whose reader is gone.
fn closed_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = error.source();
    }
    false
}
