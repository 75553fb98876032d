//! What kubelab asks of the machine it runs on: programs on PATH, and the signals that
//! mean "stop now and clean up".

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An executable file, as a shell would find it on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

pub fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Ctrl-C and SIGTERM are caught from the start of the process and latched: a signal
/// that arrives between two steps (no one waiting for it yet) is not lost, and every
/// later wait sees it at once, so each command stops at its next step and cleans up.
static STOP: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> = std::sync::OnceLock::new();

/// While a shell in the foreground owns the terminal, its Ctrl-C is the shell's.
static SHELL_OWNS_CTRL_C: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Set from the signal handler itself, so it holds from the moment a signal arrives,
/// also after the runtime (and the task below) is gone. One atomic for both the signal
/// and a command's decision to keep its result, so there is no moment between the two.
static PHASE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(WORKING);
/// No signal yet; the command may still change its mind.
const WORKING: u8 = 0;
/// A signal came while the command was working: it stops, undoes, and exits 130.
const SIGNALLED: u8 = 1;
/// The command kept its result (a cluster that is up stays up): a later signal is late.
const KEPT: u8 = 2;

/// Installs the handlers (once; inside a Tokio runtime). main calls it first thing, so
/// a signal never meets the default disposition once kubelab may have changed anything.
pub fn catch_interrupts() {
    STOP.get_or_init(|| {
        use std::sync::atomic::Ordering;
        for (signal, is_ctrl_c) in [(nix::libc::SIGINT, true), (nix::libc::SIGTERM, false)] {
            // Only atomics here: this runs inside the signal handler.
            let action = move || {
                if !(is_ctrl_c && SHELL_OWNS_CTRL_C.load(Ordering::SeqCst) > 0) {
                    let _ = PHASE.compare_exchange(
                        WORKING,
                        SIGNALLED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
            };
            // SAFETY: the action only touches atomics, which is async-signal-safe.
            unsafe { signal_hook_registry::register(signal, action) }
                .expect("SIGINT/SIGTERM handler");
        }
        use tokio::signal::unix::{SignalKind, signal};
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let latch = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                // The handler decided, when the signal came, whether it counts (a
                // shell's Ctrl-C does not); this task may see it later.
                if PHASE.load(Ordering::SeqCst) == SIGNALLED {
                    latch.send_replace(true);
                }
            }
        });
        stop
    });
}

/// Resolves once Ctrl-C or SIGTERM has arrived (at once if it already has).
pub async fn interrupted() {
    catch_interrupts();
    let mut stopped = STOP.get().expect("installed above").subscribe();
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// Whether Ctrl-C or SIGTERM has arrived since the process started (and before the
/// command kept its result).
pub fn was_interrupted() -> bool {
    PHASE.load(std::sync::atomic::Ordering::SeqCst) == SIGNALLED
}

/// A command that made something meant to last (a cluster, a class) calls this once it
/// is complete: false if a signal came first (the command undoes what it made), true
/// if the result is kept. A signal after that is too late to undo anything, so it no
/// longer turns the exit into 130 for a result that stays.
pub fn keep_result() -> bool {
    use std::sync::atomic::Ordering;
    match PHASE.compare_exchange(WORKING, KEPT, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => true,
        Err(phase) => phase == KEPT,
    }
}

/// While it lives, Ctrl-C does not stop kubelab: the shell in the foreground takes it.
pub struct CtrlCToShell(());

impl CtrlCToShell {
    pub fn new() -> Self {
        SHELL_OWNS_CTRL_C.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CtrlCToShell(())
    }
}

impl Default for CtrlCToShell {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CtrlCToShell {
    fn drop(&mut self) {
        SHELL_OWNS_CTRL_C.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_only_when_executable() {
        assert!(on_path("sh").is_some());
        assert!(on_path("surely-no-such-program-kubelab").is_none());
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(!is_executable(&plain));
    }
}
