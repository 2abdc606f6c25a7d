//! The capabilities `mesh-proxy dap` announces before it knows the room's debug adapter,
//! and the correction it sends once it does.

use serde_json::{json, Map, Value};

/// The answer to `initialize`, before the room's adapter is known: what debugpy and
/// lldb-vscode both support (and restart, which the hub does), so that the later correction
/// is small or empty.
pub fn initial() -> Value {
    json!({
        "supportsConfigurationDoneRequest": true,
        "supportsFunctionBreakpoints": true,
        "supportsConditionalBreakpoints": true,
        "supportsHitConditionalBreakpoints": true,
        "supportsEvaluateForHovers": true,
        "supportsSetVariable": true,
        "supportsLogPoints": true,
        "supportsTerminateRequest": true,
        "supportsDelayedStackTraceLoading": true,
        // The hub restarts the program itself, whatever the adapter.
        "supportsRestartRequest": true,
        "exceptionBreakpointFilters": [],
    })
}

/// The capabilities that differ between what the proxy announced and what the adapter
/// supports, as the body of a `capabilities` event; `None` when they agree. A capability the
/// proxy announced and the adapter lacks is turned off.
pub fn correction(announced: &Value, adapter: &Value) -> Option<Value> {
    let empty = Map::new();
    let announced = announced.as_object().unwrap_or(&empty);
    let adapter = adapter.as_object().unwrap_or(&empty);
    let mut changed = Map::new();
    for (key, value) in adapter {
        let same = announced.get(key).map_or(*value == Value::Bool(false), |v| v == value);
        if !same {
            changed.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in announced {
        if *value == Value::Bool(true) && !adapter.contains_key(key) {
            changed.insert(key.clone(), Value::Bool(false));
        }
    }
    (!changed.is_empty()).then(|| json!({ "capabilities": changed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_are_sent() {
        assert_eq!(correction(&initial(), &initial()), None);
        let mut adapter = initial();
        adapter["supportsStepBack"] = json!(false);
        assert_eq!(correction(&initial(), &adapter), None);
        adapter["supportsTerminateRequest"] = json!(false);
        adapter["supportsModulesRequest"] = json!(true);
        adapter["supportsRestartRequest"] = json!(true);
        adapter["supportsStepInTargetsRequest"] = json!(true);
        adapter.as_object_mut().unwrap().remove("supportsLogPoints");
        adapter["exceptionBreakpointFilters"] = json!([{"filter": "raised", "label": "Raised Exceptions"}]);
        assert_eq!(
            correction(&initial(), &adapter),
            Some(json!({"capabilities": {
                "supportsTerminateRequest": false,
                "supportsModulesRequest": true,
                "supportsStepInTargetsRequest": true,
                "supportsLogPoints": false,
                "exceptionBreakpointFilters": [{"filter": "raised", "label": "Raised Exceptions"}],
            }}))
        );
    }
}
