//! Child processes that outlive the `up` command: started in their own process group
//! (a Ctrl-C in the user's terminal is ours to handle, not theirs), logging to a file,
//! and recognised later by pid *and* start time, so a recycled pid is never killed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::cluster::{Error, IoContext};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub component: String,
    pub pid: u32,
    /// Field 22 of /proc/<pid>/stat: with the pid, identifies the process for good.
    pub start_ticks: u64,
    pub binary: PathBuf,
    pub log: PathBuf,
}

impl ProcessRecord {
    /// True while the very process we started runs (a zombie counts as gone).
    pub fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, ticks)) if ticks == self.start_ticks && state != 'Z')
    }
}

/// A process started by this run of kubelab; we are its parent until we exit.
pub struct Started {
    pub child: Child,
    pub record: ProcessRecord,
}

impl Started {
    /// `Some(description)` once the process has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }
}

pub fn start(
    component: &str,
    binary: &Path,
    args: &[String],
    log: &Path,
    scratch: &Path,
) -> Result<Started, Error> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .context(|| format!("opening log {}", log.display()))?;
    let stderr = log_file
        .try_clone()
        .context(|| format!("opening log {}", log.display()))?;
    let child = Command::new(binary)
        .args(args)
        .env("TMPDIR", scratch)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .context(|| format!("starting {component} ({})", binary.display()))?;
    let pid = child.id();
    // The child exists from spawn() on, so its stat entry does too (even as a zombie).
    let start_ticks = proc_stat(pid).map(|(_, ticks)| ticks).unwrap_or_default();
    Ok(Started {
        child,
        record: ProcessRecord {
            component: component.to_string(),
            pid,
            start_ticks,
            binary: binary.to_path_buf(),
            log: log.to_path_buf(),
        },
    })
}

/// Stops the processes in reverse start order (clients before the servers they use:
/// etcd ends at once when the apiserver is already gone, but waits for its watchers
/// otherwise). Each gets SIGTERM and up to `grace` to exit, then SIGKILL. Returns the
/// components that needed SIGKILL.
pub async fn stop_all(records: &[ProcessRecord], grace: Duration) -> Vec<String> {
    let mut killed = Vec::new();
    for record in records.iter().rev().filter(|r| r.is_running()) {
        signal_group(record, Signal::SIGTERM);
        if !wait_until_gone(record, grace).await {
            signal_group(record, Signal::SIGKILL);
            wait_until_gone(record, Duration::from_secs(5)).await;
            killed.push(record.component.clone());
        }
    }
    killed
}

/// Each component leads its own process group; signalling the group also reaches any
/// helper it forked. Only called after `is_running` confirmed the leader is ours.
fn signal_group(record: &ProcessRecord, signal: Signal) {
    let _ = killpg(Pid::from_raw(record.pid as i32), signal);
}

async fn wait_until_gone(record: &ProcessRecord, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !record.is_running() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process state letter and start time, from /proc/<pid>/stat.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_ticks = fields.get(19)?.parse().ok()?; // field 22 overall
    Some((state, start_ticks))
}

/// The last `lines` lines of a log file (reading at most its last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    tail.iter()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        // A command name with ") " in it must not shift the fields.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a) b (c");
        std::fs::copy("/bin/sleep", &odd).unwrap();
        let mut child = Command::new(&odd).arg("5").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (state, ticks) = proc_stat(child.id()).expect("stat of the child");
        assert_eq!(state, 'S', "sleep is sleeping");
        let (_, own_ticks) = proc_stat(std::process::id()).unwrap();
        assert!(
            ticks >= own_ticks,
            "the child started after this test process"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_recycled_pid_is_not_our_process() {
        let me = std::process::id();
        let (_, ticks) = proc_stat(me).unwrap();
        let mut record = ProcessRecord {
            component: "x".into(),
            pid: me,
            start_ticks: ticks,
            binary: "/x".into(),
            log: "/x".into(),
        };
        assert!(record.is_running());
        record.start_ticks += 1;
        assert!(!record.is_running());
    }

    #[test]
    fn a_component_writes_its_temporary_files_in_the_clusters_scratch_folder() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("env.log");
        let scratch = dir.path().join("tmp");
        let args = ["-c".to_string(), "echo \"$TMPDIR\"".to_string()];
        let mut started = start("env", Path::new("/bin/sh"), &args, &log, &scratch).unwrap();
        while started.exit_status().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let said = std::fs::read_to_string(&log).unwrap();
        assert_eq!(said.trim(), scratch.to_str().unwrap());
    }

    #[tokio::test]
    async fn stop_all_ends_a_process_that_ignores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut started = start(
            "sleeper",
            Path::new("/bin/sleep"),
            &["30".into()],
            &log,
            dir.path(),
        )
        .unwrap();
        assert!(started.record.is_running());
        let killed = stop_all(
            std::slice::from_ref(&started.record),
            Duration::from_secs(2),
        )
        .await;
        assert!(killed.is_empty(), "SIGTERM should have been enough");
        assert!(started.exit_status().is_some());
    }

    #[tokio::test]
    async fn stop_all_kills_a_process_that_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stubborn.log");
        let args = [
            "-c".to_string(),
            "trap '' TERM; echo ready; sleep 30 & wait".to_string(),
        ];
        let mut started = start("stubborn", Path::new("/bin/sh"), &args, &log, dir.path()).unwrap();
        // Wait until the trap is set before signalling.
        while !std::fs::read_to_string(&log).unwrap().contains("ready") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let killed = stop_all(
            std::slice::from_ref(&started.record),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(killed, vec!["stubborn".to_string()]);
        assert!(started.exit_status().is_some());
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log, 20);
        assert!(tail.starts_with("    line 11"), "{tail}");
        assert!(tail.ends_with("line 30"), "{tail}");
        assert_eq!(tail.lines().count(), 20);
    }
}
