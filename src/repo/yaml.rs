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
            let path = from_node.path().map(str::to_string);
            let inner = from_node.into_inner();
            let mut at = inner.start_mark().map(|m| (m.line(), m.column()));
            let message = match &inner {
                marked_yaml::Error::UnknownFieldError(field, expected, _) => {
                    if at.is_none() {
                        at = find_key(source, field);
                    }
                    format!(
                        "unknown field `{field}`; expected one of: {}",
                        expected.join(", ")
                    )
                }
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

/// Position of the first mapping key named `key` anywhere in the document.
fn find_key(source: &str, key: &str) -> Option<(usize, usize)> {
    fn walk(node: &Node, key: &str) -> Option<(usize, usize)> {
        match node {
            Node::Mapping(map) => map.iter().find_map(|(k, v)| {
                if k.as_str() == key {
                    k.span().start().map(|m| (m.line(), m.column()))
                } else {
                    walk(v, key)
                }
            }),
            Node::Sequence(seq) => seq.iter().find_map(|v| walk(v, key)),
            Node::Scalar(_) => None,
        }
    }
    walk(&marked_yaml::parse_yaml(0, source).ok()?, key)
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

    #[test]
    fn syntax_and_duplicate_keys() {
        let err = from_str::<File>("f.yaml", "items: [\n").unwrap_err();
        assert!(err.message.starts_with("YAML:"), "{err}");
        let err = from_str::<File>("f.yaml", "items: []\nitems: []\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }
}
