//! Executor presets: documented registry records for the agent CLIs people already have
//! (`tlao executors add --preset NAME`), kept as data in `presets/presets.json` and shown
//! by `GET /executors/presets`. Nothing about them is hard-coded in the orchestrator: a
//! preset is posted to `POST /executors` like any record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The presets file, embedded.
const PRESETS_JSON: &str = include_str!("../presets/presets.json");

/// A documented executor record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorPreset {
    /// The preset's name (`kiro`, `kiro-acp`, `claude-code`, ...).
    pub preset: String,
    /// What it runs, in a sentence.
    pub description: String,
    /// The record `POST /executors` takes (its `name` is the preset's default name).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub record: Value,
}

/// `GET /executors/presets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PresetList {
    /// The presets, in the file's order.
    pub items: Vec<ExecutorPreset>,
}

/// Every preset, in the file's order.
pub fn all() -> Vec<ExecutorPreset> {
    // The file is part of the build and checked by this crate's tests.
    serde_json::from_str(PRESETS_JSON).unwrap_or_default()
}

/// The preset named `name`, as a record named `rename` when given.
pub fn record(name: &str, rename: Option<&str>) -> Option<Value> {
    let mut record = all().into_iter().find(|p| p.preset == name)?.record;
    if let (Some(rename), Some(object)) = (rename, record.as_object_mut()) {
        object.insert("name".into(), Value::String(rename.to_owned()));
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use tlao_domain::ExecutorDescriptor;

    use super::*;

    #[test]
    fn the_file_parses_and_names_every_documented_preset() {
        let presets: Vec<ExecutorPreset> =
            serde_json::from_str(PRESETS_JSON).expect("presets.json is a list of presets");
        let names: Vec<&str> = presets.iter().map(|p| p.preset.as_str()).collect();
        assert_eq!(
            names,
            [
                "kiro",
                "kiro-acp",
                "claude-code",
                "claude-code-acp",
                "codex",
                "codex-acp",
                "gemini",
                "gemini-acp",
                "opencode",
                "goose"
            ]
        );
        assert_eq!(all(), presets);
    }

    #[test]
    fn every_preset_is_a_valid_record_with_grants() {
        for preset in all() {
            let descriptor = ExecutorDescriptor::parse(&preset.record)
                .unwrap_or_else(|e| panic!("preset {} is invalid: {e:?}", preset.preset));
            assert_eq!(descriptor.name.as_str(), preset.preset);
            assert_eq!(descriptor.config.kind(), preset.record["kind"]);
            assert!(
                !descriptor.sandbox.is_default(),
                "{} grants what its agent needs",
                preset.preset
            );
            // Every agent a preset names reports its work as events (acp or stream);
            // only Kiro's headless mode, which prints text, is a logs-only kind.
            assert!(
                matches!(descriptor.config.kind(), "acp" | "stream") || preset.preset == "kiro",
                "preset {} is a {} record: no progress events",
                preset.preset,
                descriptor.config.kind()
            );
        }
    }

    #[test]
    fn a_preset_can_be_renamed() {
        let record = record("claude-code", Some("claude")).expect("a preset");
        assert_eq!(record["name"], "claude");
        assert_eq!(record["sandbox"]["env"][0], "ANTHROPIC_*");
        assert!(super::record("no-such", None).is_none());
    }
}
