//! Translating the table port's conditions and updates into DynamoDB expressions.
//!
//! Every attribute name goes through a `#nN` placeholder (so reserved words such as
//! `status`, `count` or `name` need no care) and every value through a `:vN`
//! placeholder. Only placeholders an expression uses are sent: DynamoDB refuses unused
//! ones.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tlao_ports::{AttrValue, Condition, Update};

/// The partition key attribute.
pub(crate) const PK: &str = "PK";
/// The sort key attribute.
pub(crate) const SK: &str = "SK";

/// A port value as a DynamoDB value.
pub(crate) fn to_dynamo(value: &AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(s) => AttributeValue::S(s.clone()),
        AttrValue::N(n) => AttributeValue::N(n.to_string()),
        AttrValue::Bool(b) => AttributeValue::Bool(*b),
    }
}

/// The placeholders of one request's expressions.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// The placeholder for attribute `attr` (the same one each time it is named).
    pub fn name(&mut self, attr: &str) -> String {
        if let Some(placeholder) = self.by_attr.get(attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.by_attr.len());
        self.by_attr.insert(attr.to_owned(), placeholder.clone());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// A fresh placeholder for `value`.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The condition as a condition expression.
    pub fn condition(&mut self, condition: &Condition) -> String {
        match condition {
            Condition::Exists => format!("attribute_exists({})", self.name(PK)),
            Condition::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Condition::Equals(attr, value) => {
                let name = self.name(attr);
                let value = self.value(to_dynamo(value));
                format!("{name} = {value}")
            }
            Condition::LessThan(attr, limit) => {
                // Guarded by the type, so a string attribute is never compared with a
                // number whatever the engine does with mixed types: the port says false.
                let name = self.name(attr);
                let number = self.value(AttributeValue::S("N".to_owned()));
                let limit = self.value(AttributeValue::N(limit.to_string()));
                format!("(attribute_type({name}, {number}) AND {name} < {limit})")
            }
            Condition::AttrMissing(attr) => {
                format!("attribute_not_exists({})", self.name(attr))
            }
            Condition::And(all) if all.is_empty() => self.always(true),
            Condition::Or(any) if any.is_empty() => self.always(false),
            Condition::And(all) => self.join(all, " AND "),
            Condition::Or(any) => self.join(any, " OR "),
        }
    }

    fn join(&mut self, conditions: &[Condition], operator: &str) -> String {
        let parts: Vec<String> = conditions.iter().map(|c| self.condition(c)).collect();
        format!("({})", parts.join(operator))
    }

    /// An expression that always holds (or never does), for empty `And`/`Or`.
    fn always(&mut self, holds: bool) -> String {
        let pk = self.name(PK);
        if holds {
            format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
        } else {
            format!("(attribute_exists({pk}) AND attribute_not_exists({pk}))")
        }
    }

    /// The update as an update expression: `SET .. ADD .. REMOVE ..`. An update that
    /// changes nothing removes an attribute no item has, so that it still creates a
    /// missing item (as the port says) and stays a valid expression.
    pub fn update(&mut self, update: &Update) -> String {
        let mut clauses = Vec::new();
        if !update.set.is_empty() {
            let sets: Vec<String> = update
                .set
                .iter()
                .map(|(attr, value)| {
                    let name = self.name(attr);
                    let value = self.value(to_dynamo(value));
                    format!("{name} = {value}")
                })
                .collect();
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !update.add.is_empty() {
            let adds: Vec<String> = update
                .add
                .iter()
                .map(|(attr, delta)| {
                    let name = self.name(attr);
                    let value = self.value(AttributeValue::N(delta.to_string()));
                    format!("{name} {value}")
                })
                .collect();
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        let removes: Vec<String> =
            if update.set.is_empty() && update.add.is_empty() && update.remove.is_empty() {
                vec![self.name(NOTHING)]
            } else {
                update.remove.iter().map(|attr| self.name(attr)).collect()
            };
        if !removes.is_empty() {
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        clauses.join(" ")
    }

    /// The attribute-name placeholders, or `None` when there are none.
    pub fn take_names(&mut self) -> Option<HashMap<String, String>> {
        Some(std::mem::take(&mut self.names)).filter(|m| !m.is_empty())
    }

    /// The value placeholders, or `None` when there are none.
    pub fn take_values(&mut self) -> Option<HashMap<String, AttributeValue>> {
        Some(std::mem::take(&mut self.values)).filter(|m| !m.is_empty())
    }
}

/// An attribute no item ever has, removed by an update that changes nothing.
const NOTHING: &str = "tlao:nothing";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_quota_condition_becomes_one_expression_with_each_name_once() {
        let mut p = Placeholders::default();
        let expression = p.condition(&Condition::Or(vec![
            Condition::AttrMissing("count".into()),
            Condition::LessThan("count".into(), 10),
        ]));
        assert_eq!(
            expression,
            "(attribute_not_exists(#n0) OR (attribute_type(#n0, :v0) AND #n0 < :v1))"
        );
        assert_eq!(p.take_names().unwrap()["#n0"], "count");
        let values = p.take_values().unwrap();
        assert_eq!(values[":v0"], AttributeValue::S("N".into()));
        assert_eq!(values[":v1"], AttributeValue::N("10".into()));
    }

    #[test]
    fn existence_tests_the_partition_key() {
        let mut p = Placeholders::default();
        assert_eq!(p.condition(&Condition::Exists), "attribute_exists(#n0)");
        assert_eq!(
            p.condition(&Condition::NotExists),
            "attribute_not_exists(#n0)"
        );
        assert_eq!(p.take_names().unwrap()["#n0"], PK);
        assert_eq!(p.take_values(), None);
    }

    #[test]
    fn an_update_sets_adds_and_removes_in_one_expression() {
        let mut p = Placeholders::default();
        let update = Update::new()
            .set("status", AttrValue::S("running".into()))
            .add("active", -1)
            .remove("leaseId");
        assert_eq!(p.update(&update), "SET #n0 = :v0 ADD #n1 :v1 REMOVE #n2");
        let values = p.take_values().unwrap();
        assert_eq!(values[":v1"], AttributeValue::N("-1".into()));
    }

    #[test]
    fn an_empty_update_still_makes_a_valid_expression() {
        let mut p = Placeholders::default();
        assert_eq!(p.update(&Update::new()), "REMOVE #n0");
        assert_eq!(p.take_names().unwrap()["#n0"], NOTHING);
    }

    #[test]
    fn empty_and_holds_and_empty_or_does_not() {
        let mut p = Placeholders::default();
        assert_eq!(
            p.condition(&Condition::And(vec![])),
            "(attribute_exists(#n0) OR attribute_not_exists(#n0))"
        );
        assert_eq!(
            p.condition(&Condition::Or(vec![])),
            "(attribute_exists(#n0) AND attribute_not_exists(#n0))"
        );
    }
}
