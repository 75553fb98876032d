//! "Why was this allowed or denied?": an RBAC evaluator that decides as kube-apiserver
//! does, explains its decision, and is checked against kube-apiserver itself.

mod decide;
mod explain;
pub mod generate;
mod message;
mod policy;
mod request;
pub mod verify;

pub use decide::{Decision, Grant, decide, subject_keys, subject_naming};
pub use explain::{Miss, Why, request_text, rule_text, suggestion, why};
pub use message::{forbidden, go_quote};
pub use policy::{Binding, BindingSubject, Policy, Rule, SubjectKind};
pub use request::{Request, User, service_account};
