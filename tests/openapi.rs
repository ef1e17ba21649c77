//! docs/openapi.json, the document `GET /openapi.json` serves, against the route
//! table and the error codes: a route or a code the document lacks fails here.

use serde_json::Value;
use tollgate::http::Route;
use tollgate::ErrorCode;

fn document() -> Value {
    serde_json::from_str(include_str!("../docs/openapi.json")).expect("docs/openapi.json is JSON")
}

#[test]
fn every_route_of_the_table_is_in_the_document_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let table = Route::table();
    for (method, path) in &table {
        let op = &doc["paths"][path.as_str()][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is in the route table but not in docs/openapi.json");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path} documents no success");
        for status in ["400", "408", "413"] {
            assert!(responses.contains_key(status), "{method} {path} lacks {status}, which any request can get");
        }
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let known = table.iter().any(|(m, p)| p == path && m.eq_ignore_ascii_case(method));
            assert!(known, "docs/openapi.json documents {method} {path}, which the route table does not have");
        }
    }
}

#[test]
fn every_error_code_and_status_is_documented() {
    let doc = document();
    let codes: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let responses = doc["components"]["responses"].as_object().unwrap();
    for code in ErrorCode::ALL {
        assert!(codes.contains(&code.as_str()), "error code {} is not in the Error schema", code.as_str());
        let status = code.http_status();
        // 405 is the answer to a method a path does not have: no operation to document it under.
        if status != 405 {
            assert!(responses.contains_key(&format!("E{status}")), "status {status} ({}) has no response", code.as_str());
        }
    }
    let mut unresolved = Vec::new();
    collect_refs(&doc, &mut |r| {
        let target = r.strip_prefix("#/").map(|p| p.split('/').fold(&doc, |v, k| &v[k]));
        if !target.is_some_and(|t| t.is_object()) {
            unresolved.push(r.to_owned());
        }
    });
    assert!(unresolved.is_empty(), "unresolved $ref: {unresolved:?}");
}

fn collect_refs(v: &Value, found: &mut impl FnMut(&str)) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                found(r);
            }
            map.values().for_each(|v| collect_refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, found)),
        _ => {}
    }
}
