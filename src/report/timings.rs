//! `run --timings`: where each lab's time went, by phase (the sums of its operations'
//! times), its cleanup, and the run's last wait for namespaces to go.

use super::{LabReport, RunReport};

/// The phase an operation's time counts for.
fn phase(kind: &str) -> usize {
    match kind {
        "apply" | "create" | "patch" | "delete" => 0,
        "wait" | "restart" => 1,
        "assert" | "events" | "token" => 3,
        _ => 2, // the probes: http, exec, kubectl, file, can-i, logs
    }
}

const PHASES: [&str; 4] = ["apply", "pod start", "probes", "other checks"];

fn phases(lab: &LabReport) -> [u64; 4] {
    let mut sums = [0; 4];
    for op in lab.steps.iter().flat_map(|s| &s.operations) {
        sums[phase(&op.kind)] += op.duration_ms;
    }
    sums
}

/// The table, in milliseconds.
pub fn table(run: &RunReport) -> String {
    let mut out = format!("{:<6}", "lab");
    for name in PHASES.iter().chain(&["cleanup", "lab total"]) {
        out.push_str(&format!(" {name:>12}"));
    }
    out.push('\n');
    for lab in &run.labs {
        out.push_str(&format!("{:<6}", lab.id));
        for ms in phases(lab) {
            out.push_str(&format!(" {ms:>12}"));
        }
        out.push_str(&format!(
            " {:>12} {:>12}\n",
            lab.cleanup_ms, lab.duration_ms
        ));
    }
    out.push_str(&format!(
        "run: {} ms, of which {} ms waiting at the end for the labs' namespaces to go (times in ms; a lab's phases are the sums of its operations)\n",
        run.duration_ms, run.namespaces_wait_ms
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_count_for_their_phase() {
        assert_eq!(phase("apply"), 0);
        assert_eq!(phase("wait"), 1);
        assert_eq!(phase("http"), 2);
        assert_eq!(phase("can-i"), 2);
        assert_eq!(phase("events"), 3);
    }
}
