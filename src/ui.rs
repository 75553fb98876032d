//! Terminal progress: one line per finished step ("✓ etcd ready (0.8s)"), a spinner
//! while a step runs (only on a TTY), colour unless NO_COLOR or not a TTY.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Debug)]
pub struct Ui {
    quiet: bool,
    interactive: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Self {
        let interactive = std::io::stderr().is_terminal();
        // console decides colour for stderr itself (TTY, NO_COLOR, CLICOLOR_FORCE).
        Ui { quiet, interactive }
    }

    /// Starts a step; call [`Step::done`] when it succeeds. A step dropped without
    /// `done` (an error was returned through it) prints as failed.
    pub fn step(&self, label: impl Into<String>) -> Step {
        self.step_with_prefix("", label)
    }

    /// A step whose line starts with `prefix` (a lab's "[02]"), before the mark.
    pub fn step_with_prefix(&self, prefix: &str, label: impl Into<String>) -> Step {
        let label = label.into();
        let spinner = if self.interactive && !self.quiet {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("static template"),
            );
            bar.set_message(format!("{prefix} {label}").trim_start().to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            None
        };
        Step {
            ui: self.clone(),
            prefix: prefix.to_string(),
            label,
            started: Instant::now(),
            spinner,
            finished: false,
        }
    }

    /// A plain informational line on stderr.
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    fn finish_line(&self, prefix: &str, ok: bool, text: &str, elapsed: Duration) {
        if self.quiet {
            return;
        }
        let mark = if ok {
            style("✓").green().for_stderr()
        } else {
            style("✗").red().for_stderr()
        };
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix} ")
        };
        eprintln!("{prefix}{mark} {text} ({})", format_duration(elapsed));
    }
}

pub struct Step {
    ui: Ui,
    prefix: String,
    label: String,
    started: Instant,
    spinner: Option<ProgressBar>,
    finished: bool,
}

impl Step {
    /// Updates the spinner text while the step runs (e.g. what a wait is waiting on).
    pub fn progress(&self, message: impl Into<String>) {
        if let Some(bar) = &self.spinner {
            let prefix = if self.prefix.is_empty() {
                String::new()
            } else {
                format!("{} ", self.prefix)
            };
            bar.set_message(format!("{prefix}{} — {}", self.label, message.into()));
        }
    }

    /// Turns the spinner into a bar of `total` units, with the time left; [`Step::advance`]
    /// moves it. (Without a terminal the step's lines say it all.)
    pub fn count(&self, total: u64, unit: &str) {
        if let Some(bar) = &self.spinner {
            bar.set_message(
                format!("{} {}", self.prefix, self.label)
                    .trim_start()
                    .to_string(),
            );
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{elapsed}}, ~{{eta}} left"
                ))
                .expect("static template")
                .progress_chars("=> "),
            );
        }
    }

    pub fn advance(&self) {
        if let Some(bar) = &self.spinner {
            bar.inc(1);
        }
    }

    /// Ends the step without a line of its own (the caller prints the result).
    pub fn quiet(mut self) {
        self.finished = true;
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }

    /// Marks the step as done, with a line that may say more than the label did.
    pub fn done(mut self, text: impl AsRef<str>) -> Duration {
        self.finished = true;
        let elapsed = self.started.elapsed();
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        self.ui
            .finish_line(&self.prefix, true, text.as_ref(), elapsed);
        elapsed
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        if !self.finished {
            self.ui
                .finish_line(&self.prefix, false, &self.label, self.started.elapsed());
        }
    }
}

/// Asks a yes/no question on the terminal (no is the default). None when there is no
/// terminal to ask on: the caller then needs another form of consent.
pub fn ask(question: &str) -> Option<bool> {
    use std::io::{BufRead, Write};
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    // Read on a thread, so Ctrl-C (latched, not fatal) answers no at once.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer);
        let _ = tx.send(read.map(|_| answer));
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(answer)) => {
                return Some(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"));
            }
            Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if crate::system::was_interrupted() => {
                eprintln!();
                return Some(false);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// "45ms", "0.8s", "12.3s", "2m05s": short enough for a step line.
pub fn format_duration(elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.1 {
        format!("{}ms", elapsed.as_millis())
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = elapsed.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_write_them() {
        assert_eq!(format_duration(Duration::from_millis(45)), "45ms");
        assert_eq!(format_duration(Duration::from_millis(840)), "0.8s");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
