//! How the SQLite table stores an item's attributes: a compact binary form.
//!
//! An item's largest attribute is usually a document that is itself JSON (a run, an
//! event). Stored as JSON text, every quote in it was escaped on each write and
//! unescaped on each read: decoding a run's 1 KB of attributes took 1.9 µs, more than
//! SQLite's read of the row. In this form a string is its length and its bytes: a read
//! checks the UTF-8 and copies it, nothing more.
//!
//! The form, version [`FORMAT`]: one version byte, then each attribute in ascending
//! name order (names unique): the name as a string, a tag and the value.
//!
//! | part | bytes |
//! |---|---|
//! | string | length (`u32`, little-endian), then that many bytes of UTF-8 |
//! | `S` value | `b'S'`, a string |
//! | `N` value | `b'N'`, the `i64`, little-endian |
//! | `Bool` value | `b'B'`, `0` or `1` |
//!
//! Rows written before this form hold JSON text (SQLite's `TEXT`, this form is a
//! `BLOB`); [`crate::SqliteTable`] reads both, and writes this one.

use std::fmt;

use tlao_ports::{AttrValue, Attrs};

/// The version byte this code writes and reads.
const FORMAT: u8 = 1;

const TAG_S: u8 = b'S';
const TAG_N: u8 = b'N';
const TAG_BOOL: u8 = b'B';

/// Why stored bytes are not attributes in this form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed stored attributes: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// The attributes in this form. Fails only for a string longer than 4 GiB, which the
/// table (SQLite's largest value is 1 GB) could not store anyway.
pub(crate) fn encode(attrs: &Attrs) -> Result<Vec<u8>, Malformed> {
    let size = attrs
        .iter()
        .map(|(name, value)| {
            4 + name.len()
                + 1
                + match value {
                    AttrValue::S(text) => 4 + text.len(),
                    AttrValue::N(_) => 8,
                    AttrValue::Bool(_) => 1,
                }
        })
        .sum::<usize>();
    let mut out = Vec::with_capacity(1 + size);
    out.push(FORMAT);
    for (name, value) in attrs {
        put_str(&mut out, name)?;
        match value {
            AttrValue::S(text) => {
                out.push(TAG_S);
                put_str(&mut out, text)?;
            }
            AttrValue::N(number) => {
                out.push(TAG_N);
                out.extend_from_slice(&number.to_le_bytes());
            }
            AttrValue::Bool(flag) => {
                out.push(TAG_BOOL);
                out.push(u8::from(*flag));
            }
        }
    }
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, text: &str) -> Result<(), Malformed> {
    let len = u32::try_from(text.len())
        .map_err(|_| Malformed(format!("a string of {} bytes is too long", text.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// The attributes `bytes` hold; `Malformed` (never a panic) for anything
/// [`encode`] could not have written.
pub(crate) fn decode(bytes: &[u8]) -> Result<Attrs, Malformed> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.byte()?;
    if version != FORMAT {
        return Err(Malformed(format!("unknown version {version}")));
    }
    let mut attrs: Vec<(String, AttrValue)> = Vec::new();
    while reader.at < bytes.len() {
        let name = reader.str()?;
        if let Some((previous, _)) = attrs.last()
            && name <= previous.as_str()
        {
            return Err(Malformed(format!(
                "attribute {:?} follows {:?}: names must ascend",
                shown(name),
                shown(previous)
            )));
        }
        let value = match reader.byte()? {
            TAG_S => AttrValue::S(reader.str()?.to_owned()),
            TAG_N => {
                let mut number = [0; 8];
                number.copy_from_slice(reader.take(8)?);
                AttrValue::N(i64::from_le_bytes(number))
            }
            TAG_BOOL => match reader.byte()? {
                0 => AttrValue::Bool(false),
                1 => AttrValue::Bool(true),
                other => return Err(Malformed(format!("{other} is not a boolean"))),
            },
            other => {
                return Err(Malformed(format!(
                    "unknown tag {other} of {:?}",
                    shown(name)
                )));
            }
        };
        attrs.push((name.to_owned(), value));
    }
    // Already in order: the map is built from the sorted run without sorting again.
    Ok(attrs.into_iter().collect())
}

/// At most the first 64 characters of a name read from a corrupted row, for a message.
fn shown(name: &str) -> &str {
    name.char_indices()
        .nth(64)
        .map_or(name, |(end, _)| &name[..end])
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                Malformed(format!(
                    "{len} bytes wanted at {} of {}",
                    self.at,
                    self.bytes.len()
                ))
            })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn str(&mut self) -> Result<&'a str, Malformed> {
        let mut len = [0; 4];
        len.copy_from_slice(self.take(4)?);
        let len = usize::try_from(u32::from_le_bytes(len))
            .map_err(|_| Malformed("a length past this machine's addresses".into()))?;
        std::str::from_utf8(self.take(len)?)
            .map_err(|err| Malformed(format!("a string is not UTF-8: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attrs {
        Attrs::from([
            (
                "doc".to_owned(),
                AttrValue::S(r#"{"runId":"run_1","note":"a \"quoted\" é \n line"}"#.into()),
            ),
            ("kind".to_owned(), AttrValue::S("run".into())),
            ("empty".to_owned(), AttrValue::S(String::new())),
            ("rev".to_owned(), AttrValue::N(-7)),
            ("max".to_owned(), AttrValue::N(i64::MAX)),
            ("yes".to_owned(), AttrValue::Bool(true)),
            ("no".to_owned(), AttrValue::Bool(false)),
        ])
    }

    #[test]
    fn attributes_read_back_as_written() {
        for attrs in [sample(), Attrs::new()] {
            let bytes = encode(&attrs).unwrap();
            assert_eq!(bytes[0], FORMAT);
            assert_eq!(decode(&bytes).unwrap(), attrs);
        }
    }

    #[test]
    fn every_cut_short_form_is_malformed_not_a_panic() {
        let bytes = encode(&sample()).unwrap();
        // Every prefix that ends inside an attribute; the ones ending between two
        // attributes are whole (fewer) attributes.
        let mut whole = 0;
        for len in 0..bytes.len() {
            if let Ok(attrs) = decode(&bytes[..len]) {
                whole += 1;
                assert!(attrs.len() < sample().len());
            }
        }
        assert_eq!(
            whole,
            sample().len(),
            "one whole prefix per attribute boundary"
        );
    }

    #[test]
    fn bytes_this_code_cannot_have_written_are_malformed() {
        let good = encode(&Attrs::from([("a".to_owned(), AttrValue::Bool(true))])).unwrap();
        let with = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            decode(&bytes)
        };
        assert!(with(0, 2).is_err(), "unknown version");
        assert!(with(6, b'X').is_err(), "unknown tag");
        assert!(with(7, 2).is_err(), "not a boolean");
        assert!(with(5, 0xff).is_err(), "not UTF-8");
        assert!(with(1, 9).is_err(), "a length past the end");
        // Names out of order, and twice.
        let mut twice = good.clone();
        twice.extend_from_slice(&good[1..]);
        assert!(decode(&twice).is_err());
        let b_then_a = [
            &encode(&Attrs::from([("b".to_owned(), AttrValue::N(1))])).unwrap()[..],
            &good[1..],
        ]
        .concat();
        assert!(decode(&b_then_a).is_err());
        assert!(
            decode(b"{\"a\":{\"N\":1}}").is_err(),
            "JSON text is not this form"
        );
        // A long corrupted name is cut short in the message.
        let long = "n".repeat(10_000);
        let mut bad = encode(&Attrs::from([(long, AttrValue::Bool(true))])).unwrap();
        let tag = bad.len() - 2;
        bad[tag] = b'X';
        let message = decode(&bad).unwrap_err().to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
    }
}
