//! Turns the difference between two document schemas into steps whose
//! statements are database commands in mongosh syntax,
//! `db.runCommand({...})`, which the engine parses back and runs.
//!
//! What can change in place does (`collMod` for validation, TTL and
//! `hidden`); an index whose other options change is dropped and built
//! again; options fixed at creation (capped, size, max, timeseries,
//! clusteredIndex, collation) are refused with the manual step to take.

use serde_json::{Value, json};

use crate::diff::Step;
use crate::diff::{Hazard, HazardKind};
use crate::engine::EngineError;
use crate::model::document::{Collection, DocumentIndex, DocumentSchema, Object};

const PREFIX: &str = "db.runCommand(";

/// The steps turning `live` into `declared`: collections created (with
/// their indexes), then existing ones changed, then undeclared ones dropped.
pub fn plan(live: &DocumentSchema, declared: &DocumentSchema) -> Result<Vec<Step>, EngineError> {
    let live = live.clone().normalized();
    let declared = declared.clone().normalized();
    let mut create = Vec::new();
    let mut alter = Vec::new();
    let mut drop = Vec::new();
    let mut manual = Vec::new();
    for (name, want) in &declared.collections {
        match live.collections.get(name) {
            None => create.extend(create_collection(name, want)),
            Some(have) => {
                manual.extend(immutable_changes(name, have, want));
                alter.extend(alter_collection(name, have, want));
            }
        }
    }
    for name in live.collections.keys() {
        if !declared.collections.contains_key(name) {
            drop.push(Step {
                description: format!("drop collection {name} (not in the blueprint)"),
                hazards: vec![Hazard::new(
                    HazardKind::Destructive,
                    "drop-collection",
                    format!("drops collection {name} and every document in it"),
                )],
                statements: vec![command(json!({ "drop": name }))],
            });
        }
    }
    if !manual.is_empty() {
        return Err(EngineError::Other(format!(
            "needs a manual step: {}",
            manual.join("; ")
        )));
    }
    Ok(create.into_iter().chain(alter).chain(drop).collect())
}

/// `db.runCommand(<command>)`.
pub fn command(body: Value) -> String {
    format!("{PREFIX}{body})")
}

/// The command document of a `db.runCommand(...)` statement.
pub fn parse_command(statement: &str) -> Result<Object, String> {
    let body = statement
        .trim()
        .strip_prefix(PREFIX)
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("not a db.runCommand(...) statement: {statement}"))?;
    match serde_json::from_str(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("not a command document: {body}")),
        Err(e) => Err(format!("unreadable command {body}: {e}")),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("model serialises")
}

fn create_collection(name: &str, c: &Collection) -> Vec<Step> {
    let mut body = Object::new();
    body.insert("create".into(), name.into());
    let mut options = to_value(c);
    if let Value::Object(map) = &mut options {
        map.remove("indexes");
        body.extend(std::mem::take(map));
    }
    let mut steps = vec![Step {
        description: format!("create collection {name}"),
        hazards: Vec::new(),
        statements: vec![command(Value::Object(body))],
    }];
    for index in &c.indexes {
        steps.push(create_index(name, index, true));
    }
    steps
}

fn index_spec(index: &DocumentIndex) -> Value {
    let mut spec = to_value(index);
    if index.is_text()
        && let Value::Object(map) = &mut spec
    {
        // The normalised key spells text fields as the server stores them;
        // createIndexes wants them back as `"field": "text"`.
        let mut key = Object::new();
        for (field, kind) in &index.key {
            match field.as_str() {
                "_fts" => {
                    for text_field in index.weights.iter().flat_map(|w| w.keys()) {
                        key.insert(text_field.clone(), "text".into());
                    }
                }
                "_ftsx" => {}
                _ => {
                    key.insert(field.clone(), kind.clone());
                }
            }
        }
        map.insert("key".into(), Value::Object(key));
    }
    spec
}

fn create_index(collection: &str, index: &DocumentIndex, new_collection: bool) -> Step {
    let mut hazards = Vec::new();
    if !new_collection {
        hazards.push(Hazard::new(
            HazardKind::IndexBuild,
            "create-index",
            format!(
                "builds index {} on existing documents of {collection}",
                index.name
            ),
        ));
        if let Some(seconds) = index.expire_after_seconds {
            hazards.push(ttl_deletes(collection, &index.name, seconds));
        }
        if index.unique == Some(true) {
            hazards.push(Hazard::new(
                HazardKind::DataDependent,
                "unique-index",
                format!(
                    "fails if documents of {collection} already share a value of {}",
                    Value::Object(index.key.clone())
                ),
            ));
        }
    }
    Step {
        description: format!("create index {} on {collection}", index.name),
        hazards,
        statements: vec![command(json!({
            "createIndexes": collection,
            "indexes": [index_spec(index)],
        }))],
    }
}

/// A TTL index on existing documents (or a shorter TTL) makes the server
/// delete every document older than the limit on its next pass.
fn ttl_deletes(collection: &str, index: &str, seconds: u64) -> Hazard {
    Hazard::new(
        HazardKind::Destructive,
        "ttl-deletes",
        format!(
            "index {index} makes MongoDB delete the documents of {collection} older than {seconds} s"
        ),
    )
}

fn immutable_changes(name: &str, have: &Collection, want: &Collection) -> Vec<String> {
    let fields: [(&str, Value, Value); 6] = [
        ("capped", to_value(&have.capped), to_value(&want.capped)),
        ("size", to_value(&have.size), to_value(&want.size)),
        ("max", to_value(&have.max), to_value(&want.max)),
        (
            "timeseries",
            to_value(&have.timeseries),
            to_value(&want.timeseries),
        ),
        (
            "clusteredIndex",
            to_value(&have.clustered_index),
            to_value(&want.clustered_index),
        ),
        (
            "collation",
            to_value(&have.collation),
            to_value(&want.collation),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, h, w)| h != w)
        .map(|(field, h, w)| {
            format!(
                "collection {name}: `{field}` cannot change after creation (live: {h}, declared: {w}); \
                 copy the documents into a new collection created with the declared options, \
                 or put the live value back in the blueprint"
            )
        })
        .collect()
}

fn alter_collection(name: &str, have: &Collection, want: &Collection) -> Vec<Step> {
    let mut steps = Vec::new();
    if have.validator != want.validator
        || have.validation_level != want.validation_level
        || have.validation_action != want.validation_action
    {
        let mut body = json!({
            "collMod": name,
            "validator": want.validator.clone().unwrap_or_default(),
            "validationLevel": want.validation_level.map_or(json!("strict"), |l| to_value(&l)),
            "validationAction": want.validation_action.map_or(json!("error"), |a| to_value(&a)),
        });
        if want.validator.is_none() && have.validator.is_none() {
            body.as_object_mut().map(|m| m.remove("validator"));
        }
        steps.push(Step {
            description: format!("change the validation of {name}"),
            hazards: Vec::new(),
            statements: vec![command(body)],
        });
    }
    let mut drops = Vec::new();
    let mut creates = Vec::new();
    for old in &have.indexes {
        match want.indexes.iter().find(|i| i.name == old.name) {
            None => drops.push(drop_index(name, old, "not in the blueprint")),
            Some(new) if new == old => {}
            Some(new) => match modify_index(name, old, new) {
                Some(step) => steps.push(step),
                None => {
                    drops.push(drop_index(name, old, "recreated with new options"));
                    let mut step = create_index(name, new, false);
                    step.description = format!("recreate index {} on {name}", new.name);
                    step.add_hazard(Hazard::new(
                        HazardKind::IndexBuild,
                        "recreate-index",
                        format!(
                            "index {} cannot change in place: it is dropped and built again; \
                             queries using it are slower meanwhile",
                            new.name
                        ),
                    ));
                    creates.push(step);
                }
            },
        }
    }
    for new in &want.indexes {
        if !have.indexes.iter().any(|i| i.name == new.name) {
            creates.push(create_index(name, new, false));
        }
    }
    steps.extend(drops);
    steps.extend(creates);
    steps
}

fn drop_index(collection: &str, index: &DocumentIndex, why: &str) -> Step {
    Step {
        description: format!("drop index {} on {collection} ({why})", index.name),
        hazards: Vec::new(),
        statements: vec![command(json!({
            "dropIndexes": collection,
            "index": index.name,
        }))],
    }
}

/// A `collMod` for an index whose only changes are its TTL (when it stays a
/// TTL index) and whether it is hidden; `None` when it must be rebuilt.
fn modify_index(collection: &str, old: &DocumentIndex, new: &DocumentIndex) -> Option<Step> {
    let ttl_in_place = old.expire_after_seconds.is_some() && new.expire_after_seconds.is_some();
    let mut same_otherwise = old.clone();
    same_otherwise.hidden = new.hidden;
    if ttl_in_place {
        same_otherwise.expire_after_seconds = new.expire_after_seconds;
    }
    if &same_otherwise != new {
        return None;
    }
    let mut index = Object::new();
    index.insert("name".into(), new.name.clone().into());
    let mut what = Vec::new();
    if old.expire_after_seconds != new.expire_after_seconds {
        index.insert(
            "expireAfterSeconds".into(),
            to_value(&new.expire_after_seconds),
        );
        what.push(format!(
            "expireAfterSeconds {}",
            to_value(&new.expire_after_seconds)
        ));
    }
    if old.hidden != new.hidden {
        let hidden = new.hidden.unwrap_or(false);
        index.insert("hidden".into(), hidden.into());
        what.push(if hidden { "hide" } else { "unhide" }.to_string());
    }
    let hazards = match (old.expire_after_seconds, new.expire_after_seconds) {
        (Some(before), Some(after)) if after < before => {
            vec![ttl_deletes(collection, &new.name, after)]
        }
        _ => Vec::new(),
    };
    Some(Step {
        description: format!(
            "change index {} on {collection}: {}",
            new.name,
            what.join(", ")
        ),
        hazards,
        statements: vec![command(json!({ "collMod": collection, "index": index }))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::document::parse;

    fn schema(json: &str) -> DocumentSchema {
        parse(json).unwrap()
    }

    #[test]
    fn ttl_and_hidden_change_in_place_other_options_rebuild() {
        let live = schema(
            r#"{"collections": {"s": {"indexes": [
                {"name": "ttl", "key": {"at": 1}, "expireAfterSeconds": 60},
                {"name": "u", "key": {"e": 1}}]}}}"#,
        );
        let declared = schema(
            r#"{"collections": {"s": {"indexes": [
                {"name": "ttl", "key": {"at": 1}, "expireAfterSeconds": 120, "hidden": true},
                {"name": "u", "key": {"e": 1}, "unique": true}]}}}"#,
        );
        let steps = plan(&live, &declared).unwrap();
        let text: Vec<&str> = steps.iter().map(|s| s.statements[0].as_str()).collect();
        assert!(text[0].contains("\"collMod\":\"s\""), "{text:?}");
        assert!(text[0].contains("\"expireAfterSeconds\":120"), "{text:?}");
        assert!(text[1].contains("dropIndexes"), "{text:?}");
        assert!(text[2].contains("createIndexes"), "{text:?}");
        assert!(steps[2].has(HazardKind::DataDependent));
        for s in &steps {
            parse_command(&s.statements[0]).unwrap();
        }
        assert!(plan(&declared, &declared).unwrap().is_empty());
    }

    #[test]
    fn immutable_options_need_a_manual_step() {
        let live = schema(r#"{"collections": {"log": {"capped": true, "size": 4096}}}"#);
        let declared = schema(r#"{"collections": {"log": {}}}"#);
        let e = plan(&live, &declared).unwrap_err().to_string();
        assert!(e.contains("`capped` cannot change after creation"), "{e}");
    }

    #[test]
    fn undeclared_collections_are_dropped_destructively() {
        let live = schema(r#"{"collections": {"old": {}}}"#);
        let steps = plan(&live, &DocumentSchema::default()).unwrap();
        assert!(steps[0].has(HazardKind::Destructive));
    }

    #[test]
    fn ttl_that_deletes_existing_documents_is_destructive() {
        let ttl = |seconds: u64| {
            schema(&format!(
                r#"{{"collections": {{"s": {{"indexes": [{{"name": "ttl", "key": {{"at": 1}}, "expireAfterSeconds": {seconds}}}]}}}}}}"#
            ))
        };
        let plain = schema(r#"{"collections": {"s": {}}}"#);
        assert!(
            plan(&plain, &ttl(60))
                .unwrap()
                .iter()
                .any(|s| s.has(HazardKind::Destructive)),
            "new TTL index"
        );
        assert!(
            plan(&ttl(120), &ttl(60)).unwrap()[0].has(HazardKind::Destructive),
            "shorter TTL"
        );
        assert!(
            !plan(&ttl(60), &ttl(120)).unwrap()[0].has(HazardKind::Destructive),
            "longer TTL deletes nothing"
        );
        let fresh = plan(&DocumentSchema::default(), &ttl(60)).unwrap();
        assert!(
            !fresh.iter().any(|s| s.has(HazardKind::Destructive)),
            "a new collection holds no documents"
        );
    }
}
