//! Compares what a probe observed with what its lab expects, one line per miss.

use serde_json::Value;

use crate::report::Observed;
use crate::scenario::Expect;

fn show(value: Option<impl std::fmt::Debug>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "nothing".into(),
    }
}

/// Every unmet expectation as "field: expected X, got Y".
pub fn failures(expect: &Expect, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let mut equal = |field: &str, want: Option<String>, got: Option<String>| {
        if let Some(want) = want
            && got.as_deref() != Some(want.as_str())
        {
            out.push(format!(
                "{field}: expected {want:?}, got {}",
                show(got.as_deref())
            ));
        }
    };
    equal(
        "status",
        expect.status.map(|s| s.to_string()),
        observed.status.map(|s| s.to_string()),
    );
    equal("reason", expect.reason.clone(), observed.reason.clone());
    equal("message", expect.message.clone(), observed.message.clone());
    equal(
        "exit-code",
        expect.exit_code.map(|c| c.to_string()),
        observed.exit_code.map(|c| c.to_string()),
    );
    equal(
        "exists",
        expect.exists.map(|b| b.to_string()),
        observed.exists.map(|b| b.to_string()),
    );
    equal(
        "allowed",
        expect.allowed.map(|b| b.to_string()),
        observed.allowed.map(|b| b.to_string()),
    );

    if let Some(part) = &expect.message_contains
        && !observed
            .message
            .as_deref()
            .is_some_and(|m| m.contains(part.as_str()))
    {
        out.push(format!(
            "message-contains: expected a message containing {part:?}, got {}",
            show(observed.message.as_deref())
        ));
    }
    if let Some(part) = &expect.output_contains
        && !observed.body.contains(part.as_str())
    {
        out.push(format!(
            "output-contains: expected output containing {part:?}"
        ));
    }
    if !expect.json.is_empty() {
        let body: Option<Value> = serde_json::from_str(&observed.body).ok();
        for (path, want) in &expect.json {
            let got = body.as_ref().and_then(|b| lookup(b, path));
            if got != Some(want) {
                out.push(format!(
                    "json.{path}: expected {want}, got {}",
                    got.map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing".into())
                ));
            }
        }
    }
    if let Some(error) = &observed.error
        && !out.is_empty()
    {
        out.push(format!("the probe could not observe: {error}"));
    }
    out
}

/// A dotted path into JSON: keys for objects, numbers for arrays ("items.0.kind").
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_observation_has_no_failures() {
        let expect = Expect {
            status: Some(403),
            reason: Some("Forbidden".into()),
            message_contains: Some("cannot list".into()),
            ..Default::default()
        };
        let observed = Observed {
            status: Some(403),
            reason: Some("Forbidden".into()),
            message: Some("pods is forbidden: User \"x\" cannot list resource".into()),
            ..Default::default()
        };
        assert!(failures(&expect, &observed).is_empty());
    }

    #[test]
    fn each_miss_says_what_was_expected_and_what_came() {
        let expect = Expect {
            status: Some(403),
            message: Some("exact".into()),
            ..Default::default()
        };
        let observed = Observed {
            status: Some(200),
            ..Default::default()
        };
        assert_eq!(
            failures(&expect, &observed),
            vec![
                "status: expected \"403\", got \"200\"".to_string(),
                "message: expected \"exact\", got nothing".to_string(),
            ]
        );
    }

    #[test]
    fn json_fields_are_found_by_dotted_path() {
        let body =
            serde_json::json!({"kind": "PodList", "items": [{"metadata": {"name": "mydemo"}}]});
        assert_eq!(
            lookup(&body, "items.0.metadata.name"),
            Some(&serde_json::json!("mydemo"))
        );
        assert_eq!(lookup(&body, "items.1"), None);
        let expect = Expect {
            json: [
                ("kind".to_string(), serde_json::json!("PodList")),
                (
                    "items.0.metadata.name".to_string(),
                    serde_json::json!("other"),
                ),
            ]
            .into(),
            ..Default::default()
        };
        let observed = Observed {
            body: body.to_string(),
            ..Default::default()
        };
        assert_eq!(
            failures(&expect, &observed),
            vec!["json.items.0.metadata.name: expected \"other\", got \"mydemo\"".to_string()]
        );
    }
}
