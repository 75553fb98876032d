//! JUnit XML: one testsuite per lab, one testcase per check (probes, asserts, events,
//! expected rejections) and per operation that failed; a failure carries expected vs
//! got and the body, so CI systems show why.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Outcome, RunReport};

pub fn write_junit(run: &RunReport, path: &Path) -> std::io::Result<()> {
    let mut report = Report::new(format!("kubelab run {}", run.run_id));
    report.set_time(Duration::from_millis(run.duration_ms));
    for lab in &run.labs {
        let mut suite = TestSuite::new(format!("{} {}", lab.folder, lab.title));
        for step in &lab.steps {
            for op in step.operations.iter().filter(|op| op.check || !op.passed) {
                let status = match op.outcome {
                    Outcome::Passed => TestCaseStatus::success(),
                    Outcome::Skipped => {
                        let mut status = TestCaseStatus::skipped();
                        status.set_message(op.error.clone().unwrap_or_default());
                        status
                    }
                    outcome => {
                        let kind = if outcome == Outcome::Failed {
                            NonSuccessKind::Failure
                        } else {
                            NonSuccessKind::Error
                        };
                        let mut status = TestCaseStatus::non_success(kind);
                        let mut why = op.failures.clone();
                        why.extend(op.error.clone());
                        status.set_message(why.join("; "));
                        status.set_type(op.kind.clone());
                        status.set_description(format!(
                            "$ {}\nran {}\n{}\n{}got body:\n{}",
                            op.command,
                            op.ran,
                            why.join("\n"),
                            op.observed.diff.clone().unwrap_or_default(),
                            op.observed.body
                        ));
                        status
                    }
                };
                let mut case = TestCase::new(format!("{} / {}", step.name, op.name), status);
                case.set_classname(format!("{}.{}", lab.folder, step.id));
                case.set_time(Duration::from_millis(op.duration_ms));
                suite.add_test_case(case);
            }
        }
        if lab.outcome == Outcome::Skipped && lab.steps.is_empty() {
            let mut status = TestCaseStatus::skipped();
            status.set_message(lab.error.clone().unwrap_or_default());
            let mut case = TestCase::new("lab skipped", status);
            case.set_classname(lab.folder.clone());
            suite.add_test_case(case);
        }
        if matches!(lab.outcome, Outcome::Error | Outcome::Invalid) {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(lab.error.clone().unwrap_or_default());
            let mut case = TestCase::new("lab could not finish", status);
            case.set_classname(lab.folder.clone());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    let xml = report.to_string().map_err(std::io::Error::other)?;
    std::fs::write(path, xml)
}
