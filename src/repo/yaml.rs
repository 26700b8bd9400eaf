//! YAML loading with positions: every error becomes a `file:line:col` diagnostic.

use marked_yaml::{FromYamlError, LoaderOptions, Node, Spanned};
use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Position};

/// Parses `source` into `T`, rejecting duplicate keys; unknown fields are
/// rejected by `T`'s `deny_unknown_fields`.
pub fn from_str<T: DeserializeOwned>(file: &str, source: &str) -> Result<T, Diagnostic> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    check_shape(file, source)?;
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::from_yaml_with_options(0, source, options)
        .map_err(|e| to_diagnostic(file, source, e))
}

/// The deepest nesting of mappings and sequences a tenantctl file may have.
/// Real files need a handful of levels; the limit keeps a hostile file from
/// overflowing the stack of the (recursive) deserializer.
pub const MAX_DEPTH: usize = 64;

/// Checks, on the parser's event stream (no tree is built, nothing recurses),
/// that `source` is one YAML document nested at most [`MAX_DEPTH`] deep.
/// Syntax errors are left to the loader, which reports them with context.
fn check_shape(file: &str, source: &str) -> Result<(), Diagnostic> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(source);
    let mut depth = 0usize;
    let mut documents = 0usize;
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            return Ok(());
        };
        let at = |message: String| Diagnostic::new(file, mark.line(), mark.col() + 1, message);
        match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(at(
                        "YAML: a second document (after `---`): a tenantctl file holds exactly one"
                            .into(),
                    ));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(at(format!(
                        "YAML: nested more than {MAX_DEPTH} levels deep"
                    )));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// Where a spanned value starts.
pub fn position<T>(value: &Spanned<T>) -> Position {
    value
        .span()
        .start()
        .map(|m| Position {
            line: m.line(),
            column: m.column(),
        })
        .unwrap_or_default()
}

fn to_diagnostic(file: &str, source: &str, error: FromYamlError) -> Diagnostic {
    use marked_yaml::LoadError as L;
    match error {
        FromYamlError::ParseYaml(load) => {
            let marker = match &load {
                L::TopLevelMustBeMapping(m)
                | L::TopLevelMustBeSequence(m)
                | L::UnexpectedAnchor(m)
                | L::MappingKeyMustBeScalar(m)
                | L::UnexpectedTag(m)
                | L::ScanError(m, _) => Some(*m),
                L::DuplicateKey(inner) => inner.key.span().start().copied(),
            };
            let text = load.to_string();
            let message = match marker {
                Some(m) => text
                    .strip_prefix(&format!("{m}: "))
                    .unwrap_or(&text)
                    .to_string(),
                None => text,
            };
            let (line, column) = marker.map_or((1, 1), |m| (m.line(), m.column()));
            Diagnostic::new(file, line, column, format!("YAML: {message}"))
        }
        FromYamlError::FromNode(from_node) => {
            // With marked-yaml's `serde-path`, the error carries the span of
            // the node it is about (for an unknown field: its key), found by
            // following the error's path, so it is reported where the mistake
            // is. The crate stops at keys it renders as `?` (our `Spanned`
            // map keys); `locate` follows those too.
            let path = from_node.path().map(str::to_string);
            let inner = from_node.into_inner();
            let unknown_field = matches!(inner, marked_yaml::Error::UnknownFieldError(..));
            let marked = inner.start_mark().map(|m| (m.line(), m.column()));
            let message = match &inner {
                marked_yaml::Error::UnknownFieldError(field, expected, _) => format!(
                    "unknown field `{field}`; expected one of: {}",
                    expected.join(", ")
                ),
                other => other.to_string(),
            };
            let at = match path.as_deref() {
                Some(p) if p.contains('?') => locate(source, p, unknown_field, &message, marked),
                _ => marked,
            };
            let message = match path {
                Some(p) if !p.is_empty() => format!("{message} (at {p})"),
                _ => message,
            };
            let (line, column) = at.unwrap_or((1, 1));
            Diagnostic::new(file, line, column, message)
        }
    }
}

/// One step of a path as marked-yaml renders it: `environments.?.local`,
/// `tenants[0].databases[1]`.
enum Segment<'a> {
    Key(&'a str),
    /// A key the path could not render: any key matches.
    AnyKey,
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        match pieces.next()? {
            "" => {}
            "?" => segments.push(Segment::AnyKey),
            name => segments.push(Segment::Key(name)),
        }
        for index in pieces {
            segments.push(Segment::Index(index.strip_suffix(']')?.parse().ok()?));
        }
    }
    Some(segments)
}

/// A node a path leads to: where it (or its key) starts, and its text if a scalar.
struct Found {
    at: (usize, usize),
    text: Option<String>,
}

/// Every node `segments` lead to from `node` (their keys when `key`).
fn walk(node: &Node, segments: &[Segment], key: bool, found: &mut Vec<Found>) {
    let start = |n: &Node| n.span().start().map(|m| (m.line(), m.column()));
    let Some((first, rest)) = segments.split_first() else {
        if let Some(at) = start(node) {
            let text = node.as_scalar().map(|s| s.as_str().to_string());
            found.push(Found { at, text });
        }
        return;
    };
    match (first, node) {
        (Segment::Index(i), Node::Sequence(seq)) => {
            if let Some(item) = seq.get(*i) {
                walk(item, rest, key, found);
            }
        }
        (Segment::Key(_) | Segment::AnyKey, Node::Mapping(map)) => {
            for (k, v) in map.iter() {
                if matches!(first, Segment::Key(name) if k.as_str() != *name) {
                    continue;
                }
                match k.span().start() {
                    Some(m) if rest.is_empty() && key => found.push(Found {
                        at: (m.line(), m.column()),
                        text: None,
                    }),
                    _ => walk(v, rest, key, found),
                }
            }
        }
        _ => {}
    }
}

/// Where the error at `path` is, when marked-yaml could not tell: it follows
/// a path only up to the first key it renders as `?` (our `Spanned` map keys,
/// such as server names) and gives the span of the node there, `stopped_at`.
/// From there every key is tried; when several lead to a node, the one whose
/// value the message quotes first (e.g. "unknown variant `postgress`,
/// expected one of `postgres`, …") wins.
/// `key`: the error is about a key (an unknown field), not a value.
fn locate(
    source: &str,
    path: &str,
    key: bool,
    message: &str,
    stopped_at: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let all = segments(path)?;
    let root = marked_yaml::parse_yaml(0, source).ok()?;
    let before = all.iter().position(|s| matches!(s, Segment::AnyKey))?;
    let mut prefix = Vec::new();
    walk(&root, &all[..before], false, &mut prefix);
    if prefix.first().map(|f| f.at) != stopped_at {
        return stopped_at; // marked-yaml's own, precise position
    }
    let mut found = Vec::new();
    walk(&root, &all, key, &mut found);
    // Where in the message a candidate's value is quoted, if it is.
    let quoted = |f: &Found| {
        let t = f.text.as_deref().filter(|t| !t.is_empty())?;
        [format!("`{t}`"), format!("{t:?}")]
            .iter()
            .filter_map(|q| message.find(q.as_str()))
            .min()
    };
    let chosen = match found.len() {
        0 => return stopped_at,
        1 => &found[0],
        _ => found
            .iter()
            .filter_map(|f| quoted(f).map(|i| (i, f)))
            .min_by_key(|(i, _)| *i)
            .map_or(&found[0], |(_, f)| f),
    };
    Some(chosen.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct File {
        items: Vec<Item>,
    }

    #[test]
    fn unknown_field_has_a_position() {
        let err = from_str::<File>("f.yaml", "items:\n  - name: a\n    nmae: b\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 5), "{err}");
        assert!(err.message.contains("nmae"));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Group {
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        items: Vec<Item>,
        #[serde(default)]
        groups: std::collections::HashMap<Spanned<String>, Group>,
    }

    #[test]
    fn a_missing_nesting_level_is_reported_at_its_own_key() {
        // `name` exists higher up; the mistake is the `name` under groups.g.
        let err = from_str::<Nested>(
            "f.yaml",
            "items:\n  - name: a\ngroups:\n  g:\n    name: b\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (5, 5), "{err}");
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Small,
        Large,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Sized {
        kind: Kind,
        count: Option<usize>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Map {
        entries: std::collections::HashMap<Spanned<String>, Sized>,
    }

    #[test]
    fn a_bad_value_under_a_spanned_key_is_reported_at_that_value() {
        let source = "entries:\n  a:\n    kind: small\n  b:\n    kind: larg\n";
        let err = from_str::<Map>("f.yaml", source).unwrap_err();
        assert_eq!((err.line, err.column), (5, 11), "{err}");
        let source =
            "entries:\n  a:\n    kind: small\n    count: 1\n  b:\n    kind: large\n    count: x\n";
        let err = from_str::<Map>("f.yaml", source).unwrap_err();
        assert_eq!((err.line, err.column), (7, 12), "{err}");
    }

    #[test]
    fn syntax_and_duplicate_keys() {
        let err = from_str::<File>("f.yaml", "items: [\n").unwrap_err();
        assert!(err.message.starts_with("YAML:"), "{err}");
        let err = from_str::<File>("f.yaml", "items: []\nitems: []\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn deep_nesting_is_a_located_error() {
        let mappings: String = (0..3000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let err = from_str::<File>("f.yaml", &mappings).unwrap_err();
        assert_eq!(err.line, MAX_DEPTH + 1, "{err}");
        assert!(err.message.contains("nested"), "{err}");
        let sequences = format!("items: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
        let err = from_str::<File>("f.yaml", &sequences).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        // The scanner itself stops deep flow collections.
        assert!(
            err.message.contains("nested") || err.message.contains("recursion limit"),
            "{err}"
        );
        let unclosed = "[".repeat(100_000);
        assert!(from_str::<File>("f.yaml", &unclosed).is_err());
    }

    #[test]
    fn a_second_document_is_a_located_error() {
        let err = from_str::<File>("f.yaml", "items: []\n---\nitems: [x]\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1), "{err}");
        assert!(err.message.contains("second document"), "{err}");
        assert!(from_str::<File>("f.yaml", "---\nitems: []\n").is_ok());
        assert!(from_str::<File>("f.yaml", "items: []\n...\n").is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        assert!(from_str::<File>("f.yaml", "\u{feff}items: []\n").is_ok());
        let err =
            from_str::<File>("f.yaml", "\u{feff}items:\n  - name: a\n    nmae: b\n").unwrap_err();
        assert!(!err.to_string().contains('\u{feff}'), "{err}");
        assert_eq!((err.line, err.column), (3, 5), "{err}");
    }
}
