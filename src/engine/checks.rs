//! Checks of cluster state, on watches until their timeout: `assert` (an object, or the
//! objects a selector chooses, match a partial tree, or are absent) and `events` (an
//! object's events include one with a reason and message).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::Value;

use super::Error;
use super::resources::Resolved;
use crate::expect;
use crate::scenario::{AssertOp, EventsOp};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a check saw when it ended: passed, or the misses (and a diff).
pub struct Verdict {
    pub failures: Vec<String>,
    pub diff: Option<String>,
    /// The matching object, for captures.
    pub object: Option<Value>,
    pub summary: String,
}

/// Keeps the objects a watch has seen, by namespace and name.
fn apply_event(
    store: &mut BTreeMap<String, DynamicObject>,
    event: watcher::Event<DynamicObject>,
    fresh: &mut Option<BTreeMap<String, DynamicObject>>,
) {
    let key = |o: &DynamicObject| {
        format!(
            "{}/{}",
            o.metadata.namespace.as_deref().unwrap_or_default(),
            o.metadata.name.as_deref().unwrap_or_default()
        )
    };
    match event {
        watcher::Event::Init => *fresh = Some(BTreeMap::new()),
        watcher::Event::InitApply(o) => {
            if let Some(fresh) = fresh.as_mut() {
                fresh.insert(key(&o), o);
            }
        }
        watcher::Event::InitDone => {
            if let Some(fresh) = fresh.take() {
                *store = fresh;
            }
        }
        watcher::Event::Apply(o) => {
            store.insert(key(&o), o);
        }
        watcher::Event::Delete(o) => {
            store.remove(&key(&o));
        }
    }
}

/// " after 30s", or nothing for a single look.
fn waited(timeout: Duration) -> String {
    if timeout.is_zero() {
        String::new()
    } else {
        format!(" after {}", crate::ui::format_duration(timeout))
    }
}

/// How long a single look may take to list what is there.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Watches `api` (filtered by `config`) until `decide` passes on the objects seen, or
/// the timeout ends; returns whether it passed and the last objects seen. A zero
/// timeout looks once: it decides on the first full list.
///
/// The one object `named`, when the watch is for one, is read first, for the reason
/// `wait::object_until` gives: most checks hold on that read.
async fn watch_until(
    api: Api<DynamicObject>,
    config: watcher::Config,
    named: Option<&str>,
    timeout: Duration,
    decide: impl Fn(&[&DynamicObject]) -> bool,
) -> Result<(bool, Vec<DynamicObject>), Error> {
    let look_once = timeout.is_zero();
    // A read that fails (a 403 for whoever asks) is left to the watch, which retries.
    if let Some(name) = named
        && let Ok(found) = api.get_opt(name).await
    {
        let seen: Vec<DynamicObject> = found.into_iter().collect();
        let passed = decide(&seen.iter().collect::<Vec<_>>());
        if passed || look_once {
            return Ok((passed, seen));
        }
    }
    let deadline = tokio::time::Instant::now() + if look_once { LIST_TIMEOUT } else { timeout };
    let mut stream = watcher(api, config).boxed();
    let mut store = BTreeMap::new();
    let mut fresh = None;
    let mut listed = false;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => {
                let done = matches!(event, watcher::Event::InitDone);
                apply_event(&mut store, event, &mut fresh);
                listed |= done;
            }
            // The watcher starts again on the next poll; give the server a moment.
            Ok(Some(Err(_))) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(None) | Err(_) => {
                return Ok((false, store.into_values().collect()));
            }
        }
        if listed && fresh.is_none() {
            let seen: Vec<&DynamicObject> = store.values().collect();
            if decide(&seen) {
                return Ok((true, store.into_values().collect()));
            }
            if look_once {
                return Ok((false, store.into_values().collect()));
            }
        }
    }
}

pub async fn assert(
    client: &kube::Client,
    resolved: &Resolved,
    assert: &AssertOp,
    tree: Option<&Value>,
    namespace: &str,
    timeout: Duration,
) -> Result<Verdict, Error> {
    let api = resolved.api(client, namespace);
    let mut config = watcher::Config::default();
    let what = match &assert.object.name {
        Some(name) => {
            config = config.fields(&format!("metadata.name={name}"));
            resolved.describe(namespace, name)
        }
        None => {
            let scope = if resolved.namespaced {
                format!(" in {namespace}")
            } else {
                String::new()
            };
            match &assert.selector {
                Some(selector) => {
                    config = config.labels(selector);
                    format!("{} with labels {selector}{scope}", resolved.resource.plural)
                }
                None => format!("{}{scope}", resolved.resource.plural),
            }
        }
    };
    let matches = |object: &DynamicObject| -> bool {
        let Some(tree) = tree else { return true };
        let value = serde_json::to_value(object).unwrap_or_default();
        expect::tree_mismatches(tree, Some(&value), "").is_empty()
    };
    let absent = assert.absent;
    let (passed, seen) = watch_until(
        api,
        config,
        assert.object.name.as_deref(),
        timeout,
        |objects| {
            if absent {
                objects.is_empty()
            } else {
                objects.iter().any(|o| matches(o))
            }
        },
    )
    .await?;
    if absent {
        let names: Vec<String> = seen
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect();
        return Ok(Verdict {
            failures: if passed {
                Vec::new()
            } else {
                vec![format!(
                    "expected no {what}, found {}{}",
                    names.join(", "),
                    waited(timeout)
                )]
            },
            diff: None,
            object: None,
            summary: format!("no {what}"),
        });
    }
    let values: Vec<Value> = seen
        .iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect();
    if passed {
        let object = values
            .into_iter()
            .find(|v| tree.is_none_or(|t| expect::tree_mismatches(t, Some(v), "").is_empty()));
        return Ok(Verdict {
            failures: Vec::new(),
            diff: None,
            object,
            summary: format!("{what} matches"),
        });
    }
    // Show the closest object: the one with the fewest misses. (Without a tree, the
    // object was only to exist: there is nothing to compare.)
    let has_tree = tree.is_some();
    let tree = tree.cloned().unwrap_or(Value::Null);
    let closest = values
        .iter()
        .min_by_key(|v| expect::tree_mismatches(&tree, Some(v), "").len());
    let failures = match closest {
        None => vec![format!("no {what}{}", waited(timeout))],
        Some(object) => {
            let mut misses = expect::tree_mismatches(&tree, Some(object), "");
            misses.insert(0, format!("{what} does not match{}", waited(timeout)));
            misses
        }
    };
    Ok(Verdict {
        failures,
        diff: has_tree.then(|| expect::diff(&tree, closest)),
        object: None,
        summary: if closest.is_none() {
            format!("no {what}")
        } else {
            format!("{what} does not match")
        },
    })
}

pub async fn events(
    client: &kube::Client,
    resolved: &Resolved,
    events: &EventsOp,
    namespace: &str,
    timeout: Duration,
) -> Result<Verdict, Error> {
    let kind = &resolved.resource.kind;
    let mut fields = format!("involvedObject.kind={kind},reason={}", events.reason);
    if let Some(name) = &events.object.name {
        fields.push_str(&format!(",involvedObject.name={name}"));
    }
    let what = match &events.object.name {
        Some(name) => resolved.describe(namespace, name),
        None => format!("a {kind} in {namespace}"),
    };
    let dynamic: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::discovery::ApiResource::erase::<Event>(&()),
    );
    let wanted = |event: &DynamicObject| {
        let message = event.data["message"].as_str().unwrap_or_default();
        let type_ok = events
            .event_type
            .as_deref()
            .is_none_or(|t| event.data["type"] == t);
        let message_ok = events
            .message
            .as_ref()
            .is_none_or(|m| m.failures("message", Some(message)).is_empty());
        type_ok && message_ok
    };
    let (passed, seen) = watch_until(
        dynamic,
        watcher::Config::default().fields(&fields),
        None,
        timeout,
        |all| all.iter().any(|e| wanted(e)),
    )
    .await?;
    let lines: Vec<String> = seen
        .iter()
        .map(|e| {
            format!(
                "{} {} {}: {}",
                e.data["type"].as_str().unwrap_or_default(),
                e.data["involvedObject"]["name"]
                    .as_str()
                    .unwrap_or_default(),
                e.data["reason"].as_str().unwrap_or_default(),
                e.data["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let found = seen.iter().find(|e| wanted(e));
    Ok(Verdict {
        failures: if passed {
            Vec::new()
        } else if lines.is_empty() {
            vec![format!(
                "no {} event of {what}{}",
                events.reason,
                waited(timeout)
            )]
        } else {
            let mut misses = vec![format!(
                "no {} event of {what} matches{}; seen:",
                events.reason,
                waited(timeout)
            )];
            misses.extend(lines.iter().map(|l| format!("  {l}")));
            misses
        },
        diff: None,
        object: found.map(|e| serde_json::to_value(e).unwrap_or_default()),
        summary: found
            .map(|e| {
                format!(
                    "{}: {}",
                    e.data["reason"].as_str().unwrap_or_default(),
                    e.data["message"].as_str().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("no matching {} event", events.reason)),
    })
}
