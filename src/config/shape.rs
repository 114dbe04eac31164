//! The shape of the settings before their values: every key that is not a setting and every
//! value of the wrong type, all of them with a fix, instead of stopping at the first. The
//! known keys and types are those of `Settings::default()` serialized; each value is tried on
//! its own, so one bad key never hides another. What passes is returned for validation.

use serde_json::{Map, Value};

use super::{Problem, Settings};

/// The settings from `tree` (what the file and the environment gave) with every unknown key
/// and badly typed value left out, and a problem for each one left out.
pub fn check(tree: &Value) -> (Settings, Vec<Problem>) {
    let schema = serde_json::to_value(Settings::default()).expect("the default settings serialize");
    let mut kept = schema.clone();
    let mut problems = Vec::new();
    if let Value::Object(given) = tree {
        walk(&schema, given, "", &mut kept, &schema, &mut problems);
    }
    let settings = serde_json::from_value(kept).unwrap_or_default();
    (settings, problems)
}

/// Checks the keys of one section (`prefix`, empty at the top) and keeps what fits in `kept`.
fn walk(
    schema: &Value,
    given: &Map<String, Value>,
    prefix: &str,
    kept: &mut Value,
    root: &Value,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in given {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let Some(expected) = schema.get(name) else {
            problems.push(unknown(schema, prefix, &key, name));
            continue;
        };
        match (expected, value) {
            (Value::Object(_), Value::Object(inner)) => walk(expected, inner, &key, kept, root, problems),
            (Value::Object(section), _) => problems.push(Problem {
                key,
                problem: format!("{} is not a section", shown(value)),
                fix: format!(
                    "write its keys under it: {}",
                    section.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
            _ => match fitting(root, &key, value) {
                Some(fits) => set(kept, &key, fits),
                None => problems.push(Problem {
                    problem: format!("{} is not {}", shown(value), kind(expected)),
                    fix: fix_for(expected),
                    key,
                }),
            },
        }
    }
}

/// `value` if the settings accept it at `key`, or its text read as a number or a boolean.
fn fitting(root: &Value, key: &str, value: &Value) -> Option<Value> {
    let accepts = |candidate: &Value| {
        let mut tree = root.clone();
        set(&mut tree, key, candidate.clone());
        serde_json::from_value::<Settings>(tree).is_ok()
    };
    if accepts(value) {
        return Some(value.clone());
    }
    // The environment's values arrive parsed: a number or a boolean may be meant as text.
    if let Value::Number(_) | Value::Bool(_) = value {
        let text = Value::String(value.to_string());
        return accepts(&text).then_some(text);
    }
    let text = value.as_str()?.trim();
    let read = [
        text.parse::<u64>().ok().map(Value::from),
        text.parse::<i64>().ok().map(Value::from),
        text.parse::<f64>().ok().map(Value::from),
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
    ];
    read.into_iter().flatten().find(accepts)
}

fn set(tree: &mut Value, key: &str, value: Value) {
    let mut node = tree;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node[part] = value;
            return;
        }
        node = &mut node[part];
    }
}

/// A value as the problem quotes it (secrets are never values of a wrong type worth quoting
/// in full: long text is cut).
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "a section".to_string(),
        Value::Array(_) => "a list".to_string(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(39).collect::<String>())
    } else {
        text
    }
}

fn kind(expected: &Value) -> &'static str {
    match expected {
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a whole number ≥ 0",
        Value::Array(_) => "a list",
        _ => "text",
    }
}

fn fix_for(expected: &Value) -> String {
    match expected {
        Value::Bool(b) => format!("write true or false, e.g. {b}"),
        Value::Number(n) => format!("write a whole number, e.g. {n}"),
        Value::Array(items) => format!(
            "write a list, e.g. [{}] (in the environment: comma-separated)",
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), |s| format!("{s:?}")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(s) if !s.is_empty() => format!("write text, e.g. {s:?}"),
        _ => "write text (quoted in YAML if in doubt)".to_string(),
    }
}

/// A key that is not a setting: the nearest known key, else the keys there are.
fn unknown(schema: &Value, prefix: &str, key: &str, name: &str) -> Problem {
    let known: Vec<&String> = schema.as_object().map(|m| m.keys().collect()).unwrap_or_default();
    let nearest = known
        .iter()
        .map(|k| (distance(k, name), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d);
    let fix = match nearest {
        Some((_, k)) if prefix.is_empty() => format!("did you mean {k}?"),
        Some((_, k)) => format!("did you mean {prefix}.{k}?"),
        None if prefix.is_empty() => format!(
            "remove it; the sections are {}",
            known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ),
        None => format!(
            "remove it; the keys of {prefix} are {}",
            known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    Problem {
        key: key.to_string(),
        problem: "is not a setting".into(),
        fix,
    }
}

/// Edit distance (insert, delete, replace), for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_wrong_types_are_all_reported_with_a_fix() {
        let tree = serde_json::json!({
            "server": {"listn": "1.2.3.4:1", "max_connections": "many", "workers": 2},
            "database": {"pool_size": -3, "embedded": "here"},
            "payments": {"sandbox": "maybe", "order_ttl_secs": "600"},
            "limits": {"create_per_minute": 99999999999u64},
            "frobnicate": {"x": 1},
        });
        let (settings, problems) = check(&tree);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "server.listn",
            "server.max_connections",
            "database.pool_size",
            "database.embedded",
            "payments.sandbox",
            "limits.create_per_minute",
            "frobnicate",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:#?}");
        }
        assert_eq!(problems.len(), 7, "{problems:#?}");
        let listn = problems.iter().find(|p| p.key == "server.listn").unwrap();
        assert_eq!(listn.fix, "did you mean server.listen?");
        let sandbox = problems.iter().find(|p| p.key == "payments.sandbox").unwrap();
        assert!(sandbox.fix.contains("true or false"), "{sandbox:?}");
        let unknown = problems.iter().find(|p| p.key == "frobnicate").unwrap();
        assert!(unknown.fix.starts_with("remove it; the sections are"), "{unknown:?}");
        // What was right is kept, text that reads as a number included.
        assert_eq!(settings.server.workers, 2);
        assert_eq!(settings.payments.order_ttl_secs, 600);
        assert_eq!(settings.database.pool_size, 16, "a bad value falls back while reported");
    }

    #[test]
    fn distances_count_edits() {
        assert_eq!(distance("listn", "listen"), 1);
        assert_eq!(distance("pool_sise", "pool_size"), 1);
        assert_eq!(distance("abc", "xyz"), 3);
    }
}
