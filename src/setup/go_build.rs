//! One component built with the go command, its progress counted from `go build -v`
//! (one line per package compiled) against `go list -deps` (every package it needs).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::Error;
use super::recipe::{Component, TAGS};

/// How many stderr lines of a failed go command an error shows.
const TAIL_LINES: usize = 15;

fn go(module: &Path, component: &Component) -> Command {
    let mut command = Command::new("go");
    command
        .current_dir(module)
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(toolchain) = component.toolchain {
        command.env("GOTOOLCHAIN", toolchain);
    }
    command
}

/// The last lines of a command's output, for an error.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// The packages a build compiles (the go command fetches the modules first).
pub async fn package_count(module: &Path, component: &Component) -> Result<u64, Error> {
    let output = go(module, component)
        .args(["list", "-deps", "-tags", TAGS, &component.package])
        .output()
        .await
        .map_err(|source| Error::Spawn {
            what: "go list".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Go {
            component: component.name.to_string(),
            command: format!("go list -deps {}", component.package),
            tail: tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().count() as u64)
}

/// Builds `component` into `output`; `compiled` is called once per package compiled.
pub async fn build(
    module: &Path,
    component: &Component,
    output: &Path,
    mut compiled: impl FnMut(&str),
) -> Result<(), Error> {
    let mut child = go(module, component)
        .args(["build", "-v", "-trimpath", "-tags", TAGS, "-ldflags"])
        .arg(&component.ldflags)
        .arg("-o")
        .arg(output)
        .arg(&component.package)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            what: "go build".into(),
            source,
        })?;
    let stderr = child.stderr.take().expect("piped above");
    let mut reader = BufReader::new(stderr);
    let mut log = String::new();
    let mut raw = Vec::new();
    // Read to the end whatever it says (not UTF-8 too): a pipe left full stalls go.
    while reader.read_until(b'\n', &mut raw).await.unwrap_or(0) > 0 {
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end();
        // `-v` names each package as it is compiled; anything else is a message.
        if !line.is_empty() && !line.contains(' ') {
            compiled(line);
        }
        log.push_str(line);
        log.push('\n');
        raw.clear();
    }
    let status = child.wait().await.map_err(|source| Error::Spawn {
        what: "go build".into(),
        source,
    })?;
    if !status.success() {
        return Err(Error::Go {
            component: component.name.to_string(),
            command: format!("go build {}", component.package),
            tail: tail(&log),
        });
    }
    Ok(())
}
