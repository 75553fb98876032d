//! The user's terminal, handed to an interactive shell: raw mode while the shell runs
//! (restored however it ends), its size now and whenever it changes, and Ctrl-C left
//! to the shell instead of ending kubelab.

use std::io::IsTerminal;

use termimad::crossterm::terminal;

/// Whether both ends are a terminal (else the shell gets plain pipes).
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Raw mode for as long as it lives: keys go to the remote terminal as typed.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> std::io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

/// Columns and rows.
pub fn size() -> Option<(u16, u16)> {
    terminal::size().ok()
}
