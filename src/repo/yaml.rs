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
