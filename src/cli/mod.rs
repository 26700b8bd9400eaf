//! The command line: parses arguments, loads the repository, calls the
//! library, prints, and maps outcomes to exit codes. No logic of its own.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use anyhow::{Context, bail};

use crate::engine;
use crate::plan::{Format, Mode, PlanOrigin, Report, SavedPlan, render};
use crate::reconcile::{self, Filters, ProgressMode, Shard};
use crate::repo::compare::DeclaredChanges;
use crate::repo::git::GitRepo;
use crate::repo::{Repo, parse_selector};

/// Exit code: success (for `--detailed-exitcode`: success and nothing to do).
pub const EXIT_OK: u8 = 0;
/// Exit code: an error, or an apply where some tenant database did not converge.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `reconcile --plan --detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "tenantctl",
    version,
    about = "Keep fleets of tenant databases in line with a git repository",
    long_about = "tenantctl keeps fleets of tenant databases in line with a git repository.\n\n\
        The repository declares blueprints (schemas: blueprints/NAME/schema.sql) and tenants \
        (tenants/*.yaml: which blueprints each tenant gets, on which server). tenantctl compares \
        that declared state with every live tenant database, plans the migrations that make them \
        match, and applies them per tenant, in parallel, each in one transaction where the engine allows.",
    after_help = "Typical use:\n  \
        tenantctl validate                              check the repository offline\n  \
        tenantctl reconcile --plan                      what would change, per tenant database\n  \
        tenantctl reconcile --apply                     make every tenant database match\n  \
        tenantctl reconcile --plan --base origin/main --format markdown   PR comment\n  \
        tenantctl drift                                 nightly: exit 2 when anything is not in sync\n\n\
        Exit codes: 0 ok; 1 error, usage error included (or a tenant database did not converge); \
        2 changes pending (reconcile --plan --detailed-exitcode) or not in sync (drift)."
)]
pub struct Cli {
    /// The tenantctl repository (holds tenantctl.yaml).
    #[arg(
        long,
        global = true,
        default_value = ".",
        value_name = "DIR",
        env = "TENANTCTL_REPO"
    )]
    pub repo: PathBuf,

    /// Environment whose server overrides apply (from `environments:` in tenantctl.yaml).
    #[arg(long, global = true, value_name = "NAME", env = "TENANTCTL_ENV")]
    pub env: Option<String>,

    /// Read the declared state from this git revision (branch, tag, sha) instead of the worktree.
    #[arg(long, global = true, value_name = "REV")]
    pub rev: Option<String>,

    /// When to colour text output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Directory with report templates overriding the built-in ones
    /// (report.txt.j2, report.md.j2; see templates/ in the tenantctl sources).
    #[arg(long, global = true, value_name = "DIR", env = "TENANTCTL_TEMPLATES")]
    pub templates: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check every file of the repository offline; print each problem as file:line:col: message.
    Validate,
    /// Plan (--plan) or apply (--apply) the migrations that make tenant databases match the repository.
    #[command(after_help = "Examples:\n  \
        tenantctl reconcile --plan --detailed-exitcode     exit 2 when something would change\n  \
        tenantctl reconcile --apply --blueprint orders --selector tier=enterprise\n  \
        tenantctl reconcile --apply --allow-destructive    also drop tables/columns removed from blueprints\n\n\
        A plan lists, per group of tenant databases in the same state, the steps with their hazards:\n  \
        destructive (drops data; not applied without --allow-destructive), data-dependent (may fail on\n  \
        existing rows), locking (rewrites or locks a table), index-build (long on big tables).")]
    Reconcile(ReconcileArgs),
    /// Check every tenant database against git: in-sync, pending, drifted, missing, orphan.
    #[command(after_help = "States:\n  \
        in-sync   the database matches its blueprint\n  \
        pending   git moved since the last apply; the database is still what was last applied\n  \
        drifted   the database changed outside tenantctl (shows what changed)\n  \
        missing   declared, but the database does not exist\n  \
        orphan    a database named like a tenant database that no tenant declares\n\n\
        Exit codes: 0 all in sync; 2 anything else; 1 error. Run it on a schedule and alert on 2.")]
    Drift(DriftArgs),
    /// List tenants and their databases.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Every tenant with its databases (blueprint, engine, server, database name).
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Which tenant databases a command works on.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// Only this tenant (repeatable).
    #[arg(long, value_name = "NAME")]
    pub tenant: Vec<String>,
    /// Only databases of this blueprint (repeatable).
    #[arg(long, value_name = "NAME")]
    pub blueprint: Vec<String>,
    /// Only tenants whose label KEY has VALUE (repeatable; all must match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_selector)]
    pub selector: Vec<(String, String)>,
    /// Only the I-th of N parts of the selected tenant databases (1 <= I <= N), split by a hash of
    /// each database's identity (engine, server, name): give each CI runner or Kubernetes Job
    /// index its own part.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

impl FilterArgs {
    fn filters(&self) -> Filters {
        Filters {
            tenants: self.tenant.clone(),
            blueprints: self.blueprint.clone(),
            selectors: self.selector.clone(),
            only: None,
            shard: self.shard,
        }
    }
}

#[derive(Args, Debug)]
pub struct DriftArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Tenant databases checked at once (default: defaults.concurrency, else 8).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["plan", "apply"])))]
pub struct ReconcileArgs {
    /// Show what would change; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Apply the changes: lock, re-check, apply, verify, record history.
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// PR mode: also show what changed in the declared state between REV and HEAD, and plan only
    /// the tenant databases that change affects (unless --all).
    #[arg(long, value_name = "REV", requires = "plan")]
    pub base: Option<String>,
    /// With --base: plan every tenant database, not only the affected ones.
    #[arg(long, requires = "base")]
    pub all: bool,
    /// With --plan: save the plan to FILE, as a review record for --plan-file (steps, the live-schema
    /// fingerprint of each database, the commit and a hash of the declared state).
    #[arg(long, value_name = "FILE", requires = "plan")]
    pub out: Option<PathBuf>,
    /// With --apply: apply this reviewed plan: each of its databases is re-planned under its lock from
    /// the plan's commit and applied only if the steps equal the saved ones (else refused, exit 1).
    #[arg(long, value_name = "FILE", requires = "apply")]
    pub plan_file: Option<PathBuf>,
    /// With --apply: allow uncommitted changes in the repository's worktree.
    #[arg(long, requires = "apply")]
    pub allow_dirty: bool,
    /// With --plan: exit 2 when there are changes (0 when none, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Apply destructive steps (drop table/column, narrowing types).
    #[arg(long)]
    pub allow_destructive: bool,
    /// Tenant databases worked on at once (default: defaults.concurrency, else 8).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Stop starting new tenant databases after N failures (over the whole run).
    #[arg(long, value_name = "N")]
    pub max_failures: Option<usize>,
    /// With --apply: stop starting tenant databases of a wave once more than P% of its finished
    /// ones failed (judged from 5 finished on); the rest are reported skipped.
    #[arg(long, value_name = "P%", value_parser = parse_rate, requires = "apply")]
    pub max_failure_rate: Option<f64>,
    /// One rollout wave per value of this tenant label (values in byte order, tenants without
    /// the label last), instead of `rollout.waves` of tenantctl.yaml.
    #[arg(long, value_name = "LABEL")]
    pub wave_by: Option<String>,
    /// With --apply: after each wave that converged (but the last), run CMD with `sh -c`;
    /// TENANTCTL_WAVE, TENANTCTL_NEXT_WAVE, TENANTCTL_WAVES and TENANTCTL_REPORT (a JSON report
    /// so far) are set. A non-zero exit stops the rollout: later waves are not started.
    #[arg(long, value_name = "CMD", requires = "apply")]
    pub between_waves: Option<String>,
    /// With --apply: after each wave that converged (but the last), wait for Enter on the
    /// terminal (refused when stdin is not a terminal).
    #[arg(long, requires = "apply")]
    pub pause: bool,
}

/// `--max-failure-rate`: `P%` or `P`, 0 to 100.
fn parse_rate(s: &str) -> Result<f64, String> {
    let number = s.trim().strip_suffix('%').unwrap_or(s.trim());
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a percentage from 0% to 100%, got {s:?}")),
    }
}

/// Progress on stderr: a bar on a terminal, plain lines in a log.
fn progress_mode() -> ProgressMode {
    if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e),
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    match run(cli, color) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "error: {}",
                crate::repo::env::redact_text(&format!("{e:#}"))
            );
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Prints a clap outcome that stops the run: `--help` and `--version` exit 0;
/// a usage error (unknown flag, bad value, missing argument) exits 1 like any
/// other error — never clap's 2, which CI reads as "changes" or "drift found".
fn usage_exit(e: &clap::Error) -> ExitCode {
    // A closed stdout/stderr is not a reason to fail differently.
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EXIT_ERROR)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

fn diagnostics_error(
    d: crate::diagnostic::Diagnostics,
    repo: &std::path::Path,
    rev: Option<&str>,
) -> anyhow::Error {
    let n = d.0.len();
    let at = rev.map(|r| format!(" at {r}")).unwrap_or_default();
    anyhow::anyhow!(
        "{d}\n{n} problem{} in {}{at} (run `tenantctl validate` to check it)",
        if n == 1 { "" } else { "s" },
        repo.display()
    )
}

/// The declared state (from the worktree, or from `--rev`) and the commit it
/// is at; `R` is `Repo`, or the loading result before problems become an error.
struct Declared<R = Repo> {
    repo: R,
    git: Option<GitRepo>,
    commit: Option<String>,
}

/// Reads the declared state from the worktree or `--rev`; repository
/// problems come back as diagnostics, git problems as errors.
fn read(cli: &Cli) -> anyhow::Result<Declared<Result<Repo, crate::diagnostic::Diagnostics>>> {
    match &cli.rev {
        Some(rev) => {
            let git = GitRepo::discover(&cli.repo).context("--rev")?;
            let source = git.at(rev)?;
            let repo = Repo::load_from(&source, &cli.repo, cli.env.as_deref(), &engine::REGISTRY);
            let commit = Some(source.commit.clone());
            drop(source);
            Ok(Declared {
                repo,
                git: Some(git),
                commit,
            })
        }
        None => {
            let git = GitRepo::discover(&cli.repo).ok();
            let commit = git.as_ref().and_then(GitRepo::head);
            Ok(Declared {
                repo: Repo::load(&cli.repo, cli.env.as_deref(), &engine::REGISTRY),
                git,
                commit,
            })
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Declared> {
    let Declared { repo, git, commit } = read(cli)?;
    let repo = repo.map_err(|d| diagnostics_error(d, &cli.repo, cli.rev.as_deref()))?;
    Ok(Declared { repo, git, commit })
}

/// The declared state a saved plan is applied against: the repository at
/// the plan's commit (for a plan made outside git, the worktree; with
/// `--allow-dirty`, the worktree a dirty plan was made from), refused unless
/// it is the repository and the declared state the plan was made from.
fn load_saved(cli: &Cli, args: &ReconcileArgs, plan: &SavedPlan) -> anyhow::Result<Declared> {
    let env = cli.env.as_deref();
    let git = GitRepo::discover(&cli.repo).ok();
    let Some(commit) = &plan.git_commit else {
        if git.is_some() {
            bail!(
                "refused: the plan was made outside git (it records no commit), but {} is in a git repository: make a new plan here",
                cli.repo.display()
            );
        }
        let repo = Repo::load(&cli.repo, env, &engine::REGISTRY)
            .map_err(|d| diagnostics_error(d, &cli.repo, None))?;
        plan.check_declared(&repo, "the worktree")
            .map_err(anyhow::Error::msg)?;
        return Ok(Declared {
            repo,
            git: None,
            commit: None,
        });
    };
    let Some(git) = git else {
        bail!(
            "refused: the plan was made at commit {commit}, but {} is not in a git repository: it is a plan of another repository",
            cli.repo.display()
        );
    };
    let here = git.prefix().to_string_lossy().into_owned();
    if plan.repository_path.as_deref() != Some(here.as_str()) {
        bail!(
            "refused: the plan was made for the tenantctl repository at {:?} of its git worktree, this one is at {here:?}: it is a plan of another repository",
            plan.repository_path.as_deref().unwrap_or("")
        );
    }
    if git.resolve(commit).ok().as_ref() != Some(commit) {
        bail!(
            "refused: the plan was made at commit {commit}, which this repository does not have: it is a plan of another repository, or that commit was not fetched (fetch it, or make a new plan)"
        );
    }
    if let Some(rev) = &cli.rev {
        let resolved = git.resolve(rev)?;
        if resolved != *commit {
            bail!(
                "refused: --rev {rev} is commit {resolved}, but the plan was made at commit {commit}"
            );
        }
    }
    let source = git.at(commit)?;
    let at_commit = Repo::load_from(&source, &cli.repo, env, &engine::REGISTRY)
        .map_err(|d| diagnostics_error(d, &cli.repo, Some(commit)))?;
    drop(source);
    let refusal = match plan.check_declared(&at_commit, &format!("the repository at {}", plan.at()))
    {
        Ok(()) => {
            return Ok(Declared {
                repo: at_commit,
                git: Some(git),
                commit: Some(commit.clone()),
            });
        }
        Err(refusal) => refusal,
    };
    if plan.dirty && args.allow_dirty {
        let worktree = Repo::load(&cli.repo, env, &engine::REGISTRY)
            .map_err(|d| diagnostics_error(d, &cli.repo, None))?;
        if plan.check_declared(&worktree, "the worktree").is_ok() {
            return Ok(Declared {
                repo: worktree,
                git: Some(git),
                commit: Some(format!("{commit}-dirty")),
            });
        }
    }
    bail!(refusal)
}

fn exit_code(report: &Report, detailed: bool) -> u8 {
    let failed = report.summary.by_status.contains_key("failed");
    match report.mode {
        Mode::Apply if !report.summary.ok => EXIT_ERROR,
        Mode::Apply => EXIT_OK,
        _ if failed => EXIT_ERROR,
        Mode::Plan if detailed && report.summary.has_changes => EXIT_CHANGES,
        Mode::Plan => EXIT_OK,
        Mode::Drift if report.summary.has_changes => EXIT_CHANGES,
        Mode::Drift => EXIT_OK,
    }
}

/// Apply refuses a worktree with uncommitted changes, since what is applied
/// must be what git holds (database files of SQLite servers and the plan file
/// do not count); with `--allow-dirty` it goes on. Returns whether it is dirty.
fn check_clean(declared: &Declared, args: &ReconcileArgs) -> anyhow::Result<bool> {
    let dirty = dirty_files(declared, args)?;
    if !dirty.is_empty() && !args.allow_dirty {
        let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
        let more = dirty.len() - shown.len();
        bail!(
            "the worktree has uncommitted changes ({}{}): apply what git holds — commit them first, or pass --allow-dirty",
            shown.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        );
    }
    Ok(!dirty.is_empty())
}

fn dirty_files(declared: &Declared, args: &ReconcileArgs) -> anyhow::Result<Vec<String>> {
    let Some(git) = &declared.git else {
        return Ok(Vec::new());
    };
    let ignored: Vec<std::path::PathBuf> = declared
        .repo
        .servers
        .values()
        .filter_map(|s| s.path.as_ref().and_then(|p| p.canonicalize().ok()))
        .chain(args.plan_file.iter().filter_map(|p| p.canonicalize().ok()))
        .chain(args.out.iter().filter_map(|p| p.canonicalize().ok()))
        .collect();
    let workdir = git.workdir();
    let dirty: Vec<String> = git
        .dirty_files()?
        .into_iter()
        .filter(|f| {
            let abs = workdir.join(f);
            !ignored.iter().any(|i| abs.starts_with(i))
        })
        .collect();
    Ok(dirty)
}

/// `validate`: every problem of the repository, then what SQLite says of
/// SQLite blueprints (run in memory; no server needed).
fn validate(cli: &Cli) -> anyhow::Result<u8> {
    let problems: Vec<String> = match read(cli)?.repo {
        Err(diags) => diags.0.iter().map(ToString::to_string).collect(),
        Ok(repo) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let rejected = runtime.block_on(async {
                let mut rejected = Vec::new();
                for blueprint in repo.blueprints.values() {
                    if let Err(e) = crate::engine::check_offline(blueprint).await {
                        rejected.push(e.to_string());
                    }
                }
                rejected
            });
            if rejected.is_empty() {
                let databases: usize = repo.tenants.iter().map(|t| t.databases.len()).sum();
                println!(
                    "{}: valid ({} blueprint(s), {} tenant(s), {} tenant database(s))",
                    cli.repo.display(),
                    repo.blueprints.len(),
                    repo.tenants.len(),
                    databases
                );
                return Ok(EXIT_OK);
            }
            rejected
        }
    };
    for problem in &problems {
        // A YAML mistake may quote the value it read, e.g. a URL.
        println!("{}", crate::repo::env::redact_text(problem));
    }
    eprintln!("{} problem(s) found", problems.len());
    Ok(EXIT_ERROR)
}

fn run(cli: Cli, color: bool) -> anyhow::Result<u8> {
    let paint = |report: &Report, format: Format| -> anyhow::Result<String> {
        Ok(render(
            report,
            format,
            color && format == Format::Text,
            cli.templates.as_deref(),
        )?)
    };
    match &cli.command {
        Command::Validate => validate(&cli),
        Command::Reconcile(args) => {
            if args.pause && !std::io::stdin().is_terminal() {
                bail!(
                    "--pause waits for Enter on a terminal, but stdin is not one: use --between-waves CMD to check waves in CI"
                );
            }
            let saved = match &args.plan_file {
                Some(path) => Some(std::sync::Arc::new(
                    SavedPlan::read(path).map_err(anyhow::Error::msg)?,
                )),
                None => None,
            };
            let declared = match &saved {
                Some(plan) => load_saved(&cli, args, plan)?,
                None => load(&cli)?,
            };
            let mode = if args.apply { Mode::Apply } else { Mode::Plan };
            let dirty = mode == Mode::Apply
                && saved.is_none()
                && cli.rev.is_none()
                && check_clean(&declared, args)?;
            let mut filters = args.filters.filters();
            let mut changes = None;
            if let Some(base) = &args.base {
                let git = declared
                    .git
                    .as_ref()
                    .context("--base needs the repository to be inside a git repository")?;
                let source = git.at(base)?;
                let base_repo =
                    Repo::load_from(&source, &cli.repo, cli.env.as_deref(), &engine::REGISTRY)
                        .map_err(|d| diagnostics_error(d, &cli.repo, Some(base)))?;
                let declared_changes =
                    DeclaredChanges::between(&base_repo, &declared.repo, &source.commit);
                if !args.all {
                    filters.only = Some(declared_changes.affected_databases(&declared.repo));
                }
                changes = Some(declared_changes);
            }
            let options = reconcile::Options {
                mode,
                filters,
                concurrency: args.concurrency,
                allow_destructive: args.allow_destructive,
                max_failures: args.max_failures,
                max_failure_rate: args.max_failure_rate,
                wave_by: args.wave_by.clone(),
                between_waves: args.between_waves.clone(),
                pause: args.pause,
                git_commit: declared
                    .commit
                    .clone()
                    .map(|c| if dirty { format!("{c}-dirty") } else { c }),
                progress: progress_mode(),
                saved,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let mut report = runtime.block_on(reconcile::run(&declared.repo, &options))?;
            report.declared = changes;
            if let Some(out) = &args.out {
                let origin = PlanOrigin {
                    git_commit: declared.commit.clone(),
                    dirty: cli.rev.is_none() && !dirty_files(&declared, args)?.is_empty(),
                    repository_path: declared
                        .git
                        .as_ref()
                        .map(|g| g.prefix().to_string_lossy().into_owned()),
                };
                let plan = SavedPlan::from_report(&report, &declared.repo, origin);
                plan.write(out)
                    .with_context(|| format!("writing the plan to {}", out.display()))?;
                eprintln!(
                    "Saved the plan of {} tenant database(s) to {}",
                    plan.targets.len(),
                    out.display()
                );
            }
            print!("{}", paint(&report, args.format)?);
            Ok(exit_code(&report, args.detailed_exitcode))
        }
        Command::Drift(args) => {
            let declared = load(&cli)?;
            let options = reconcile::Options {
                mode: Mode::Drift,
                filters: args.filters.filters(),
                concurrency: args.concurrency,
                allow_destructive: false,
                max_failures: None,
                git_commit: declared.commit.clone(),
                progress: progress_mode(),
                max_failure_rate: None,
                wave_by: None,
                between_waves: None,
                pause: false,
                saved: None,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(reconcile::run(&declared.repo, &options))?;
            print!("{}", paint(&report, args.format)?);
            Ok(exit_code(&report, true))
        }
        Command::Tenants {
            command: TenantsCommand::List { format },
        } => {
            let declared = load(&cli)?;
            print!("{}", crate::tenants::list(&declared.repo, *format));
            Ok(EXIT_OK)
        }
    }
}
