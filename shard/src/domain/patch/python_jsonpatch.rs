//! One RFC 6902 operation applied as Python's `jsonpatch` (the library Kinto
//! uses) applies it, with its error messages. Used for the operations that
//! touch `/permissions`, where Kinto's answers (and wording) are part of what
//! clients see; `data` operations keep the `json-patch` crate.

use kinto_proto::python::{py_repr, py_str};
use serde_json::{Map, Value};

/// Python's `type()` of a JSON value, as `<class 'dict'>` prints.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

/// The unescaped tokens of a pointer (`~1` → `/`, `~0` → `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("Location must start with /".into());
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// A list index as `jsonpointer` parses it (`-` is the end of the list).
fn index(part: &str) -> Result<Option<usize>, String> {
    if part == "-" {
        return Ok(None);
    }
    let digits = part == "0"
        || (!part.starts_with('0') && !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    match part.parse::<usize>() {
        Ok(i) if digits => Ok(Some(i)),
        _ => Err(format!("'{part}' is not a valid sequence index")),
    }
}

/// One step down, as `JsonPointer.walk` does.
fn walk<'a>(doc: &'a mut Value, part: &str) -> Result<&'a mut Value, String> {
    match doc {
        Value::Object(m) => {
            if !m.contains_key(part) {
                return Err(format!(
                    "member '{part}' not found in {}",
                    py_repr(&Value::Object(m.clone()))
                ));
            }
            m.get_mut(part).ok_or_else(|| format!("member '{part}' not found"))
        }
        Value::Array(a) => {
            let len = a.len();
            match index(part)? {
                Some(i) if i < len => Ok(&mut a[i]),
                Some(_) => Err(format!("index '{part}' is out of bounds")),
                None => Err(format!("index '{part}' is out of bounds")),
            }
        }
        other => Err(format!(
            "Document '{}' does not support indexing, must be mapping/sequence or support __getitem__",
            py_str(other)
        )),
    }
}

/// The container of a pointer's last token, and that token (`None`: root).
fn to_last<'a>(
    doc: &'a mut Value,
    parts: &[String],
) -> Result<(&'a mut Value, Option<String>), String> {
    let Some((last, init)) = parts.split_last() else {
        return Ok((doc, None));
    };
    let mut cur = doc;
    for part in init {
        cur = walk(cur, part)?;
    }
    Ok((cur, Some(last.clone())))
}

fn get(doc: &mut Value, parts: &[String]) -> Result<Value, String> {
    let mut cur = doc;
    for part in parts {
        cur = walk(cur, part)?;
    }
    Ok(cur.clone())
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let parts = tokens(path)?;
    let (sub, part) = to_last(doc, &parts)?;
    let Some(part) = part else {
        *sub = value;
        return Ok(());
    };
    match sub {
        Value::Object(m) => {
            m.insert(part, value);
        }
        Value::Array(a) => match index(&part)? {
            None => a.push(value),
            Some(i) if i <= a.len() => a.insert(i, value),
            Some(_) => return Err("can't insert outside of list".into()),
        },
        _ => {
            return Err(format!(
                "unable to fully resolve json pointer {path}, part {part}"
            ))
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let parts = tokens(path)?;
    let (sub, part) = to_last(doc, &parts)?;
    let Some(part) = part else {
        return Err("can't remove the whole document".into());
    };
    let missing = || format!("can't remove a non-existent object '{part}'");
    match sub {
        Value::Object(m) => m.remove(&part).ok_or_else(missing),
        Value::Array(a) => match index(&part) {
            Ok(Some(i)) if i < a.len() => Ok(a.remove(i)),
            Ok(Some(_)) => Err(missing()),
            _ => Err(format!("invalid array index '{part}'")),
        },
        other => Err(format!(
            "'{}' object doesn't support item deletion",
            &py_type(other)[8..py_type(other).len() - 2]
        )),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let parts = tokens(path)?;
    let (sub, part) = to_last(doc, &parts)?;
    let Some(part) = part else {
        *sub = value;
        return Ok(());
    };
    match sub {
        Value::Object(m) => match m.get_mut(&part) {
            Some(slot) => *slot = value,
            None => return Err(format!("can't replace a non-existent object '{part}'")),
        },
        Value::Array(a) => match index(&part)? {
            Some(i) if i < a.len() => a[i] = value,
            Some(_) => return Err("can't replace outside of list".into()),
            None => return Err("'path' with '-' can't be applied to 'replace' operation".into()),
        },
        _ => {
            return Err(format!(
                "unable to fully resolve json pointer {path}, part {part}"
            ))
        }
    }
    Ok(())
}

/// The value at `from`, as `move` and `copy` read it (Python's `KeyError`
/// text when the last member is missing).
fn source(doc: &mut Value, from: &str) -> Result<Value, String> {
    let parts = tokens(from)?;
    let (sub, part) = to_last(doc, &parts)?;
    let Some(part) = part else {
        return Ok(sub.clone());
    };
    match sub {
        Value::Object(m) => m.get(&part).cloned().ok_or_else(|| format!("'{part}'")),
        Value::Array(a) => match index(&part)? {
            Some(i) if i < a.len() => Ok(a[i].clone()),
            _ => Err("list index out of range".into()),
        },
        other => Err(format!(
            "unable to fully resolve json pointer {from}, part {part} in {}",
            py_str(other)
        )),
    }
}

fn value(op: &Map<String, Value>) -> Result<Value, String> {
    op.get("value")
        .cloned()
        .ok_or_else(|| "The operation does not contain a 'value' member".into())
}

/// Applies one (already shape-checked) operation to `doc`; the error is
/// `jsonpatch`'s message.
pub fn apply(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
    let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
    let from = op.get("from").and_then(Value::as_str);
    match name {
        "add" => add(doc, path, value(op)?),
        "replace" => replace(doc, path, value(op)?),
        "remove" => remove(doc, path).map(|_| ()),
        "test" => {
            let parts = tokens(path)?;
            let actual = get(doc, &parts)?;
            let expected = value(op)?;
            if actual == expected {
                Ok(())
            } else {
                Err(format!(
                    "{} ({}) is not equal to tested value {} ({})",
                    py_str(&actual),
                    py_type(&actual),
                    py_str(&expected),
                    py_type(&expected)
                ))
            }
        }
        "move" | "copy" => {
            let Some(from) = from else {
                return Err("The operation does not contain a 'from' member".into());
            };
            if name == "move" && path != from && path.starts_with(&format!("{from}/")) {
                return Err("Cannot move values into their own children".into());
            }
            let v = source(doc, from)?;
            if name == "move" {
                if path == from {
                    return Ok(());
                }
                remove(doc, from)?;
            }
            add(doc, path, v)
        }
        other => Err(format!("Unknown operation '{other}'")),
    }
}
