//! A real terminal for tests that act as a person: a detached tmux session, keys sent
//! with `send-keys`, the screen read with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Terminal {
    name: String,
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is installed (apt-get install tmux)")
}

impl Terminal {
    /// A shell (`bash --norc`) in a new session, in `dir`, with `env` exported (typed
    /// in: tmux gives a new session the client's PATH whatever `-e` says), 200x50.
    pub fn new(name: &str, dir: &std::path::Path, env: &[(&str, String)]) -> Terminal {
        let name = format!("{name}-{}", std::process::id());
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            name.clone(),
            "-x".into(),
            "200".into(),
            "-y".into(),
            "50".into(),
            "-c".into(),
            dir.display().to_string(),
        ];
        args.extend(["bash".into(), "--norc".into(), "--noprofile".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tmux(&args);
        assert!(out.status.success(), "tmux new-session: {:?}", out);
        let terminal = Terminal { name };
        for (key, value) in env {
            terminal.type_line(&format!("export {key}='{value}'"));
        }
        terminal.type_line("PS1='student$ '; clear");
        // Only the prompt on a cleared screen: the line above also shows `student$ ` as
        // typed, and twice if typed while an export still ran (the tty's echo, then
        // readline's), so a wait for the text alone could return before `clear`, and the
        // first `run` would count prompts that `clear` then wipes.
        terminal.wait_until(Duration::from_secs(10), "the prompt alone", |screen| {
            screen.trim() == "student$"
        });
        terminal
    }

    /// Types `line` and presses Enter.
    pub fn type_line(&self, line: &str) {
        let out = tmux(&["send-keys", "-t", &self.name, "-l", line]);
        assert!(out.status.success(), "send-keys: {out:?}");
        let out = tmux(&["send-keys", "-t", &self.name, "Enter"]);
        assert!(out.status.success(), "send-keys Enter: {out:?}");
    }

    /// Presses a key by tmux's name for it (C-d, C-c).
    pub fn press(&self, key: &str) {
        let out = tmux(&["send-keys", "-t", &self.name, key]);
        assert!(out.status.success(), "send-keys {key}: {out:?}");
    }

    /// The screen and its scrollback, as the person sees them.
    pub fn screen(&self) -> String {
        let out = tmux(&["capture-pane", "-p", "-J", "-S", "-5000", "-t", &self.name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `count` times; the screen then.
    pub fn wait_for_nth(&self, text: &str, count: usize, timeout: Duration) -> String {
        self.wait_until(timeout, &format!("{text:?} ({count} times)"), |screen| {
            screen.matches(text).count() >= count
        })
    }

    /// Waits until `ready` holds for the screen; the screen then.
    fn wait_until(&self, timeout: Duration, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {what} within {timeout:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.wait_for_nth(text, 1, timeout)
    }

    /// Types a command and waits until the prompt is back; the screen then.
    pub fn run(&self, line: &str, timeout: Duration) -> String {
        let prompts = self.screen().matches("student$ ").count();
        self.type_line(line);
        // A new prompt, last on the screen: the command has finished printing.
        self.wait_until(timeout, "the prompt back", |screen| {
            screen.matches("student$ ").count() > prompts && screen.trim_end().ends_with("student$")
        })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.name]);
    }
}
