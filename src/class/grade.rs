//! A class's grades: students by labs, with points, and for each failing check what
//! was wrong. Printed as a table, or written as JSON, CSV, JUnit and HTML.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use crate::report::grade::Grade;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeBook {
    pub class: String,
    pub labs: Vec<LabColumn>,
    pub students: Vec<StudentRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabColumn {
    pub id: String,
    pub title: String,
    pub max_points: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudentRow {
    pub student: String,
    pub points: u32,
    pub max_points: u32,
    /// One per lab, in the order of `labs`.
    pub labs: Vec<Cell>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub lab: String,
    /// Whether the student started the lab (its starting objects are there).
    pub started: bool,
    /// The checks, graded (a lab not started is not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
}

impl Cell {
    pub fn points(&self) -> u32 {
        self.grade.as_ref().map_or(0, |g| g.points)
    }

    /// "6/6", "2/6", or "–" for a lab not started.
    pub fn short(&self) -> String {
        match &self.grade {
            Some(grade) if self.started => format!("{}/{}", grade.points, grade.max_points),
            _ => "–".into(),
        }
    }

    /// Each failing check: its title, then the lines that say why.
    pub fn failing(&self) -> Vec<(String, Vec<String>)> {
        let Some(grade) = &self.grade else {
            return Vec::new();
        };
        grade
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|check| {
                let mut lines: Vec<String> = check.error.iter().cloned().collect();
                for op in &check.problems {
                    lines.push(format!(
                        "{} → {}",
                        op.name,
                        crate::report::human::observed_summary(op)
                    ));
                    lines.extend(crate::report::human::brief(op));
                }
                let diagnoses: Vec<crate::rbac::Diagnosis> = check
                    .problems
                    .iter()
                    .flat_map(|op| op.observed.diagnosis.iter().cloned())
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                for line in crate::report::human::diagnosis_lines(&diagnoses) {
                    if seen.insert(line.clone()) {
                        lines.push(line);
                    }
                }
                (check.title.clone(), lines)
            })
            .collect()
    }
}

impl GradeBook {
    /// The table: one row per student, a column per lab, and the total.
    pub fn table(&self) -> String {
        let name_width = self
            .students
            .iter()
            .map(|s| s.student.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        let mut out = format!("{:name_width$}", "student");
        for lab in &self.labs {
            out.push_str(&format!("  {:>5}", lab.id));
        }
        out.push_str("   total\n");
        for row in &self.students {
            out.push_str(&format!("{:name_width$}", row.student));
            for cell in &row.labs {
                out.push_str(&format!("  {:>5}", cell.short()));
            }
            out.push_str(&format!("  {:>3}/{}\n", row.points, row.max_points));
        }
        out
    }

    /// CSV: student, then each lab's points (empty when not started), then the total.
    pub fn csv(&self) -> String {
        let mut out = String::from("student");
        for lab in &self.labs {
            out.push_str(&format!(",lab {} ({} points)", lab.id, lab.max_points));
        }
        out.push_str(",total\n");
        for row in &self.students {
            out.push_str(&row.student);
            for cell in &row.labs {
                out.push(',');
                if cell.started {
                    out.push_str(&cell.points().to_string());
                }
            }
            out.push_str(&format!(",{}\n", row.points));
        }
        out
    }

    /// JUnit: a testsuite per student, a testcase per lab check.
    pub fn junit(&self) -> String {
        let mut report = Report::new(format!("kubelab class {}", self.class));
        for row in &self.students {
            let mut suite = TestSuite::new(row.student.clone());
            for (cell, lab) in row.labs.iter().zip(&self.labs) {
                let Some(grade) = cell.grade.as_ref().filter(|_| cell.started) else {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message("not started");
                    let mut case = TestCase::new(format!("lab {}", lab.id), status);
                    case.set_classname(format!("{}.{}", row.student, lab.id));
                    suite.add_test_case(case);
                    continue;
                };
                let failing = cell.failing();
                for check in &grade.checks {
                    let status = if check.passed {
                        TestCaseStatus::success()
                    } else {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let why = failing
                            .iter()
                            .find(|(title, _)| *title == check.title)
                            .map(|(_, lines)| lines.join("\n"))
                            .unwrap_or_default();
                        status.set_message(format!("0/{} points", check.max_points));
                        status.set_description(why);
                        status
                    };
                    let mut case = TestCase::new(
                        format!(
                            "lab {} / {} ({} points)",
                            lab.id, check.title, check.max_points
                        ),
                        status,
                    );
                    case.set_classname(format!("{}.{}", row.student, lab.id));
                    suite.add_test_case(case);
                }
            }
            report.add_test_suite(suite);
        }
        report.to_string().unwrap_or_default()
    }
}

/// Writes `text` to `path`, naming the file on failure.
pub fn write(path: &Path, text: &str) -> Result<(), super::Error> {
    std::fs::write(path, text).map_err(|source| super::Error::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}
