//! YAML loading with positions: every error becomes a `file:line:col` diagnostic.

use marked_yaml::{FromYamlError, LoaderOptions, Node, Spanned};
use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Position};

/// Parses `source` into `T`, rejecting duplicate keys; unknown fields are
/// rejected by `T`'s `deny_unknown_fields`.
pub fn from_str<T: DeserializeOwned>(file: &str, source: &str) -> Result<T, Diagnostic> {
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::from_yaml_with_options(0, source, options)
        .map_err(|e| to_diagnostic(file, source, e))
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
            let at = path
                .as_deref()
                .filter(|p| p.contains('?'))
                .and_then(|p| locate(source, p, unknown_field))
                .or_else(|| inner.start_mark().map(|m| (m.line(), m.column())));
            let message = match &inner {
                marked_yaml::Error::UnknownFieldError(field, expected, _) => format!(
                    "unknown field `{field}`; expected one of: {}",
                    expected.join(", ")
                ),
                other => other.to_string(),
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

/// The line and column of the node at `path` in `source` (of its key when
/// `key`), the first in document order where `?` leaves a choice.
fn locate(source: &str, path: &str, key: bool) -> Option<(usize, usize)> {
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
    fn start(node: &Node) -> Option<(usize, usize)> {
        node.span().start().map(|m| (m.line(), m.column()))
    }
    fn walk(node: &Node, segments: &[Segment], key: bool) -> Option<(usize, usize)> {
        let Some((first, rest)) = segments.split_first() else {
            return start(node);
        };
        match (first, node) {
            (Segment::Index(i), Node::Sequence(seq)) => walk(seq.get(*i)?, rest, key),
            (Segment::Key(_) | Segment::AnyKey, Node::Mapping(map)) => {
                map.iter().find_map(|(k, v)| match first {
                    Segment::Key(name) if k.as_str() != *name => None,
                    _ if rest.is_empty() && key => k.span().start().map(|m| (m.line(), m.column())),
                    _ => walk(v, rest, key),
                })
            }
            _ => None,
        }
    }
    walk(&marked_yaml::parse_yaml(0, source).ok()?, &segments, key)
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

    #[test]
    fn syntax_and_duplicate_keys() {
        let err = from_str::<File>("f.yaml", "items: [\n").unwrap_err();
        assert!(err.message.starts_with("YAML:"), "{err}");
        let err = from_str::<File>("f.yaml", "items: []\nitems: []\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }
}
