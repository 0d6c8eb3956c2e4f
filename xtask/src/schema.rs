//! Just enough of JSON Schema to hold `grade --json` to
//! `classroom/grade.schema.json` in the tests: `type`, `const`, `enum`,
//! `minimum`, `properties`, `required`, `additionalProperties`, `items` and
//! local `$ref`s. A full validator crate would add dozens of crates to every
//! learner's first build for one test; instead, a keyword this one does not
//! know is an error, so the schema can't silently say more than is checked.

use serde_json::Value;

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "$defs",
    "$comment",
];

pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, schema, value, "$")
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(rules) = schema.as_object() else {
        return Err(format!("{at}: the schema is not an object"));
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let path = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/"))
                    .ok_or_else(|| format!("{at}: only local $refs are supported"))?;
                let target = path
                    .split('/')
                    .try_fold(root, |node, part| node.get(part))
                    .ok_or_else(|| format!("{at}: $ref {path} points nowhere"))?;
                check(root, target, value, at)?;
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type rule")),
                };
                if !types.iter().any(|t| is_type(value, t)) {
                    return Err(format!(
                        "{at}: expected {}, found {value}",
                        types.join(" or ")
                    ));
                }
            }
            "const" if value != rule => {
                return Err(format!("{at}: expected {rule}, found {value}"))
            }
            "const" => {}
            "enum" => {
                if !rule.as_array().is_some_and(|all| all.contains(value)) {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "minimum" => {
                if value
                    .as_f64()
                    .zip(rule.as_f64())
                    .is_some_and(|(v, min)| v < min)
                {
                    return Err(format!("{at}: {value} is below {rule}"));
                }
            }
            "required" => {
                for name in rule
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if value.is_object() && value.get(name).is_none() {
                        return Err(format!("{at}: {name} is missing"));
                    }
                }
            }
            "properties" => {
                let (Some(props), Some(object)) = (rule.as_object(), value.as_object()) else {
                    continue;
                };
                for (name, sub) in props {
                    if let Some(v) = object.get(name) {
                        check(root, sub, v, &format!("{at}.{name}"))?;
                    }
                }
            }
            "additionalProperties" => {
                if rule == &Value::Bool(false) {
                    let known = rules.get("properties").and_then(Value::as_object);
                    for name in value.as_object().into_iter().flat_map(|o| o.keys()) {
                        if !known.is_some_and(|k| k.contains_key(name)) {
                            return Err(format!("{at}: {name} is not in the schema"));
                        }
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(root, rule, item, &format!("{at}[{i}]"))?;
                }
            }
            other => return Err(format!("{at}: the keyword {other} is not supported here")),
        }
    }
    Ok(())
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../classroom/grade.schema.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_schema_rejects_what_it_should() {
        let good = json!({"version": 1, "score": 0, "total": 3, "steps": [{
            "step": "01-fork", "package": "lesson-01", "score": 0, "total": 3, "error": null,
            "checks": [{"step": "01-fork", "check": "c", "points": 3, "passed": false,
                        "message": "m", "book": "b", "hint": "h"}],
            "skipped": []}]});
        assert_eq!(validate(&schema(), &good), Ok(()));
        let mut bad = good.clone();
        bad["steps"][0]["checks"][0]["points"] = json!(-1);
        assert!(validate(&schema(), &bad).unwrap_err().contains("below"));
        let mut bad = good.clone();
        bad["steps"][0]["checks"][0]
            .as_object_mut()
            .unwrap()
            .remove("passed");
        assert!(validate(&schema(), &bad)
            .unwrap_err()
            .contains("passed is missing"));
        let mut bad = good.clone();
        bad["version"] = json!(2);
        assert!(validate(&schema(), &bad).is_err());
        let mut bad = good;
        bad["steps"][0]["extra"] = json!(true);
        assert!(validate(&schema(), &bad)
            .unwrap_err()
            .contains("extra is not in the schema"));
        assert!(validate(&json!({"pattern": "x"}), &json!("x")).is_err());
    }
}
