//! `tenantctl tenants list`: the declared tenants and where their databases live.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::json;

use crate::plan::Format;
use crate::repo::Repo;

/// Renders every tenant database; server locations have passwords redacted.
pub fn list(repo: &Repo, format: Format) -> String {
    let rows: Vec<serde_json::Value> = repo
        .tenants
        .iter()
        .flat_map(|t| {
            t.databases.iter().map(move |d| {
                let server = &repo.servers[&d.server];
                json!({
                    "tenant": t.name,
                    "labels": t.labels,
                    "blueprint": d.blueprint,
                    "engine": server.engine,
                    "server": d.server,
                    "database": d.database,
                    "location": server.location(),
                })
            })
        })
        .collect();
    match format {
        Format::Json => serde_json::to_string_pretty(&rows).expect("json") + "\n",
        Format::Text | Format::Markdown => {
            let mut table = Table::new();
            table.load_preset(if format == Format::Markdown {
                comfy_table::presets::ASCII_MARKDOWN
            } else {
                UTF8_BORDERS_ONLY
            });
            table.set_header([
                "tenant",
                "blueprint",
                "engine",
                "server",
                "database",
                "location",
                "labels",
            ]);
            for r in &rows {
                let labels = r["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                table.add_row([
                    r["tenant"].as_str().unwrap_or(""),
                    r["blueprint"].as_str().unwrap_or(""),
                    r["engine"].as_str().unwrap_or(""),
                    r["server"].as_str().unwrap_or(""),
                    r["database"].as_str().unwrap_or(""),
                    r["location"].as_str().unwrap_or(""),
                    &labels,
                ]);
            }
            format!("{table}\n")
        }
    }
}
