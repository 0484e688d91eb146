//! Fields of request bodies read as the OpenAPI document describes them
//! (`#[serde(deserialize_with = ...)]`), where serde's defaults differ from JSON Schema:
//!
//! - the document is JSON Schema 2020-12, where `2.0` is the integer 2, so a field it
//!   calls an integer takes both spellings; a fraction, or a float past 2^53 (which may
//!   not be the integer that was written), is refused. The domain's parsers read user
//!   requests the same way ([`tlao_domain::validation::whole_u64`]);
//! - serde reads a struct from an array of its fields in order too; a field the document
//!   calls an object takes an object only.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde_json::Value;
use tlao_domain::validation::MAX_EXACT_WHOLE_FLOAT;

/// A JSON integer, spelled `2` or `2.0`.
struct Whole(i128);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeVisitor;

        impl Visitor<'_> for WholeVisitor {
            type Value = Whole;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Whole, E> {
                Ok(Whole(value.into()))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Whole, E> {
                Ok(Whole(value.into()))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Whole, E> {
                if value.fract() == 0.0 && value.abs() <= MAX_EXACT_WHOLE_FLOAT {
                    // Whole and within ±2^53: the cast is exact.
                    Ok(Whole(value as i128))
                } else {
                    Err(E::invalid_type(Unexpected::Float(value), &self))
                }
            }
        }

        deserializer.deserialize_any(WholeVisitor)
    }
}

fn in_range<T: TryFrom<i128>, E: de::Error>(Whole(value): Whole) -> Result<T, E> {
    T::try_from(value).map_err(|_| E::custom(format!("the integer {value} is out of range")))
}

/// An integer field (`u32`, `u64`, ...), `2.0` included.
pub(crate) fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    in_range(Whole::deserialize(deserializer)?)
}

/// An optional integer field: null or an integer, `2.0` included.
pub(crate) fn whole_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    Option::<Whole>::deserialize(deserializer)?
        .map(in_range)
        .transpose()
}

/// An optional percentage: null or an integer from 0 to 100.
pub(crate) fn percent_or_null<'de, D>(deserializer: D) -> Result<Option<u8>, D::Error>
where
    D: Deserializer<'de>,
{
    let percent: Option<u8> = whole_or_null(deserializer)?;
    match percent {
        Some(p) if p > 100 => Err(de::Error::custom(format!("the percentage {p} is over 100"))),
        other => Ok(other),
    }
}

/// An optional object field: null or a JSON object read as `T`.
pub(crate) fn object_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        object @ Value::Object(_) => serde_json::from_value(object)
            .map(Some)
            .map_err(de::Error::custom),
        other => Err(de::Error::invalid_type(
            unexpected(&other),
            &"an object or null",
        )),
    }
}

/// What `value` is, for serde's messages.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        a: u8,
    }

    #[derive(Debug, Deserialize)]
    struct Nested {
        #[serde(default, deserialize_with = "super::object_or_null")]
        inner: Option<Inner>,
    }

    #[test]
    fn an_object_field_takes_an_object_or_null_and_not_an_array() {
        let read = |value| serde_json::from_value::<Nested>(value).map(|n| n.inner.is_some());
        assert!(read(json!({"inner": {"a": 1}})).unwrap());
        assert!(!read(json!({"inner": null})).unwrap());
        assert!(!read(json!({})).unwrap());
        assert!(read(json!({"inner": [1]})).is_err());
        assert!(read(json!({"inner": "a"})).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "super::whole")]
        size: u32,
        #[serde(default, deserialize_with = "super::percent_or_null")]
        percent: Option<u8>,
    }

    fn probe(value: serde_json::Value) -> Result<(u32, Option<u8>), String> {
        serde_json::from_value::<Probe>(value)
            .map(|p| (p.size, p.percent))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_integer_may_be_spelled_as_a_whole_float() {
        assert_eq!(probe(json!({"size": 3})), Ok((3, None)));
        assert_eq!(
            probe(json!({"size": 3.0, "percent": 50.0})),
            Ok((3, Some(50)))
        );
        assert_eq!(probe(json!({"size": 1, "percent": null})), Ok((1, None)));
    }

    #[derive(Debug, Deserialize)]
    struct Count {
        #[serde(deserialize_with = "super::whole")]
        n: u64,
    }

    #[test]
    fn a_whole_float_in_the_text_is_read_as_exactly_that_integer() {
        // schemathesis sent this; a parser that is not correctly rounded reads
        // 1829538661618799.2 (one step off) and refuses it as a fraction.
        for text in [
            r#"{"n": 1829538661618799.0}"#,
            r#"{"n": 9007199254740992.0}"#,
            r#"{"n": 1.829538661618799e15}"#,
        ] {
            let count: Count = serde_json::from_str(text).unwrap();
            assert!(
                [1_829_538_661_618_799, 9_007_199_254_740_992].contains(&count.n),
                "{text}: {}",
                count.n
            );
        }
    }

    #[test]
    fn fractions_negatives_and_out_of_range_values_are_refused() {
        for bad in [
            json!({"size": 3.5}),
            json!({"size": -1}),
            json!({"size": -1.0}),
            json!({"size": 4_294_967_296_u64}),
            json!({"size": 1e300}),
            json!({"size": "3"}),
            json!({"size": 1, "percent": 101}),
            json!({"size": 1, "percent": 256}),
        ] {
            assert!(probe(bad.clone()).is_err(), "{bad} was accepted");
        }
    }
}
