//! A hands-on lab's checks, graded: which passed, the points, and for each that did
//! not, the operations that failed (with their diagnoses).

use serde::{Deserialize, Serialize};

use super::{LabReport, OperationReport};
use crate::scenario::Lab;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub lab: String,
    pub title: String,
    pub points: u32,
    pub max_points: u32,
    /// Every check passed.
    pub passed: bool,
    pub checks: Vec<CheckGrade>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckGrade {
    pub id: String,
    pub title: String,
    pub points: u32,
    pub max_points: u32,
    pub passed: bool,
    /// The operations that did not pass (none when the check passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<OperationReport>,
    /// Why the check could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A check passes when it ran and none of its operations failed (a skipped one, that
/// cannot be observed here, does not count against it).
pub fn grade(lab: &Lab, report: &LabReport) -> Grade {
    let checks: Vec<CheckGrade> = lab
        .checks
        .iter()
        .map(|check| {
            let step = report.steps.iter().find(|s| s.id == check.id);
            let problems: Vec<OperationReport> = step
                .into_iter()
                .flat_map(|s| &s.operations)
                .filter(|op| !op.outcome.is_fine())
                .cloned()
                .collect();
            let ran_all = step.is_some_and(|s| s.operations.len() == check.operations.len());
            let passed = ran_all && problems.is_empty();
            CheckGrade {
                id: check.id.clone(),
                title: check.title.clone(),
                points: if passed { check.points } else { 0 },
                max_points: check.points,
                passed,
                problems,
                error: (!ran_all && step.is_none()).then(|| {
                    report
                        .error
                        .clone()
                        .unwrap_or_else(|| "it did not run".into())
                }),
            }
        })
        .collect();
    Grade {
        lab: lab.id.clone(),
        title: lab.title.clone(),
        points: checks.iter().map(|c| c.points).sum(),
        max_points: lab.max_points(),
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}
