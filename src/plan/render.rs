//! Rendering reports: JSON through serde, text and Markdown through the
//! minijinja templates in `templates/` (compiled in).

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

/// Renders `report`; `color` adds ANSI colours to text output.
pub fn render(report: &Report, format: Format, color: bool) -> Result<String, minijinja::Error> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(report).expect("report serialises") + "\n");
    }
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("paint", move |text: String, style: String| {
        paint(&text, &style, color)
    });
    env.add_filter("names", names);
    let (name, source) = match format {
        Format::Markdown => ("report.md", MARKDOWN_TEMPLATE),
        _ => ("report.txt", TEXT_TEMPLATE),
    };
    env.add_template(name, source)?;
    env.get_template(name)?
        .render(context! { report => Value::from_serialize(report) })
}

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
