//! Rendering reports: JSON through serde, text and Markdown through the
//! minijinja templates in `templates/` (compiled in).

use std::path::Path;

use minijinja::{Environment, Value, context};
use owo_colors::OwoColorize;

use super::Report;

/// Output formats of plan, apply and drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

const TEXT_TEMPLATE: &str = include_str!("../../templates/report.txt.j2");
const MARKDOWN_TEMPLATE: &str = include_str!("../../templates/report.md.j2");

/// Renders `report`; `color` adds ANSI colours to text output. A template
/// of the same name in `overrides` replaces the built-in one.
pub fn render(
    report: &Report,
    format: Format,
    color: bool,
    overrides: Option<&Path>,
) -> Result<String, minijinja::Error> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(report).expect("report serialises") + "\n");
    }
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("paint", move |text: String, style: String| {
        paint(&text, &style, color)
    });
    env.add_filter("names", names);
    env.add_filter("md", |text: String| markdown_text(&text));
    env.add_filter("code", |text: String, in_table: Option<bool>| {
        code_span(&text, in_table.unwrap_or(false))
    });
    env.add_filter("quote", |text: String| block_quote(&text));
    env.add_filter("fenced", |text: String, lang: Option<String>| {
        fenced_block(&text, lang.as_deref().unwrap_or(""))
    });
    env.add_filter("lines", |text: String| {
        text.lines().map(str::to_string).collect::<Vec<_>>()
    });
    env.add_filter("diff_line", move |line: String| {
        let style = match line.as_bytes() {
            [b'+', b'+', b'+', ..] | [b'-', b'-', b'-', ..] | [b'@', ..] => "dim",
            [b'+', ..] => "green",
            [b'-', ..] => "red",
            _ => "",
        };
        paint(&line, style, color)
    });
    let (name, builtin) = match format {
        Format::Markdown => ("report.md.j2", MARKDOWN_TEMPLATE),
        _ => ("report.txt.j2", TEXT_TEMPLATE),
    };
    let source = match overrides.map(|dir| dir.join(name)) {
        Some(path) if path.exists() => std::fs::read_to_string(&path).map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("reading {}: {e}", path.display()),
            )
        })?,
        _ => builtin.to_string(),
    };
    env.add_template_owned(name, source)?;
    let template = env.get_template(name)?;
    let full = template.render(context! { report => Value::from_serialize(report) })?;
    if format != Format::Markdown || full.chars().count() < COMMENT_LIMIT {
        return Ok(full);
    }
    // Too long for a pull-request comment: as many groups as fit (found by
    // bisection), the ones needing attention and the biggest first, in
    // their usual order, with a note saying it was cut.
    let mut value = serde_json::to_value(report).expect("report serialises");
    let groups = value["groups"].as_array().cloned().unwrap_or_default();
    let mut priority: Vec<usize> = (0..report.groups.len()).collect();
    priority.sort_by_key(|&i| {
        let g = &report.groups[i];
        let attention = g.hazards.contains(&crate::diff::HazardKind::Destructive)
            || !g.status.is_ok()
            || g.status == super::Status::Drifted;
        (!attention, std::cmp::Reverse(g.members.len()), i)
    });
    let render_first = |value: &mut serde_json::Value, shown: usize| {
        let mut kept = priority[..shown].to_vec();
        kept.sort_unstable();
        value["groups"] = kept.iter().map(|&i| groups[i].clone()).collect();
        let cut = context! { shown, total => groups.len(), limit => COMMENT_LIMIT };
        template.render(context! { report => Value::from_serialize(&*value), cut })
    };
    let (mut fits, mut too_many) = (0, groups.len());
    let mut best = render_first(&mut value, 0)?;
    while too_many - fits > 1 {
        let mid = (fits + too_many) / 2;
        let text = render_first(&mut value, mid)?;
        if text.chars().count() < COMMENT_LIMIT {
            fits = mid;
            best = text;
        } else {
            too_many = mid;
        }
    }
    Ok(best)
}

/// GitHub's limit on the length of a pull-request comment, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

fn paint(text: &str, style: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match style {
        "red" => text.red().to_string(),
        "green" => text.green().to_string(),
        "yellow" => text.yellow().to_string(),
        "cyan" => text.cyan().to_string(),
        "bold" => text.bold().to_string(),
        "dim" => text.dimmed().to_string(),
        _ => text.to_string(),
    }
}

/// `acme, globex, … and 410 more`: member names for a heading, capped.
fn names(members: Vec<Value>, limit: Option<usize>) -> String {
    let limit = limit.unwrap_or(8);
    let shown: Vec<String> = members
        .iter()
        .take(limit)
        .map(|m| {
            m.get_attr("tenant")
                .map(|t| t.to_string())
                .unwrap_or_default()
        })
        .collect();
    match members.len().saturating_sub(limit) {
        0 => shown.join(", "),
        more => format!("{}, … and {more} more", shown.join(", ")),
    }
}

/// `text` as inline CommonMark text that renders as itself: every ASCII
/// punctuation character that can start Markdown (emphasis, code, links,
/// HTML, list markers, headings, table pipes…) is backslash-escaped, and
/// line breaks become spaces. The pipe is among them, so it is safe in a table cell.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '&' | ')' | '^' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as a CommonMark code span showing it verbatim: delimited by one
/// backtick more than its longest run, padded with a space when it starts or
/// ends with a backtick. In a GitHub table cell a pipe ends the cell even
/// inside a code span, so it is escaped there (GitHub drops the backslash).
fn code_span(text: &str, in_table: bool) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let text = if in_table {
        text.replace('|', "\\|")
    } else {
        text
    };
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` as a block quote: each line escaped as [`markdown_text`], behind `> `.
fn block_quote(text: &str) -> String {
    text.lines()
        .map(|line| format!("> {}", markdown_text(line)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` as a fenced code block tagged `lang`, fenced with more backticks
/// than any run inside, so no line of it can close the block early.
fn fenced_block(text: &str, lang: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(text) + 1).max(3));
    let body = text.trim_end_matches('\n');
    format!("{fence}{lang}\n{body}\n{fence}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plan::{Mode, Status, Step, TargetReport};

    #[test]
    fn code_spans_and_fences_outgrow_the_backticks_inside() {
        assert_eq!(code_span("a", false), "`a`");
        assert_eq!(code_span("x `y` z", false), "``x `y` z``");
        assert_eq!(code_span("`a`", false), "`` `a` ``");
        assert_eq!(code_span("a|b", true), "`a\\|b`");
        assert_eq!(
            fenced_block("x\n```\ny\n", "sql"),
            "````sql\nx\n```\ny\n````"
        );
        assert_eq!(markdown_text("- a *b*"), "\\- a \\*b\\*");
    }

    fn target(tenant: String, steps: Arc<Vec<Step>>) -> TargetReport {
        TargetReport {
            tenant: tenant.clone(),
            blueprint: "app".into(),
            engine: crate::model::EngineKind::Sqlite,
            sql: true,
            fence: "sql",
            server: "local".into(),
            database: format!("app__{tenant}"),
            status: Status::Changes,
            fingerprint: None,
            steps,
            message: None,
            wave: None,
        }
    }

    fn step(table: &str) -> Step {
        Step {
            description: format!("create table {table}"),
            hazards: Vec::new(),
            statements: vec![format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY)")],
        }
    }

    #[test]
    fn markdown_of_5000_tenants_in_4501_states_is_cut_at_the_comment_limit_with_a_note() {
        // 500 tenants in one state, 4,500 each in a state of its own.
        let shared = Arc::new(vec![step("shared")]);
        let mut targets: Vec<TargetReport> = (0..500)
            .map(|i| target(format!("same{i:04}"), shared.clone()))
            .collect();
        targets.extend((0..4500).map(|i| {
            target(
                format!("own{i:04}"),
                Arc::new(vec![step(&format!("t{i:04}"))]),
            )
        }));
        let report = Report::new(Mode::Plan, "repo".into(), targets);
        assert_eq!(report.groups.len(), 4501);
        let md = render(&report, Format::Markdown, false, None).unwrap();
        let chars = md.chars().count();
        assert!(chars < COMMENT_LIMIT, "{chars} characters");
        // Nearly all the room is used: whole groups are cut, not the comment.
        assert!(chars > COMMENT_LIMIT - 2_000, "{chars} characters");
        assert!(
            md.contains("Cut here to stay under GitHub's 65536-character comment limit: "),
            "{md}"
        );
        assert!(md.contains("of 4501 groups shown"));
        // The summary still counts every tenant database.
        assert!(md.contains("5000 to change"), "{}", &md[..300]);
        // The group of 500 is one row and one section, with the first five names.
        assert_eq!(md.matches("CREATE TABLE shared").count(), 1);
        assert!(
            md.contains("500 (same0000, same0001, same0002, same0003, same0004, … and 495 more)")
        );
        // Code fences and <details> are balanced: the cut falls between groups.
        assert_eq!(
            md.matches("<details").count(),
            md.matches("</details>").count()
        );
        assert_eq!(md.matches("```").count() % 2, 0);
    }

    #[test]
    fn a_short_markdown_report_is_not_cut() {
        let report = Report::new(
            Mode::Plan,
            "repo".into(),
            vec![target("a".into(), Arc::new(vec![step("x")]))],
        );
        let md = render(&report, Format::Markdown, false, None).unwrap();
        assert!(!md.contains("Cut here"), "{md}");
    }
}
