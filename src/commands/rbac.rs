//! `kubelab why`, and `kubelab rbac verify|bench` for checking the evaluator.

use std::process::ExitCode;
use std::time::Instant;

use crate::AppError;
use crate::cli::{BenchArgs, Format, RbacCommand, VerifyArgs, WhyArgs};
use crate::cluster::{self, kubeconfig, local};
use crate::rbac::generate::Rng;
use crate::rbac::{
    self, Binding, BindingSubject, Policy, Request, Rule, SubjectKind, User, verify,
};
use crate::ui::Ui;

fn kube_error(context: &str) -> impl FnOnce(kube::Error) -> AppError + '_ {
    move |source| {
        AppError::Cluster(crate::cluster::Error::Kube {
            context: context.to_string(),
            source,
        })
    }
}

pub async fn why(args: WhyArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    // As kubectl: --kubeconfig/--context, else KUBECONFIG, else kubelab's own cluster,
    // else ~/.kube/config.
    let choice = super::connect::choice(&args.cluster, None)?;
    let connection = cluster::to_read(&choice).await.connect().await?;
    let client = connection.client.clone();
    let server = format!(
        "the {} cluster at {}",
        connection.provider, connection.server
    );
    let step = ui.step(format!("reading the RBAC objects of {server}"));
    let policy = Policy::load(&client)
        .await
        .map_err(kube_error("reading the cluster's RBAC objects"))?;
    step.done(format!(
        "read {} Roles, {} ClusterRoles and their bindings from {server}",
        policy.roles.len(),
        policy.cluster_roles.len()
    ));
    let (path, query) = args.path.split_once('?').unwrap_or((&args.path, ""));
    let request = Request::from_http(&args.method.to_uppercase(), path, query);
    let user = User::authenticated_as(&args.user, &args.groups);
    let answer = rbac::why(&policy, &user, &request);
    let (apiserver_allowed, apiserver_reason) = verify::ask(&client, &user, &request)
        .await
        .map_err(kube_error("asking a SubjectAccessReview"))?;
    match args.output {
        Format::Json => {
            let json = serde_json::json!({"why": answer, "apiserver": {"allowed": apiserver_allowed, "reason": apiserver_reason}});
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("serializes")
            );
        }
        Format::Text => print_why(&args, &answer, apiserver_allowed, &apiserver_reason),
    }
    if apiserver_allowed != answer.allowed {
        return Err(AppError::Environment(format!(
            "kubelab's evaluator and kube-apiserver disagree on this request (kubelab: {}, apiserver: {}): please report it",
            answer.allowed, apiserver_allowed
        )));
    }
    Ok(if answer.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_why(args: &WhyArgs, answer: &rbac::Why, apiserver_allowed: bool, apiserver_reason: &str) {
    println!("{} {}", args.method.to_uppercase(), args.path);
    println!(
        "  as {} (groups: {})",
        answer.user.name,
        answer.user.groups.join(", ")
    );
    println!("  which is: {}", rbac::request_text(&answer.request));
    println!("{}", answer.summary);
    if let Some(message) = &answer.forbidden_message {
        println!("  the API server answers 403: {message}");
    }
    for diagnosis in &answer.diagnosis {
        println!(
            "  what is wrong: {} {}: {}",
            diagnosis.object, diagnosis.field, diagnosis.message
        );
        if let Some(patch) = &diagnosis.patch {
            println!("  the one edit that fixes it:\n    {patch}");
        }
    }
    if !answer.nearest.is_empty() {
        println!("  the nearest rules:");
        for miss in &answer.nearest {
            println!(
                "    {} → {} rule #{} ({})",
                miss.binding, miss.role, miss.rule_index, miss.rule
            );
            for difference in &miss.differences {
                println!("      {difference}");
            }
        }
    }
    if let Some(yaml) = &answer.suggestion {
        println!("  to allow exactly this, apply:");
        for line in yaml.lines() {
            println!("    {line}");
        }
    }
    let verdict = if apiserver_allowed {
        "allowed"
    } else {
        "denied"
    };
    let reason = if apiserver_reason.is_empty() {
        String::new()
    } else {
        format!(" ({apiserver_reason})")
    };
    let agree = if apiserver_allowed == answer.allowed {
        "agrees"
    } else {
        "DISAGREES"
    };
    println!("kube-apiserver {agree}: {verdict}{reason}");
}

pub async fn run(command: RbacCommand, ui: &Ui) -> Result<ExitCode, AppError> {
    match command {
        RbacCommand::Verify(args) => verify_against_apiserver(args, ui).await,
        RbacCommand::Bench(args) => Ok(bench(&args)),
    }
}

async fn verify_against_apiserver(args: VerifyArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let running = local::ensure_running(&args.name, ui).await?;
    let client = kubeconfig::client(&running.kubeconfig).await?;
    let step = ui.step(format!(
        "checking {} cases (seed {}) against kube-apiserver",
        args.cases, args.seed
    ));
    let started = Instant::now();
    let progress = |done: usize, all: usize| step.progress(format!("{done}/{all}"));
    let result = tokio::select! {
        result = verify::run(&client, args.cases, args.per_policy.max(1), args.seed, &progress) => Some(result),
        _ = crate::system::interrupted() => None,
    };
    let cleanup = verify::remove_namespaces(&client).await;
    if running.started_here {
        local::down(&args.name, ui).await?;
    }
    let outcome = match result {
        Some(result) => result.map_err(kube_error("checking against kube-apiserver"))?,
        None => return Err(AppError::Cluster(crate::cluster::Error::Interrupted)),
    };
    cleanup.map_err(kube_error("removing the check's namespaces"))?;
    step.done(format!(
        "checked {} cases in {}",
        outcome.cases,
        crate::ui::format_duration(started.elapsed())
    ));
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("serializes")
        ),
        Format::Text => {
            println!(
                "cases {}  allowed {}  denied {}  disagreements {}  reason mismatches {}  (seed {})",
                outcome.cases,
                outcome.allowed,
                outcome.cases - outcome.allowed,
                outcome.disagreements,
                outcome.reason_mismatches,
                args.seed
            );
            if let Some(first) = &outcome.first {
                println!(
                    "first disagreement:\n{}",
                    serde_json::to_string_pretty(first).expect("serializes")
                );
            }
        }
    }
    Ok(if outcome.disagreements + outcome.reason_mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A policy of `size` Roles and `size` RoleBindings over 20 namespaces (a tenth of them
/// ClusterRoles and ClusterRoleBindings), each binding naming two of 500 users.
fn synthetic_policy(size: usize, rng: &mut Rng) -> Policy {
    let verbs = ["get", "list", "watch", "create", "update", "delete"];
    let resources = [
        "pods",
        "secrets",
        "configmaps",
        "deployments",
        "services",
        "jobs",
    ];
    let rule = |rng: &mut Rng| Rule {
        verbs: rng.some(&verbs, 3).iter().map(|s| s.to_string()).collect(),
        api_groups: vec![String::new(), "apps".into()],
        resources: rng
            .some(&resources, 2)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    let mut policy = Policy::default();
    for i in 0..size {
        let rules = (0..3).map(|_| rule(rng)).collect();
        let cluster = i % 10 == 0;
        let namespace = if cluster {
            String::new()
        } else {
            format!("ns{}", i % 20)
        };
        if cluster {
            policy.add_cluster_role(&format!("role{i}"), rules);
        } else {
            policy.add_role(&namespace, &format!("role{i}"), rules);
        }
        let subjects = (0..2)
            .map(|_| BindingSubject {
                kind: SubjectKind::User,
                name: format!("user{}", rng.below(500)),
                namespace: String::new(),
            })
            .collect();
        policy.add_binding(Binding {
            name: format!("binding{i}"),
            namespace,
            role_kind: if cluster {
                "ClusterRole".into()
            } else {
                "Role".into()
            },
            role_name: format!("role{i}"),
            subjects,
        });
    }
    policy
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn bench(args: &BenchArgs) -> ExitCode {
    let mut rng = Rng::new(42);
    let policy = synthetic_policy(args.roles, &mut rng);
    let asks: Vec<(User, Request)> = (0..args.decisions.max(1))
        .map(|_| {
            let user = User::authenticated_as(&format!("user{}", rng.below(500)), &[]);
            let request = Request::Resource {
                verb: rng.pick(&["get", "list", "delete", "patch"]).to_string(),
                group: String::new(),
                resource: rng.pick(&["pods", "secrets", "nodes"]).to_string(),
                subresource: String::new(),
                name: String::new(),
                namespace: format!("ns{}", rng.below(20)),
            };
            (user, request)
        })
        .collect();
    let mut decide_ns = Vec::with_capacity(asks.len());
    let mut allowed = 0;
    for (user, request) in &asks {
        let start = Instant::now();
        let decision = rbac::decide(&policy, user, request);
        decide_ns.push(start.elapsed().as_nanos());
        allowed += usize::from(decision.allowed);
    }
    decide_ns.sort_unstable();
    let explained: Vec<&(User, Request)> = asks.iter().take(2000).collect();
    let mut why_ns = Vec::with_capacity(explained.len());
    for (user, request) in explained {
        let start = Instant::now();
        std::hint::black_box(rbac::why(&policy, user, request));
        why_ns.push(start.elapsed().as_nanos());
    }
    why_ns.sort_unstable();
    let us = |ns: u128| ns as f64 / 1000.0;
    println!(
        "policy: {} roles, {} bindings; {} decisions ({} allowed)",
        args.roles,
        args.roles,
        decide_ns.len(),
        allowed
    );
    println!(
        "decide: p50 {:.2} µs  p99 {:.2} µs  (target p50 <= 50 µs)",
        us(percentile(&decide_ns, 0.50)),
        us(percentile(&decide_ns, 0.99))
    );
    println!(
        "explain (decide + nearest misses + suggestion): p50 {:.2} µs  p99 {:.2} µs over {} requests",
        us(percentile(&why_ns, 0.50)),
        us(percentile(&why_ns, 0.99)),
        why_ns.len()
    );
    ExitCode::SUCCESS
}
