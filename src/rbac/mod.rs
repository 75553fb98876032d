//! "Why was this allowed or denied?": an RBAC evaluator that decides as kube-apiserver
//! does, explains its decision, and is checked against kube-apiserver itself.

mod decide;
pub mod diagnose;
mod explain;
pub mod generate;
mod message;
mod policy;
mod request;
pub mod snapshot;
pub mod verify;

pub use decide::{Decision, Grant, decide, subject_keys, subject_naming};
pub use diagnose::{AutomountOff, Diagnosis, Owner, PodFacts, diagnose};
pub use explain::{Miss, Why, request_text, rule_text, suggestion, why};
pub use message::{forbidden, go_quote, parse_forbidden};
pub use policy::{Binding, BindingSubject, Policy, Rule, SubjectKind};
pub use request::{Request, User, service_account};
