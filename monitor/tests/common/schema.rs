//! A small JSON Schema check for the OpenAPI document's response schemas
//! (the subset utoipa emits): `$ref`, `oneOf`/`anyOf`/`allOf`, `type` (one
//! or a list, with `null`), `enum`, `properties` (every property of the
//! value declared), `required` and `items`.

use serde_json::Value;

/// The `application/json` schema of `method path`'s `status` response.
pub fn response_schema<'d>(doc: &'d Value, method: &str, path: &str, status: &str) -> &'d Value {
    let s =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(s.is_object(), "{method} {path} {status}: no JSON schema");
    s
}

/// What is wrong with `v` under `schema` (empty: it is valid). `at` names
/// the place in messages.
pub fn errors(doc: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(doc, schema, v, at, &mut out);
    out
}

/// Panics with every error of `v` under `schema`.
pub fn assert_valid(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let e = errors(doc, schema, v, at);
    assert!(e.is_empty(), "{at}: {v}\n{}", e.join("\n"));
}

fn resolve<'d>(doc: &'d Value, r: &str) -> &'d Value {
    doc.pointer(r.strip_prefix('#').unwrap_or_else(|| panic!("{r}")))
        .unwrap_or_else(|| panic!("{r} does not resolve"))
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

fn check(doc: &Value, s: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = s["$ref"].as_str() {
        return check(doc, resolve(doc, r), v, at, out);
    }
    if let Some(all) = s["allOf"].as_array() {
        for sub in all {
            check(doc, sub, v, at, out);
        }
    }
    for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(alts) = s[key].as_array() {
            let ok = alts
                .iter()
                .filter(|sub| errors(doc, sub, v, at).is_empty())
                .count();
            if ok == 0 || (exactly_one && ok > 1) {
                out.push(format!("{at}: {ok} of the {key} alternatives match"));
            }
        }
    }
    let type_ok = match &s["type"] {
        Value::String(t) => type_ok(t, v),
        Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
        _ => true,
    };
    if !type_ok {
        out.push(format!("{at}: {v} is not of type {}", s["type"]));
        return;
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {}", s["enum"]));
    }
    if let (Some(props), Some(o)) = (s["properties"].as_object(), v.as_object()) {
        for (k, val) in o {
            match props.get(k) {
                Some(p) => check(doc, p, val, &format!("{at}.{k}"), out),
                None => out.push(format!("{at}: property {k} is not declared")),
            }
        }
        for r in s["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                out.push(format!("{at}: required property {r} is missing"));
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, item) in a.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"), out);
        }
    }
}

/// The checker accepts valid rows and finds each kind of mistake (called by
/// a test).
pub fn self_test() {
    use serde_json::json;
    let doc = json!({"components": {"schemas": {"Row": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "n": {"type": "integer"},
            "x": {"type": ["number", "null"]},
        },
        "required": ["id", "n", "x"],
    }}}});
    let list = json!({"type": "array", "items": {"$ref": "#/components/schemas/Row"}});
    assert!(errors(&doc, &list, &json!([{"id": "a", "n": 1, "x": null}]), "r").is_empty());
    assert!(errors(&doc, &list, &json!([{"id": "a", "n": 1, "x": 2.5}]), "r").is_empty());
    for bad in [
        json!([{"id": "a", "n": 1}]),
        json!([{"id": "a", "n": 1.5, "x": null}]),
        json!([{"id": 1, "n": 1, "x": null}]),
        json!([{"id": "a", "n": 1, "x": "2"}]),
        json!([{"id": "a", "n": 1, "x": null, "extra": 0}]),
        json!({"id": "a", "n": 1, "x": null}),
    ] {
        assert!(!errors(&doc, &list, &bad, "r").is_empty(), "{bad}");
    }
}
