//! The Markdown reports are CommonMark that renders as intended: each is
//! parsed with pulldown-cmark (with GitHub's tables) and the structure of the
//! event stream — headings, list items, table cells, code blocks, code spans —
//! is checked, for plan, PR mode (`--base`), apply and drift, with names and
//! statements holding backticks and pipes.

mod support;

use support::git;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use support::sqlite::{Repo, sqlite_exec};

/// What a Markdown document renders to, flattened: inline text keeps code
/// spans as `⟦code⟧` so a test sees exactly where they start and end.
#[derive(Debug, Default)]
struct Doc {
    /// (level, text)
    headings: Vec<(usize, String)>,
    /// (nesting depth, the item's own text without its sub-lists)
    items: Vec<(usize, String)>,
    cells: Vec<String>,
    /// (info string, contents)
    code_blocks: Vec<(String, String)>,
    code_spans: Vec<String>,
    paragraphs: Vec<String>,
    quotes: Vec<String>,
}

fn parse(markdown: &str) -> Doc {
    let mut doc = Doc::default();
    // Open inline containers, innermost last: (kind, text).
    let mut open: Vec<(&'static str, String)> = Vec::new();
    let mut depth = 0;
    let mut code: Option<(String, String)> = None;
    let mut quote_depth = 0;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => open.push(("heading", String::new())),
            Event::End(TagEnd::Heading(level)) => {
                let (_, text) = open.pop().unwrap();
                doc.headings.push((level as usize, text));
            }
            Event::Start(Tag::Item) => {
                depth += 1;
                open.push(("item", String::new()));
            }
            Event::End(TagEnd::Item) => {
                let (_, text) = open.pop().unwrap();
                doc.items.push((depth, text.trim().to_string()));
                depth -= 1;
            }
            Event::Start(Tag::TableCell) => open.push(("cell", String::new())),
            Event::End(TagEnd::TableCell) => doc.cells.push(open.pop().unwrap().1),
            Event::Start(Tag::Paragraph) => open.push(("paragraph", String::new())),
            Event::End(TagEnd::Paragraph) => {
                let (_, text) = open.pop().unwrap();
                if quote_depth > 0 {
                    doc.quotes.push(text.clone());
                }
                // A paragraph inside an item is the item's text.
                match open.last_mut() {
                    Some(("item", item)) => item.push_str(&text),
                    _ => doc.paragraphs.push(text),
                }
            }
            Event::Start(Tag::BlockQuote(_)) => quote_depth += 1,
            Event::End(TagEnd::BlockQuote(_)) => quote_depth -= 1,
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => "(indented)".to_string(),
                };
                code = Some((info, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => doc.code_blocks.push(code.take().unwrap()),
            Event::Text(t) => match (&mut code, open.last_mut()) {
                (Some((_, body)), _) => body.push_str(&t),
                (None, Some((_, text))) => text.push_str(&t),
                (None, None) => {}
            },
            Event::Code(c) => {
                doc.code_spans.push(c.to_string());
                if let Some((_, text)) = open.last_mut() {
                    text.push_str(&format!("⟦{c}⟧"));
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, text)) = open.last_mut() {
                    text.push(' ');
                }
            }
            _ => {}
        }
    }
    assert!(open.is_empty() && code.is_none(), "unbalanced: {open:?}");
    doc
}

/// A SQLite fleet whose names and statements hold backticks and pipes.
const WEIRD_V1: &str = "CREATE TABLE \"we`ird|t\" (id INTEGER PRIMARY KEY);";
const WEIRD_V2: &str = "CREATE TABLE \"we`ird|t\" (id INTEGER PRIMARY KEY, \"a``b|c\" TEXT);\n\
     CREATE TABLE \"```\" (id INTEGER PRIMARY KEY);";

fn weird_fleet() -> Repo {
    Repo::sqlite(&[("shop", WEIRD_V1)], &["a", "b"])
}

fn markdown(repo: &Repo, args: &[&str], code: i32) -> Doc {
    let mut all = args.to_vec();
    all.extend(["--format", "markdown"]);
    let run = repo.run(&all).expect(code);
    let doc = parse(&run.stdout);
    eprintln!(
        "--- markdown of {args:?}\n{}\n--- parsed\n{doc:#?}",
        run.stdout
    );
    doc
}

#[test]
fn plan_and_apply_render_names_and_statements_verbatim() {
    let repo = weird_fleet();
    let plan = markdown(&repo, &["reconcile", "--plan"], 0);
    assert_eq!(plan.headings[0].0, 3);
    assert!(
        plan.headings[0]
            .1
            .starts_with("tenantctl plan: 0 to change, 2 to create"),
        "{plan:?}"
    );
    // The table: one row of four cells after the header.
    assert_eq!(
        plan.cells[4..8],
        ["⟦shop⟧", "to create", "2 (a, b)", ""],
        "{plan:?}"
    );
    // The step's description is one list item, its statement one code block.
    assert!(
        plan.items
            .contains(&(1, "create table we`ird|t".to_string())),
        "{plan:?}"
    );
    assert_eq!(
        plan.code_blocks,
        [("sql".to_string(), format!("{WEIRD_V1}\n"))],
        "{plan:?}"
    );

    let apply = markdown(&repo, &["reconcile", "--apply"], 0);
    assert!(
        apply.headings[0]
            .1
            .starts_with("tenantctl apply: 2 applied, 0 in sync"),
        "{apply:?}"
    );
    assert_eq!(apply.cells[4..6], ["⟦shop⟧", "applied"], "{apply:?}");

    // A change whose statements hold backtick runs (``, ```) and pipes.
    repo.write("blueprints/shop/schema.sql", WEIRD_V2);
    let plan = markdown(&repo, &["reconcile", "--plan"], 0);
    assert_eq!(plan.code_blocks.len(), 1, "{plan:?}");
    let (info, body) = &plan.code_blocks[0];
    assert_eq!(info, "sql");
    assert!(body.contains("CREATE TABLE \"```\""), "{body}");
    assert!(body.contains("\"a``b|c\""), "{body}");
    let descriptions: Vec<&str> = plan
        .items
        .iter()
        .filter(|(d, _)| *d == 1)
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(descriptions.contains(&"create table ```"), "{plan:?}");
    assert!(
        descriptions
            .iter()
            .any(|d| d.starts_with("alter table we`ird|t: add column a``b|c")),
        "{plan:?}"
    );
}

#[test]
fn drift_renders_what_changed_by_hand() {
    let repo = weird_fleet();
    repo.run(&["reconcile", "--apply"]).expect(0);
    sqlite_exec(
        &repo.sqlite_file("shop__b"),
        "ALTER TABLE \"we`ird|t\" ADD COLUMN \"x|`y\" TEXT;",
    );
    let drift = markdown(&repo, &["drift"], 2);
    assert!(
        drift.headings[0]
            .1
            .starts_with("tenantctl drift: 1 in sync, 1 drifted"),
        "{drift:?}"
    );
    let rows: Vec<&[String]> = drift.cells.chunks(4).skip(1).collect();
    assert!(
        rows.iter()
            .any(|r| r[0] == "⟦shop⟧" && r[1] == "drifted" && r[2] == "1 (b)"),
        "{drift:?}"
    );
    assert_eq!(drift.code_blocks.len(), 1, "{drift:?}");
    assert!(drift.code_blocks[0].1.contains("\"x|`y\""), "{drift:?}");
}

#[test]
fn pr_mode_lists_removed_tenants_and_changed_blueprints_as_separate_blocks() {
    let repo = Repo::sqlite(
        &[
            ("orders", "CREATE TABLE items (id INTEGER PRIMARY KEY);"),
            ("users", "CREATE TABLE users (id INTEGER PRIMARY KEY);"),
        ],
        &["a", "b"],
    );
    repo.write(".gitignore", "data/\n");
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);
    git(repo.path(), &["branch", "base"]);
    // Tenant b is removed; blueprint orders gains a column named with a backtick and a pipe.
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: a\n    databases:\n      - blueprint: orders\n      - blueprint: users\n",
    );
    repo.write(
        "blueprints/orders/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, \"n`o|te\" TEXT);",
    );
    git(repo.path(), &["commit", "-q", "-am", "change"]);
    let doc = markdown(&repo, &["reconcile", "--plan", "--base", "base"], 0);

    // The removed tenant: one item, its databases a nested list whose text
    // (backticks included) is shown as written.
    assert!(
        doc.items.contains(&(1, "tenant ⟦b⟧ removed".to_string())),
        "{doc:?}"
    );
    let nested: Vec<&str> = doc
        .items
        .iter()
        .filter(|(d, _)| *d == 2)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(nested.len(), 2, "{doc:?}");
    assert!(
        nested.iter().all(|t| t.starts_with("- ")
            && t.contains("its database becomes an orphan (reported by `tenantctl drift`")),
        "{doc:?}"
    );
    // The changed blueprint is a heading of its own, not a continuation of
    // the list above, followed by its diff.
    assert!(
        doc.headings
            .contains(&(4, "blueprint ⟦orders⟧ changed".to_string())),
        "{doc:?}"
    );
    assert!(
        doc.items.iter().all(|(_, t)| !t.contains("blueprint")),
        "{doc:?}"
    );
    let diff = doc
        .code_blocks
        .iter()
        .find(|(info, _)| info == "diff")
        .expect("a diff block");
    assert!(diff.1.contains("\"n`o|te\""), "{diff:?}");
    // Then the plan of the affected database.
    let sql = doc
        .code_blocks
        .iter()
        .find(|(info, _)| info == "sql")
        .expect("a sql block");
    assert!(sql.1.contains("\"n`o|te\""), "{sql:?}");
    // Blocks are separated by blank lines, so no renderer can read one as
    // the continuation of the one before.
    let md = repo
        .run(&[
            "reconcile",
            "--plan",
            "--base",
            "base",
            "--format",
            "markdown",
        ])
        .stdout;
    for (i, line) in md.lines().enumerate().skip(1) {
        let before = md.lines().nth(i - 1).unwrap();
        if line.starts_with("```")
            && !before.starts_with("```")
            && before.starts_with(char::is_numeric)
        {
            panic!("a code block right after a list item:\n{md}");
        }
    }
    // The detail text is text, not a broken code span.
    assert!(
        doc.code_spans.iter().all(|c| !c.contains("orphan")),
        "{:?}",
        doc.code_spans
    );
}
