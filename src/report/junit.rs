//! JUnit XML: one testsuite per lab, one testcase per probe; a failure carries expected
//! vs got and the body, so CI systems show why.

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
            for probe in &step.probes {
                let status = if probe.passed {
                    TestCaseStatus::success()
                } else {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(probe.failures.join("; "));
                    status.set_type("probe");
                    status.set_description(format!(
                        "$ {}\nran {}\n{}\ngot body:\n{}",
                        probe.command,
                        probe.ran,
                        probe.failures.join("\n"),
                        probe.observed.body
                    ));
                    status
                };
                let mut case = TestCase::new(format!("{} / {}", step.name, probe.name), status);
                case.set_classname(format!("{}.{}", lab.folder, step.id));
                case.set_time(Duration::from_millis(probe.duration_ms));
                suite.add_test_case(case);
            }
        }
        if lab.outcome == Outcome::Error {
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
