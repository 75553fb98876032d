//! Command-line definitions (clap). No behaviour lives here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The name kubectl gives a plugin: `kubectl lab ...` runs `kubectl-lab ...`.
pub const PLUGIN_NAME: &str = "kubectl-lab";

/// Parses the command line; invoked as kubectl-lab (a symlink on PATH), kubelab is a
/// kubectl plugin and its help says `kubectl lab`.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let invoked = std::env::args_os().next().unwrap_or_default();
    let as_plugin = std::path::Path::new(&invoked)
        .file_name()
        .is_some_and(|name| name == PLUGIN_NAME);
    let mut command = Cli::command();
    if as_plugin {
        command = command.bin_name("kubectl lab");
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Parser)]
#[command(
    name = "kubelab",
    version,
    long_version = crate::versions::LONG_VERSION,
    about = "Hands-on Kubernetes labs: how a Pod talks to the API server, run against a real cluster",
    after_help = "Start here:\n  kubelab start 02            do lab 02 yourself: its task, your kubectl, then `kubelab check`\n  kubelab run                 run every lab (starts a local cluster if none runs)\n  kubelab list                the labs\n  kubelab show 02             a lab's steps and the exact in-pod commands\n  kubelab cluster up          start a local control plane and keep it running\n\nExit codes: 0 ok, 1 a check failed, 2 usage or lab error (a lab file, or a manifest the API server rejects), 3 cluster or environment error, 130 interrupted."
)]
pub struct Cli {
    /// Print only results and errors: no progress lines.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run labs (all by default) and check every probe against the real API server.
    #[command(
        after_help = "Examples:\n  kubelab run                           every lab of the default suite (starts a local cluster if none runs)\n  kubelab run 01 02 --explain           two labs, each with its explanation\n  kubelab run --dir my-labs --context ci -y --junit report.xml --html report.html\n  kubelab run --suite conformance --timings"
    )]
    Run(RunArgs),
    /// Start a hands-on lab: set up its starting state and print the task.
    #[command(
        after_help = "Examples:\n  kubelab start 02              on the local cluster (started if none runs)\n  kubelab start 04 --node       with a real node, so pods run\n  kubelab start 02 --context staging --suite seed\n\nThen: kubectl as the task says, `kubelab check`, `kubelab hint`."
    )]
    Start(StartArgs),
    /// Check the lab against the cluster as it is now: ✓/✗ per task, points, and what
    /// is still wrong (exit 0 when all pass, 1 otherwise). Never changes anything.
    #[command(
        after_help = "Examples:\n  kubelab check                 the lab started last\n  kubelab check 02 -v           everything a failing check saw: commands, bodies, diffs\n  kubelab check -o json         the grade as JSON (points, problems, diagnoses)"
    )]
    Check(CheckArgs),
    /// Print the lab's next hint (hints come one at a time; shown ones are remembered).
    #[command(
        after_help = "Examples:\n  kubelab hint          the next hint of the lab started last\n  kubelab hint 02"
    )]
    Hint(LabArgs),
    /// Show the lab's solution; --apply applies it (progress records that).
    #[command(
        after_help = "Examples:\n  kubelab solution             manifests and kubectl commands\n  kubelab solution 02 --apply  apply it (progress records that)"
    )]
    Solution(SolutionArgs),
    /// Remove what the lab and you created in its namespaces, then set it up again.
    #[command(
        after_help = "Examples:\n  kubelab reset                the lab started last\n  kubelab reset 04"
    )]
    Reset(ResetArgs),
    /// End the lab: remove what it and you created, and leave it (progress stays;
    /// `kubelab start` sets it up again).
    #[command(after_help = "Examples:\n  kubelab stop\n  kubelab stop 02")]
    Stop(ResetArgs),
    /// An interactive shell in the lab's pod (on a cluster without a node: the closest
    /// stand-in, a private mount namespace on this host, and what differs).
    Shell(ShellArgs),
    /// The labs you started: solved, points, hints used, time spent.
    #[command(after_help = "Examples:\n  kubelab progress\n  kubelab progress -o json")]
    Progress(ProgressArgs),
    /// List the labs.
    #[command(
        after_help = "Examples:\n  kubelab list\n  kubelab list --suite conformance\n  kubelab list --dir my-labs"
    )]
    List(DirArgs),
    /// Show a lab's steps, manifests and the exact in-pod commands, without running.
    #[command(after_help = "Examples:\n  kubelab show 02\n  kubelab show 03 --suite conformance")]
    Show(ShowArgs),
    /// Check lab files; every problem is reported as file:line:col and field.
    #[command(
        after_help = "Examples:\n  kubelab lint --dir my-labs\n  kubelab lint --suite conformance"
    )]
    Lint(DirArgs),
    /// Print a JSON Schema: lab.yaml's (for editors: yaml-language-server) or the JSON
    /// report's (`kubelab run -o json`, versioned by its schema_version).
    #[command(
        after_help = "Examples:\n  kubelab schema > lab.schema.json\n  kubelab schema report > report.schema.json"
    )]
    Schema(SchemaArgs),
    /// Make a new lab folder that passes lint: lab.yaml (with the schema header for
    /// editors), a manifest, a probe and its expected answer.
    #[command(
        after_help = "Examples:\n  kubelab new my-lab                  ./my-lab/\n  kubelab new 20-list-secrets --dir labs/\n  kubelab lint --dir my-lab && kubelab run --dir my-lab"
    )]
    New(NewArgs),
    /// Build the pinned upstream binaries into the cache (~/.cache/kubelab), and the
    /// local node's images when asked. Needs Go; what is cached is not built again.
    #[command(
        after_help = "Examples:\n  kubelab setup                  etcd, kube-apiserver, kube-controller-manager, kubectl, kind\n  kubelab setup --node           also kubelet, kube-proxy, kube-scheduler, CoreDNS and the node's images\n  kubelab setup kubectl          one component\n  KUBELAB_ASSETS=/opt/k8s/bin kubelab setup   use binaries you have; build only what is missing there\n\nComponents: etcd kube-apiserver kube-controller-manager kubectl kind kube-scheduler kube-proxy kubelet coredns chainsaw kubectl-kuttl, or the groups all, node, harnesses."
    )]
    Setup(SetupArgs),
    /// Print a shell completion script (lab ids complete from the labs themselves).
    #[command(
        after_help = "Examples:\n  source <(kubelab completions bash)            in ~/.bashrc\n  kubelab completions zsh > \"${fpath[1]}/_kubelab\"\n  kubelab completions fish > ~/.config/fish/completions/kubelab.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), generated from this command line.
    #[command(
        after_help = "Examples:\n  kubelab man | man -l -\n  kubelab man --dir /usr/local/share/man/man1   one page per command"
    )]
    Man(ManArgs),
    /// List the container images the labs use (to pre-pull or load them offline).
    #[command(
        after_help = "Examples:\n  kubelab images\n  kubelab images --curl-image registry.example/curl:8 --dir my-labs"
    )]
    Images(ImagesArgs),
    /// Why is a request allowed or denied? RBAC's answer, explained, from the cluster's
    /// Roles and bindings (checked with the API server's own SubjectAccessReview).
    #[command(
        after_help = "Examples:\n  kubelab why --as system:serviceaccount:default:tokendemo get /api/v1/namespaces/default/pods\n  kubelab why --as jane --as-group devs list /apis/apps/v1/namespaces/shop/deployments -o json"
    )]
    Why(WhyArgs),
    /// The RBAC evaluator against kube-apiserver, and its speed (for developers).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  kubelab rbac verify --cases 2000\n  kubelab rbac bench --roles 1000"
    )]
    Rbac(RbacCommand),
    /// Start, inspect and stop the cluster the labs run on.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  kubelab cluster up --node\n  kubelab cluster status\n  kubelab cluster down"
    )]
    Cluster(ClusterCommand),
    /// A class on one cluster: an identity, isolated labs and an RBAC fence per
    /// student; grades for the instructor.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  kubelab class up --students 30 --out class/\n  kubelab class grade --class class/ --html grades.html\n  kubelab class down --class class/"
    )]
    Class(ClassCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClassCommand {
    /// Make the students: an identity each (a client certificate, or a ServiceAccount
    /// token where the cluster signs none), namespaces for every lab, RBAC that fences
    /// them in, and one kubeconfig per student.
    #[command(
        after_help = "Examples:\n  kubelab class up --students 30 --out class/\n  kubelab class up --roster names.txt --class-name cka-june 02 04 07\n\nThen each student: export KUBECONFIG=class/student-01.kubeconfig; kubelab start 02"
    )]
    Up(ClassUpArgs),
    /// Check every student's started labs and print students by labs with points.
    #[command(
        after_help = "Examples:\n  kubelab class grade --class class/\n  kubelab class grade --html grades.html --csv grades.csv --junit grades.xml\n  kubelab class grade -o json"
    )]
    Grade(ClassGradeArgs),
    /// Take one student's labs (or one lab) back to their start.
    #[command(
        after_help = "Examples:\n  kubelab class reset student-03\n  kubelab class reset ann 02"
    )]
    Reset(ClassResetArgs),
    /// Remove every student's namespaces, RBAC and identities, and the kubeconfigs.
    #[command(after_help = "Example:\n  kubelab class down --class class/")]
    Down(ClassDownArgs),
}

#[derive(Debug, Args)]
pub struct ClassUpArgs {
    /// Labs the class does, by id or folder name; all hands-on labs when none are given.
    pub labs: Vec<String>,

    /// How many students: student-01, student-02, ...
    #[arg(long, conflicts_with = "roster", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub students: Option<u32>,

    /// A file with one student name per line (DNS labels; # starts a comment).
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,

    /// The class's name (it labels everything the class makes).
    #[arg(long, default_value = "class")]
    pub class_name: String,

    /// Where the kubeconfigs (DIR/<student>.kubeconfig) and the class file go.
    #[arg(long, value_name = "DIR", default_value = "kubelab-class")]
    pub out: PathBuf,

    /// What students authenticate with: auto (a client certificate where the cluster
    /// signs one, else a token), certificate, or token (a ServiceAccount token: it can
    /// be revoked early by deleting the ServiceAccount; a certificate cannot).
    #[arg(long, value_enum, default_value_t = IdentityChoice::Auto)]
    pub identity: IdentityChoice,

    /// How long the students' credentials are valid (e.g. 12h, 7d).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub valid: Duration,

    /// local: start the cluster with a real node, so the labs' pods run.
    #[arg(long)]
    pub node: bool,

    #[command(flatten)]
    pub dir: DirArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub consent: Consent,

    #[command(flatten)]
    pub images: ImageArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdentityChoice {
    Auto,
    Certificate,
    Token,
}

#[derive(Debug, Args)]
pub struct ClassGradeArgs {
    /// The folder `class up --out` wrote.
    #[arg(long, value_name = "DIR", default_value = "kubelab-class")]
    pub class: PathBuf,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The grades on stdout: a table, or JSON.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Also write the grades as CSV (a column per lab).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Also write JUnit XML (a testsuite per student, a testcase per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write one self-contained HTML page: sortable, with each student's failing
    /// checks and their diagnoses.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClassResetArgs {
    /// The student, as the class file names them.
    pub student: String,
    /// One lab (all of the student's labs when left out).
    pub lab: Option<String>,

    #[arg(long, value_name = "DIR", default_value = "kubelab-class")]
    pub class: PathBuf,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ClassDownArgs {
    #[arg(long, value_name = "DIR", default_value = "kubelab-class")]
    pub class: PathBuf,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster, or reuse a healthy one of the same name.
    #[command(
        after_help = "Examples:\n  kubelab cluster up                      etcd, kube-apiserver, kube-controller-manager on 127.0.0.1\n  kubelab cluster up --node               and a real node: kubelet, containerd, kube-proxy, CoreDNS (root)\n  kubelab cluster up --provider kind      a kind cluster (needs Docker or Podman)\n  kubelab cluster up --apiserver-arg=--v=4 --wait-timeout 120s"
    )]
    Up(UpArgs),
    /// Stop a cluster and remove everything it wrote.
    #[command(
        after_help = "Examples:\n  kubelab cluster down\n  kubelab cluster down --provider kind --name ci"
    )]
    Down(DownArgs),
    /// Show what runs: versions, ports, pids, readiness.
    #[command(after_help = "Examples:\n  kubelab cluster status\n  kubelab cluster status -o json")]
    Status(StatusArgs),
    /// Print the path of the cluster's admin kubeconfig.
    #[command(after_help = "Examples:\n  export KUBECONFIG=$(kubelab cluster kubeconfig)")]
    Kubeconfig(ClusterRef),
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// A folder of labs (each a sub-folder with a lab.yaml), or one lab's folder,
    /// instead of a built-in suite.
    #[arg(long, env = "KUBELAB_SCENARIOS")]
    pub dir: Option<PathBuf>,

    /// The built-in suite: seed (hands-on labs: the seed texts', and broken RBAC to fix) or conformance (the
    /// Kubernetes ServiceAccount and RBAC conformance tests, as labs).
    #[arg(long, default_value = "seed", value_parser = clap::builder::PossibleValuesParser::new(crate::scenario::SUITES))]
    pub suite: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The lab: its id ("02") or folder name.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::lab_ids))]
    pub lab: String,
    #[command(flatten)]
    pub dir: DirArgs,
}

/// Images the lab manifests name, replaced as asked.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image with curl and a shell for probe pods (replaces curlimages/curl:8.11.1).
    #[arg(long, value_name = "IMAGE")]
    pub curl_image: Option<String>,

    /// The image with kubectl (replaces registry.k8s.io/kubectl of the pinned version).
    #[arg(long, value_name = "IMAGE")]
    pub kubectl_image: Option<String>,

    /// Any other replacement, OLD=NEW (repeatable).
    #[arg(long = "use-image", value_name = "OLD=NEW")]
    pub use_images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    #[command(flatten)]
    pub images: ImageArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecMode {
    /// In pods where a node runs them, else on the host for them.
    Auto,
    /// Exec inside the lab's pods (needs a node).
    Pod,
    /// On the host, standing in for the kubelet.
    Host,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The user asking, e.g. system:serviceaccount:default:tokendemo or system:anonymous.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,

    /// An extra group of the user (repeatable); ServiceAccount and authenticated groups
    /// are added as the API server adds them.
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// GET, POST, PUT, PATCH, DELETE or HEAD.
    pub method: String,

    /// The request path, with its query if any: /api/v1/namespaces/default/pods?watch=true
    pub path: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
pub enum RbacCommand {
    /// Random policies and requests: the evaluator's decision vs a SubjectAccessReview
    /// on a local control plane (started for the check if none runs).
    #[command(
        after_help = "Examples:\n  kubelab rbac verify\n  kubelab rbac verify --cases 50000 --seed 7 -o json"
    )]
    Verify(VerifyArgs),
    /// Decision time with many roles and bindings loaded: prints p50 and p99.
    #[command(
        after_help = "Examples:\n  kubelab rbac bench\n  kubelab rbac bench --roles 5000 --decisions 1000000"
    )]
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// How many requests to check.
    #[arg(long, default_value_t = 10_000)]
    pub cases: usize,

    /// Requests per random policy.
    #[arg(long, default_value_t = 250)]
    pub per_policy: usize,

    /// Seed of the generator: the same seed checks the same cases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// The local cluster to use.
    #[arg(long, env = "KUBELAB_CLUSTER", default_value = "kubelab", value_parser = parse_name)]
    pub name: String,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Roles (and as many bindings) in the policy.
    #[arg(long, default_value_t = 1000)]
    pub roles: usize,

    /// Decisions to time.
    #[arg(long, default_value_t = 200_000)]
    pub decisions: usize,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The lab, by id ("02") or folder name (`kubelab list`).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::lab_ids))]
    pub lab: String,

    #[command(flatten)]
    pub dir: DirArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub consent: Consent,

    /// local: start the cluster with a real node, so the lab's pods run.
    #[arg(long)]
    pub node: bool,

    #[command(flatten)]
    pub images: ImageArgs,
}

/// The lab a command means: the one named, else the one started last.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The lab, by id or folder name (default: the lab started last).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::lab_ids))]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub lab: LabArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Where probes run.
    #[arg(long = "exec", value_enum, default_value_t = ExecMode::Auto)]
    pub exec: ExecMode,

    /// Show everything a failing check saw: commands, response bodies, diffs.
    #[arg(long, short)]
    pub verbose: bool,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct SolutionArgs {
    #[command(flatten)]
    pub lab: LabArgs,

    /// Apply the solution to the cluster (progress then says the lab was solved with it).
    #[arg(long)]
    pub apply: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub consent: Consent,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub lab: LabArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub consent: Consent,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kubelab shell                 the pod of the lab started last\n  kubelab shell 02 mydemo\n  kubelab shell deployment/pod-lister -c main\n\nIn the shell, the seed texts' commands work as printed:\n  TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\n  curl --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt -H \"Authorization: Bearer $TOKEN\" https://kubernetes.default.svc/api/v1/namespaces/default/pods"
)]
pub struct ShellArgs {
    /// The lab (default: the lab started last); a pod here, when no lab has that name.
    pub lab: Option<String>,

    /// The pod, or TYPE/NAME of a workload (default: the pod the lab's checks probe from).
    pub pod: Option<String>,

    /// The container (default: the first).
    #[arg(long, short)]
    pub container: Option<String>,

    /// Namespace of the pod (default: the lab's first namespace).
    #[arg(long, short)]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Where the shell runs: in the pod (needs a node) or the host stand-in.
    #[arg(long = "exec", value_enum, default_value_t = ExecMode::Auto)]
    pub exec: ExecMode,
}

#[derive(Debug, Args)]
pub struct ProgressArgs {
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Labs to run, by id ("02") or folder name; all when none are given.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::completion::lab_ids))]
    pub labs: Vec<String>,

    #[command(flatten)]
    pub dir: DirArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub consent: Consent,

    /// Where probes run.
    #[arg(long = "exec", value_enum, default_value_t = ExecMode::Auto)]
    pub exec: ExecMode,

    #[command(flatten)]
    pub images: ImageArgs,

    /// Leave the labs' objects (and a cluster this run started) for exploring.
    #[arg(long)]
    pub keep: bool,

    /// Give each lab its own copy of its namespaces and cluster-wide names
    /// (project-swan becomes project-swan-03-RUN), so that runs and people share a
    /// cluster without touching each other's objects. On by default on a cluster
    /// kubelab did not make; --no-isolate turns it off.
    #[arg(long, overrides_with = "no_isolate")]
    pub isolate: bool,

    /// Use the namespaces as the labs name them, even on a cluster kubelab did not make.
    #[arg(long, overrides_with = "isolate")]
    pub no_isolate: bool,

    /// Labs to run at the same time (labs sharing a namespace never overlap).
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Print where the time went, per lab: apply, pod start, probes, other checks,
    /// cleanup; and the run's wait for namespaces (on stderr).
    #[arg(long)]
    pub timings: bool,

    /// Do not wait for the labs' namespaces to be gone: everything the labs made inside
    /// them is deleted and checked gone, and each namespace is checked to be
    /// terminating. (Otherwise kubelab empties and finalizes them itself where it may,
    /// rather than wait out the namespace controller's fixed 5 s hold.)
    #[arg(long)]
    pub no_wait: bool,

    /// How long removing what the run made may take before kubelab reports what holds
    /// it (an object's finalizers, a namespace's conditions).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub cleanup_timeout: std::time::Duration,

    /// Remove, without asking, what runs that crashed left on the cluster (found by
    /// their expired Lease and their kubelab.dev/run label). Without it, kubelab asks
    /// when it can, and otherwise only lists them.
    #[arg(long)]
    pub remove_leftovers: bool,

    /// Print each lab's explanation, rendered from what was observed.
    #[arg(long)]
    pub explain: bool,

    /// Report format on stdout.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// Also write a JUnit XML report (one testsuite per lab, one testcase per probe).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write a self-contained HTML report: labs, checks, what each saw,
    /// explanations and what to change for each failure.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Also write a Markdown summary (for CI job summaries: $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which document.
    #[arg(value_enum, default_value_t = SchemaKind::Lab)]
    pub kind: SchemaKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// lab.yaml
    Lab,
    /// The JSON report of `kubelab run -o json`.
    Report,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The lab's folder name: lowercase letters, digits and dashes; a leading number
    /// ("20-list-secrets") becomes its id.
    pub name: String,

    /// Where to make the folder.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Components or groups to build (default: the control plane and kind).
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,

    /// Also what the local node needs: its binaries and its images.
    #[arg(long)]
    pub node: bool,

    /// Build the node's images (pause, curl, kubectl) too.
    #[arg(long)]
    pub images: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into this folder instead of printing kubelab(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// kind when kind and a working container engine are found, otherwise local.
    Auto,
    /// etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, from upstream binaries.
    Local,
    /// A kind cluster made from kind-config.yaml (needs kind and docker or podman).
    Kind,
    /// An existing cluster from a kubeconfig (KUBECONFIG, --kubeconfig, --context).
    Kubeconfig,
}

/// Which cluster a command works on, chosen as kubectl chooses: --kubeconfig and
/// --context, else KUBECONFIG, else kubelab's own (a local cluster, or kind).
#[derive(Clone, Debug, Args)]
pub struct ClusterArgs {
    /// local, kind or kubeconfig; auto: what --kubeconfig, --context or KUBECONFIG
    /// name, else the local cluster of that name if there is one, else kind when kind
    /// and a container engine work, else local.
    #[arg(long, value_enum, env = "KUBELAB_PROVIDER", default_value_t = Provider::Auto)]
    pub provider: Provider,

    /// The local or kind cluster (started when a command needs it and it is not running).
    #[arg(long, env = "KUBELAB_CLUSTER", default_value = "kubelab", value_parser = parse_name)]
    pub name: String,

    /// The cluster of this kubeconfig (implies --provider kubeconfig; default file:
    /// KUBECONFIG, ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// This kubeconfig context (implies --provider kubeconfig). Naming it is consent to
    /// change that cluster.
    #[arg(long)]
    pub context: Option<String>,
}

/// Consent to change a cluster kubelab did not make.
#[derive(Clone, Copy, Debug, Args)]
pub struct Consent {
    /// kubeconfig provider: do not ask before changing the cluster.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// kubeconfig provider: let labs create cluster-wide objects (ClusterRoles,
    /// ClusterRoleBindings, ...). Without it kubelab lists them and asks when it can,
    /// and otherwise stops before changing anything.
    #[arg(long)]
    pub allow_cluster_wide: bool,
}

/// Which cluster a cluster command means.
#[derive(Debug, Args)]
pub struct ClusterRef {
    /// local or kind; auto: the local cluster of that name if there is one, else kind.
    #[arg(long, value_enum, env = "KUBELAB_PROVIDER", default_value_t = Provider::Auto)]
    pub provider: Provider,

    #[command(flatten)]
    pub name: NameArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// local or kind; auto: the local cluster of that name if there is one, else kind.
    #[arg(long, value_enum, env = "KUBELAB_PROVIDER", default_value_t = Provider::Auto)]
    pub provider: Provider,

    /// Name of the cluster (default kubelab). Naming a kind cluster explicitly allows
    /// deleting one kubelab did not create.
    #[arg(long, env = "KUBELAB_CLUSTER", value_parser = parse_name)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Name of the cluster (also its state directory's name).
    #[arg(long, env = "KUBELAB_CLUSTER", default_value = "kubelab", value_parser = parse_name)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub name: NameArgs,

    /// Where the cluster runs: kind when kind and a container engine work, else local.
    #[arg(long, value_enum, env = "KUBELAB_PROVIDER", default_value_t = Provider::Auto)]
    pub provider: Provider,

    /// local: give the cluster a real node (kubelet, containerd, kube-proxy, CoreDNS), so
    /// lab pods run and probes exec in them. Linux and root only.
    #[arg(long)]
    pub node: bool,

    /// kind: the node image, e.g. kindest/node:v1.35.0 (default: kind's own).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// kind: a cluster config to use instead of the built-in kind-config.yaml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// kind: the images to load into the nodes, as the labs (with these replacements) use them.
    #[command(flatten)]
    pub images: ImageArgs,

    /// The apiserver's port on 127.0.0.1 (default: a free one).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// How long to wait for each component to become ready (e.g. 90s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub wait_timeout: Duration,

    /// An extra kube-apiserver flag (repeatable), e.g. --apiserver-arg=--v=4.
    #[arg(
        long = "apiserver-arg",
        value_name = "FLAG",
        allow_hyphen_values = true
    )]
    pub apiserver_args: Vec<String>,

    /// An extra kube-controller-manager flag (repeatable).
    #[arg(
        long = "controller-manager-arg",
        value_name = "FLAG",
        allow_hyphen_values = true
    )]
    pub controller_manager_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cluster: ClusterRef,

    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Cluster names become directory names: keep them to what DNS labels allow.
fn parse_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(name.to_string())
    } else {
        Err("use 1-40 lowercase letters, digits and '-', not starting or ending with '-'".into())
    }
}

/// "90s", "2m", "500ms" or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90s, 2m or 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{text}': use ms, s, m, h or d"
            ));
        }
    };
    if seconds <= 0.0 {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_in_the_units_people_type() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn cluster_names_are_safe_directory_names() {
        assert!(parse_name("kubelab").is_ok());
        assert!(parse_name("class-2").is_ok());
        for bad in ["", "../etc", "Upper", "-x", "x-", "a/b", &"x".repeat(41)] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
