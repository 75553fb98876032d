//! A class on one cluster: students, each with an identity of their own, an isolated
//! copy of every lab (see [`crate::scenario::copy`]) and RBAC that fences them into it.
//! The class file records what `class up` made, so that grade, reset and down work
//! from it alone.

pub mod fence;
pub mod grade;
pub mod html;
pub mod identity;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kubeconfig extension that marks a student's context (kubectl keeps it as is).
pub const SEAT_EXTENSION: &str = "kubelab.dev/seat";
/// On everything `class up` makes: the class's name.
pub const CLASS_LABEL: &str = "kubelab.dev/class";
/// On what belongs to one student.
pub const STUDENT_LABEL: &str = "kubelab.dev/student";
pub const CLASS_FILE: &str = "class.json";
/// The longest student name: it ends every namespace copy (63 characters at most).
const MAX_NAME: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}:{line}: student name '{name}' {why}")]
    Roster {
        file: String,
        line: usize,
        name: String,
        why: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Identity(String),
}

impl Error {
    pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Kube { what, source }
    }
}

/// Which class and student a kubeconfig context belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub class: String,
    pub student: String,
}

impl Seat {
    /// The extension's value; apiVersion and kind let kubectl carry it along.
    pub fn extension(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "kubelab.dev/v1",
            "kind": "Seat",
            "class": self.class,
            "student": self.student,
        })
    }

    /// The seat a kubeconfig context carries, if any.
    pub fn of_context(context: &kube::config::Context) -> Option<Seat> {
        context
            .extensions
            .iter()
            .flatten()
            .find(|e| e.name == SEAT_EXTENSION)
            .and_then(|e| serde_json::from_value(e.extension.clone()).ok())
    }

    /// The seat of `context` (or the current one) in the kubeconfig at `path`.
    pub fn in_kubeconfig(path: &Path, context: Option<&str>) -> Option<Seat> {
        let config = kube::config::Kubeconfig::read_from(path).ok()?;
        chosen_context(&config, context).and_then(|(_, c)| Seat::of_context(c))
    }
}

/// The context kubectl would use: `context`, else the current one; with its name.
pub fn chosen_context<'a>(
    config: &'a kube::config::Kubeconfig,
    context: Option<&str>,
) -> Option<(String, &'a kube::config::Context)> {
    let wanted = context
        .map(str::to_string)
        .or(config.current_context.clone())?;
    let found = config
        .contexts
        .iter()
        .find(|c| c.name == wanted)?
        .context
        .as_ref()?;
    Some((wanted, found))
}

/// How a student authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityKind {
    /// A client certificate the cluster's signer issued (CertificateSigningRequest).
    Certificate,
    /// A ServiceAccount token, where the cluster signs no client certificates.
    ServiceAccountToken,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Student {
    pub name: String,
    /// The user name the API server knows the student by.
    pub user: String,
    pub identity: IdentityKind,
    pub kubeconfig: PathBuf,
    /// The namespaces of the student's lab copies.
    pub namespaces: Vec<String>,
}

/// What `class up` made: read by grade, reset and down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassFile {
    pub version: u32,
    pub name: String,
    pub server: String,
    /// kube-system's uid: the very cluster the class was made on.
    pub cluster_uid: String,
    /// The labs' suite, or their folder.
    pub suite: Option<String>,
    pub dir: Option<PathBuf>,
    pub labs: Vec<String>,
    pub students: Vec<Student>,
}

impl ClassFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CLASS_FILE)
    }

    pub fn read(dir: &Path) -> Result<ClassFile, Error> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            what: format!(
                "reading the class file {} (`kubelab class up --out {}` makes it)",
                path.display(),
                dir.display()
            ),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: not a kubelab class file: {e}", path.display())))
    }

    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let path = Self::path(dir);
        let text = serde_json::to_string_pretty(self).expect("class file serializes");
        std::fs::write(&path, text).map_err(|source| Error::Io {
            what: format!("writing {}", path.display()),
            source,
        })
    }

    pub fn student(&self, name: &str) -> Result<&Student, Error> {
        self.students
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no student '{name}' in class {} (students: {})",
                    self.name,
                    self.students
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// `student-01` … `student-NN`.
pub fn numbered(count: u32) -> Vec<String> {
    let width = count.to_string().len().max(2);
    (1..=count)
        .map(|n| format!("student-{n:0width$}"))
        .collect()
}

/// A roster: one name per line; blank lines and `#` comments are skipped. Names become
/// parts of namespaces, so they must be short DNS labels.
pub fn roster(file: &Path, text: &str) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or_default().trim();
        if name.is_empty() {
            continue;
        }
        let problem = |why: String| Error::Roster {
            file: file.display().to_string(),
            line: index + 1,
            name: name.to_string(),
            why,
        };
        if !crate::scenario::is_dns_label(name) {
            return Err(problem(
                "is not a DNS label: use lower-case letters, digits and '-', starting with a letter".into(),
            ));
        }
        if name.len() > MAX_NAME {
            return Err(problem(format!(
                "is longer than {MAX_NAME} characters (it ends every namespace of the student's labs)"
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(problem("is on the roster twice".into()));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the roster names no student (one name per line)",
            file.display()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_names_the_line_of_a_bad_name() {
        let file = Path::new("class.txt");
        assert_eq!(
            roster(file, "# my class\nann\n\nbo # late\n").unwrap(),
            vec!["ann", "bo"]
        );
        let err = roster(file, "ann\nBad_Name\n").unwrap_err().to_string();
        assert!(
            err.starts_with("class.txt:2: student name 'Bad_Name' is not a DNS label"),
            "{err}"
        );
        let err = roster(file, "ann\nann\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "class.txt:2: student name 'ann' is on the roster twice"
        );
        assert!(roster(file, "# nobody\n").is_err());
        assert_eq!(numbered(3), vec!["student-01", "student-02", "student-03"]);
        assert_eq!(numbered(100)[0], "student-001");
    }

    #[test]
    fn a_seat_round_trips_through_a_kubeconfig_extension() {
        let seat = Seat {
            class: "cka".into(),
            student: "ann".into(),
        };
        let context = kube::config::Context {
            extensions: Some(vec![kube::config::NamedExtension {
                name: SEAT_EXTENSION.into(),
                extension: seat.extension(),
            }]),
            ..Default::default()
        };
        assert_eq!(Seat::of_context(&context), Some(seat));
        assert_eq!(Seat::of_context(&Default::default()), None);
    }
}
