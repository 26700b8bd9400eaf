//! The command line: parses arguments, loads the repository, calls the
//! library, prints, and maps outcomes to exit codes. No logic of its own.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::{Format, Mode, render};
use crate::reconcile::{self, Filters, targets::parse_selector};
use crate::repo::Repo;

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
        tenantctl reconcile --plan --tenant acme --format json\n\n\
        Exit codes: 0 ok; 1 error (or a tenant database did not converge); \
        2 changes pending (reconcile --plan --detailed-exitcode)."
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

    /// When to colour text output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

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

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["plan", "apply"])))]
pub struct ReconcileArgs {
    /// Show what would change; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Apply the changes: lock, re-check, apply, verify, record history.
    #[arg(long)]
    pub apply: bool,
    /// Only this tenant (repeatable).
    #[arg(long, value_name = "NAME")]
    pub tenant: Vec<String>,
    /// Only databases of this blueprint (repeatable).
    #[arg(long, value_name = "NAME")]
    pub blueprint: Vec<String>,
    /// Only tenants whose label KEY has VALUE (repeatable; all must match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_selector)]
    pub selector: Vec<(String, String)>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// With --plan: exit 2 when there are changes (0 when none, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Apply destructive steps (drop table/column, narrowing types).
    #[arg(long)]
    pub allow_destructive: bool,
    /// Tenant databases worked on at once (default: defaults.concurrency, else 8).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Stop starting new tenant databases after N failures.
    #[arg(long, value_name = "N")]
    pub max_failures: Option<usize>,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Repo> {
    Repo::load(&cli.repo, cli.env.as_deref()).map_err(|d| {
        let n = d.0.len();
        anyhow::anyhow!(
            "{d}\n{n} problem{} in {} (run `tenantctl validate` to check it)",
            if n == 1 { "" } else { "s" },
            cli.repo.display()
        )
    })
}

fn run(cli: Cli, color: bool) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Validate => match Repo::load(&cli.repo, cli.env.as_deref()) {
            Ok(repo) => {
                let dbs: usize = repo.tenants.iter().map(|t| t.databases.len()).sum();
                println!(
                    "{}: valid ({} blueprint(s), {} tenant(s), {} tenant database(s))",
                    cli.repo.display(),
                    repo.blueprints.len(),
                    repo.tenants.len(),
                    dbs
                );
                Ok(EXIT_OK)
            }
            Err(diags) => {
                for d in &diags.0 {
                    println!("{d}");
                }
                eprintln!("{} problem(s) found", diags.0.len());
                Ok(EXIT_ERROR)
            }
        },
        Command::Reconcile(args) => {
            let repo = load(&cli)?;
            let options = reconcile::Options {
                mode: if args.apply { Mode::Apply } else { Mode::Plan },
                filters: Filters {
                    tenants: args.tenant.clone(),
                    blueprints: args.blueprint.clone(),
                    selectors: args.selector.clone(),
                },
                concurrency: args.concurrency,
                allow_destructive: args.allow_destructive,
                max_failures: args.max_failures,
                git_commit: None,
                progress: std::io::stderr().is_terminal(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(reconcile::run(&repo, &options))?;
            print!(
                "{}",
                render(&report, args.format, color && args.format == Format::Text)?
            );
            Ok(match options.mode {
                Mode::Apply if !report.summary.ok => EXIT_ERROR,
                Mode::Apply => EXIT_OK,
                Mode::Plan if report.summary.by_status.contains_key("failed") => EXIT_ERROR,
                Mode::Plan if args.detailed_exitcode && report.summary.has_changes => EXIT_CHANGES,
                Mode::Plan => EXIT_OK,
            })
        }
        Command::Tenants {
            command: TenantsCommand::List { format },
        } => {
            let repo = load(&cli)?;
            print!("{}", crate::tenants::list(&repo, *format));
            Ok(EXIT_OK)
        }
    }
}
