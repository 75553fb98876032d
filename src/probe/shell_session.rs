//! One `sh` kept open in a pod through a single exec connection, so a lab's probes do
//! not each pay for a websocket upgrade, the kubelet's stream and a `runc exec`.
//!
//! Each command runs in a subshell (its `exit`, `cd` and variables stay there) with
//! stdin from /dev/null. A marker with a random nonce ends its stdout (followed by the
//! exit code) and its stderr, so output a command prints can never end it early.
//! Secrets reach the command through a here-document, never a command line.

use std::io::Read;
use std::pin::Pin;

use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf};

use super::Error;
use super::access::Output;

pub struct ShellSession {
    /// Owns the connection: dropping it closes the stream, which ends the shell.
    _process: AttachedProcess,
    stdin: WriteHalf<SimplexStream>,
    stdout: ReadHalf<SimplexStream>,
    stderr: ReadHalf<SimplexStream>,
    /// The exec stream's final status: ready once the shell has ended.
    ended: Pin<Box<dyn Future<Output = Option<Status>> + Send>>,
    /// Where the session runs, for messages.
    place: String,
}

impl ShellSession {
    /// Starts `sh` in the pod's container (default: the first).
    pub async fn open(
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<Self, Error> {
        let params = AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true);
        let command = ["sh".to_string()];
        let mut process =
            super::exec::attach(client, namespace, pod, container, &command, params).await?;
        Ok(ShellSession {
            ended: Box::pin(process.take_status().expect("status taken once")),
            stdin: process.stdin().expect("stdin requested"),
            stdout: process.stdout().expect("stdout requested"),
            stderr: process.stderr().expect("stderr requested"),
            _process: process,
            place: format!("pod {namespace}/{pod}"),
        })
    }

    /// Runs `script` as `sh -c` would, with each `(VARIABLE, value)` of `secrets` set
    /// first. A session that fails here is spent: drop it.
    pub async fn run(
        &mut self,
        script: &str,
        secrets: &[(String, String)],
    ) -> Result<Output, Error> {
        let nonce = nonce();
        let framed = frame(script, secrets, &nonce);
        if let Err(e) = self.send(&framed).await {
            return Err(self.lost(format!("writing to the shell: {e}")).await);
        }
        let out_end = format!("\n{nonce} ");
        let err_end = format!("\n{nonce}\n");
        let (stdout, stderr) = tokio::join!(
            read_until(&mut self.stdout, out_end.as_bytes(), true),
            read_until(&mut self.stderr, err_end.as_bytes(), false)
        );
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err(self
                .lost("the shell ended before the command did".into())
                .await);
        };
        let (stdout, code) = split_exit_code(&stdout, &out_end);
        let Some(exit_code) = code else {
            return Err(self
                .lost("the shell's end marker had no exit code".into())
                .await);
        };
        Ok(Output {
            exit_code,
            stdout,
            stderr: String::from_utf8_lossy(&stderr[..stderr.len() - err_end.len()]).into_owned(),
        })
    }

    /// Whether the shell is still there (its container may have stopped since). A
    /// session found closed is spent: drop it.
    pub fn is_open(&mut self) -> bool {
        (&mut self.ended).now_or_never().is_none()
    }

    async fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.stdin.write_all(text.as_bytes()).await?;
        self.stdin.flush().await
    }

    /// Why the session is gone: the exec stream's final status when it has one (the
    /// shell could not start, the container stopped), else `what`.
    async fn lost(&mut self, what: String) -> Error {
        let status = tokio::time::timeout(std::time::Duration::from_secs(2), &mut self.ended)
            .await
            .ok()
            .flatten();
        let why = match super::exec::exit_code(status.as_ref()) {
            Err(message) if status.is_some() => message,
            Ok(code) => format!("the shell exited {code}"),
            Err(_) => what,
        };
        Error::Pod(format!("sh in {} did not run: {why}", self.place))
    }
}

/// The text sent to the shell for one command.
fn frame(script: &str, secrets: &[(String, String)], nonce: &str) -> String {
    let mut text = String::from("(\n");
    if !secrets.is_empty() {
        let reads: String = secrets
            .iter()
            .map(|(var, _)| format!("read -r {var}; "))
            .collect();
        text.push_str(&format!("{{ {reads}}} <<'{nonce}'\n"));
        for (_, value) in secrets {
            text.push_str(value.trim_end_matches('\n'));
            text.push('\n');
        }
        text.push_str(&format!("{nonce}\n"));
    }
    // eval in the subshell: a syntax error ends the subshell (exit 2), not the session.
    text.push_str(&format!(
        "eval \"$(cat <<'{nonce}'\n{script}\n{nonce}\n)\" </dev/null\n) </dev/null\n\
         printf '\\n{nonce} %d\\n' \"$?\"; printf '\\n{nonce}\\n' >&2\n"
    ));
    text
}

/// Reads until `end` has arrived (and, with `line`, the rest of its line): the bytes
/// read, or None when the stream ended first.
async fn read_until(
    reader: &mut ReadHalf<SimplexStream>,
    end: &[u8],
    line: bool,
) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(at) = find(&seen, end) {
            if !line || seen[at + end.len()..].contains(&b'\n') {
                return Some(seen);
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The command's stdout (without the newline the marker line starts with) and the
/// exit code that follows the marker.
fn split_exit_code(seen: &[u8], end: &str) -> (String, Option<i32>) {
    let at = find(seen, end.as_bytes()).expect("read_until found it");
    let rest = String::from_utf8_lossy(&seen[at + end.len()..]);
    let code = rest.lines().next().and_then(|c| c.trim().parse().ok());
    (String::from_utf8_lossy(&seen[..at]).into_owned(), code)
}

/// 128 random bits as hex: a marker no command's output can know in advance.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("KUBELAB_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framed text, run by the host's sh (dash on Debian) and by busybox's (what
    /// the lab images have) the way a pod's shell would run it; both must agree.
    fn run_framed(script: &str, secrets: &[(String, String)]) -> (String, String) {
        let dash = run_framed_in(&["sh"], script, secrets);
        if std::process::Command::new("busybox")
            .arg("true")
            .status()
            .is_ok()
        {
            let busybox = run_framed_in(&["busybox", "sh"], script, secrets);
            // Their error messages differ in words, never in framing.
            assert_eq!(busybox.0, dash.0, "busybox sh and sh differ on {script:?}");
            assert_eq!(busybox.1.matches("\nN\n").count(), 2, "{busybox:?}");
        }
        dash
    }

    fn run_framed_in(
        shell: &[&str],
        script: &str,
        secrets: &[(String, String)],
    ) -> (String, String) {
        let nonce = nonce();
        let framed = frame(script, secrets, &nonce);
        let mut child = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // Twice: the session must survive the first command.
        stdin.write_all(framed.as_bytes()).unwrap();
        stdin
            .write_all(frame("echo second", &[], &nonce).as_bytes())
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8(out.stdout).unwrap().replace(&nonce, "N"),
            String::from_utf8(out.stderr).unwrap().replace(&nonce, "N"),
        )
    }

    #[test]
    fn output_exit_code_and_markers_are_framed_per_command() {
        let (stdout, stderr) = run_framed("echo out; echo err >&2; exit 3", &[]);
        assert_eq!(stdout, "out\n\nN 3\nsecond\n\nN 0\n");
        assert_eq!(stderr, "err\n\nN\n\nN\n");
        let (stdout, _) = run_framed("printf no-newline", &[]);
        assert!(stdout.starts_with("no-newline\nN 0\n"), "{stdout}");
    }

    #[test]
    fn a_syntax_error_or_exit_ends_only_its_command() {
        let (stdout, stderr) = run_framed("if then fi (", &[]);
        assert!(stdout.starts_with("\nN 2\n"), "{stdout}");
        assert!(
            stdout.ends_with("second\n\nN 0\n"),
            "the shell went on: {stdout}"
        );
        assert!(stderr.contains("N"), "{stderr}");
    }

    #[test]
    fn secrets_arrive_as_variables_and_stdin_is_empty() {
        let secrets = vec![
            ("T1".to_string(), "abc".to_string()),
            ("T2".into(), "d e".into()),
        ];
        let (stdout, _) = run_framed("echo \"$T1|$T2\"; cat; echo after-cat", &secrets);
        assert!(
            stdout.starts_with("abc|d e\nafter-cat\n\nN 0\n"),
            "{stdout}"
        );
    }

    #[test]
    fn a_marker_is_found_only_with_its_nonce() {
        let seen = b"x\nKUBELAB_other 0\ny\n\nKUBELAB_mine 7\n";
        let (stdout, code) = split_exit_code(seen, "\nKUBELAB_mine ");
        assert_eq!(stdout, "x\nKUBELAB_other 0\ny\n");
        assert_eq!(code, Some(7));
        assert_ne!(nonce(), nonce());
    }
}
