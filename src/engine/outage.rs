//! A cluster that stopped answering mid-run. A lab that ends in an error may have met
//! a dead API server (or one whose etcd is gone): one look at /readyz tells which, so
//! the run stops at once and says so, instead of failing every remaining lab alike.

use std::time::Duration;

use crate::report::{LabReport, Outcome};

/// How long the look at /readyz may take: a healthy server answers in milliseconds,
/// one without etcd in about a second (its storage check gives up).
const LOOK: Duration = Duration::from_secs(5);
/// How often a run looks, and how many failed looks in a row make an outage (one slow
/// answer on a busy machine is not one).
const EVERY: Duration = Duration::from_secs(2);
const MISSES: u32 = 3;

/// The API server stopped answering, or answers that it cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// What kubelab was doing when it noticed: the failed lab and its error.
    pub doing: String,
    /// What /readyz said, or why it could not be asked.
    pub cause: String,
    /// How many objects this run made could not be removed.
    pub left: usize,
}

/// Why the API server is not serving, or None when it is.
pub async fn not_serving(client: &kube::Client) -> Option<String> {
    let request = http::Request::get("/readyz?verbose")
        .body(Vec::new())
        .expect("static request");
    match tokio::time::timeout(LOOK, client.request_text(request)).await {
        Ok(Ok(_)) => None,
        // 401, 403, 404: a server that answers (a proxy, or /readyz not for us) serves.
        Ok(Err(kube::Error::Api(status))) if status.code < 500 => None,
        Ok(Err(kube::Error::Api(status))) => Some(format!(
            "GET /readyz: {} {}",
            status.code,
            failed_checks(&status.message)
        )),
        Ok(Err(e)) => Some(format!("GET /readyz: {}", crate::report::error_chain(&e))),
        Err(_) => Some(format!(
            "GET /readyz: no answer within {}",
            crate::ui::format_duration(LOOK)
        )),
    }
}

/// The failing checks of a verbose /readyz ("[-]etcd failed: reason withheld").
fn failed_checks(body: &str) -> String {
    let failed: Vec<&str> = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("[-]"))
        .collect();
    if failed.is_empty() {
        body.trim().to_string()
    } else {
        failed.join("; ")
    }
}

/// Looks at /readyz every few seconds while a run works, and resolves when the server
/// has not served three looks in a row: a server without etcd hangs requests (and
/// watches) instead of failing them, so no lab would ever end to tell.
pub async fn watch(
    client: &kube::Client,
    activity: &std::sync::Mutex<std::collections::BTreeMap<String, String>>,
) -> Outage {
    let mut misses = 0;
    loop {
        tokio::time::sleep(EVERY).await;
        match not_serving(client).await {
            None => misses = 0,
            Some(cause) => {
                misses += 1;
                if misses == MISSES {
                    let doing: Vec<String> = activity
                        .lock()
                        .expect("activity lock")
                        .iter()
                        .map(|(lab, what)| format!("lab {lab}, {what}"))
                        .collect();
                    return Outage {
                        doing: if doing.is_empty() {
                            "the end of the run".into()
                        } else {
                            doing.join("; ")
                        },
                        cause,
                        left: 0,
                    };
                }
            }
        }
    }
}

/// If a lab ended in an error and the server is not serving, the outage.
pub async fn after(client: &kube::Client, labs: &[&LabReport]) -> Option<Outage> {
    let failed = labs.iter().find(|lab| lab.outcome == Outcome::Error)?;
    // Two looks a second apart: one slow answer on a busy machine is not an outage.
    not_serving(client).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cause = not_serving(client).await?;
    Some(Outage {
        doing: format!("lab {}: {}", failed.id, first_error(failed)),
        cause,
        left: 0,
    })
}

/// The lab's own error, or its first failed operation's.
fn first_error(lab: &LabReport) -> String {
    lab.steps
        .iter()
        .flat_map(|step| {
            step.operations.iter().filter_map(move |op| {
                op.error
                    .as_ref()
                    .map(|e| format!("step '{}', {}: {e}", step.name, op.name))
            })
        })
        .next()
        .or_else(|| lab.error.clone())
        .unwrap_or_else(|| "an operation failed".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_checks_of_a_verbose_readyz_are_named() {
        let body = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]etcd-readiness failed: reason withheld\nreadyz check failed\n";
        assert_eq!(
            failed_checks(body),
            "etcd failed: reason withheld; etcd-readiness failed: reason withheld"
        );
        assert_eq!(failed_checks("Service Unavailable"), "Service Unavailable");
    }
}
