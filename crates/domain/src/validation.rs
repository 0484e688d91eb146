//! Field-level validation errors.
//!
//! Parsing a request body into a domain value reports **every** problem at once, each
//! tied to a field path (`input.prompt`, `config.command[0]`), so a client can fix its
//! request in one round trip. Messages are lowercase and name the allowed values.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// The largest integer the API takes: the largest `int64`, the format of its documents'
/// integers (and of the table's numbers).
pub const MAX_API_INTEGER: u64 = i64::MAX as u64;

/// One problem with one field of an input document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The path of the field, e.g. `input.prompt`.
    pub field: String,
    /// What is wrong, lowercase, e.g. `is required`.
    pub message: String,
}

/// A non-empty list of field errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// A single error.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationErrors(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether any error concerns `field`.
    pub fn mentions(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", error.field, error.message)?;
        }
        Ok(())
    }
}

/// Collects field errors while a document is parsed.
#[derive(Debug, Default)]
pub struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(field, error.to_string());
                None
            }
        }
    }

    /// Takes the errors of a nested parse, prefixing their fields with `prefix.`.
    pub fn absorb(&mut self, prefix: &str, nested: ValidationErrors) {
        for error in nested.0 {
            let field = if error.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", error.field)
            };
            self.errors.push(FieldError { field, ..error });
        }
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many errors have been recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` when nothing was recorded, else every error. A parser returns `None`
    /// only after recording why, so `None` with no error is reported as a bug in the
    /// parser rather than accepted.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ if !self.errors.is_empty() => Err(ValidationErrors(self.errors)),
            _ => Err(ValidationErrors::single("", "is not valid")),
        }
    }

    /// The JSON object in `value`, or an error recorded under `field`.
    pub fn object<'a>(&mut self, field: &str, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.push(field, format!("must be an object, found {}", kind(other)));
                None
            }
        }
    }

    /// Records every key of `map` that is not in `allowed`.
    pub fn reject_unknown(&mut self, prefix: &str, map: &Map<String, Value>, allowed: &[&str]) {
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.push(
                join(prefix, key),
                format!(
                    "is not a known field; expected one of {}",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// The string at `map[key]`: `None` (with an error) when present but not a string,
    /// `None` (with `is required` when `required`) when absent or null.
    pub fn string<'a>(
        &mut self,
        prefix: &str,
        map: &'a Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<&'a str> {
        match map.get(key) {
            Some(Value::String(text)) => Some(text),
            None | Some(Value::Null) => {
                if required {
                    self.push(join(prefix, key), "is required");
                }
                None
            }
            Some(other) => {
                self.push(
                    join(prefix, key),
                    format!("must be a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// The non-negative integer at `map[key]`, if present (`3.0` too: see [`whole_u64`]).
    pub fn unsigned(&mut self, prefix: &str, map: &Map<String, Value>, key: &str) -> Option<u64> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if whole_u64(n).is_some() => whole_u64(n),
            Some(other) => {
                self.push(
                    join(prefix, key),
                    format!("must be a non-negative integer, found {}", kind(other)),
                );
                None
            }
        }
    }
}

/// The largest whole number every JSON float up to it spells exactly: 2^53.
pub const MAX_EXACT_WHOLE_FLOAT: f64 = 9_007_199_254_740_992.0;

/// The non-negative integer a JSON number is, if any: `3` and `3.0` alike, as JSON Schema
/// (the language of the API's OpenAPI document) reads both as the integer 3. Fractions,
/// negative numbers, and floats past [`MAX_EXACT_WHOLE_FLOAT`] (which may not be the
/// integer that was written) are not.
pub fn whole_u64(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=MAX_EXACT_WHOLE_FLOAT).contains(f))
            // A whole number within 0..=2^53: the cast is exact.
            .map(|f| f as u64)
    })
}

/// `prefix.key`, or `key` at the top level.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A JSON value's kind, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_whole_float_is_the_integer_it_spells() {
        let map = json!({"a": 3, "b": 3.0, "c": 1e3, "d": 3.5, "e": -1, "f": -0.0, "g": 1e300})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut errors = Collector::new();
        let read: Vec<Option<u64>> = ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .map(|key| errors.unsigned("", &map, key))
            .collect();
        assert_eq!(
            read,
            [Some(3), Some(3), Some(1000), None, None, Some(0), None]
        );
        let refused: Vec<String> = errors
            .finish(Some(()))
            .unwrap_err()
            .errors()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(refused, ["d", "e", "g"]);
    }
}
