//! Prefixed, time-sortable identifiers.
//!
//! Every entity id is a ULID (48-bit millisecond timestamp + 80 random bits, Crockford
//! base32, 26 characters) behind a type prefix: `ws_`, `task_`, `run_`, `art_`, `arc_`,
//! `usr_`, `lease_`, `key_`. Because the timestamp comes first and the alphabet is in ASCII order,
//! ids of one kind sort by creation time as plain strings, which is what lets a
//! single-table `query` return newest-first without a secondary index.
//!
//! The domain never reads a clock or a random source: callers build a [`Ulid`] from parts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Crockford's base32 alphabet, in ASCII order.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID_LEN: usize = 26;

/// A 128-bit ULID: the first 48 bits are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(u128);

impl Ulid {
    /// Builds a ULID from a millisecond timestamp (only the low 48 bits are kept) and
    /// random bits (only the low 80 bits are kept).
    pub fn from_parts(unix_millis: u64, random: u128) -> Self {
        let time = u128::from(unix_millis & 0xFFFF_FFFF_FFFF);
        let random = random & ((1u128 << 80) - 1);
        Ulid((time << 80) | random)
    }

    /// The smallest ULID greater than this one (for monotonic generation within one
    /// millisecond); `None` at the maximum value.
    pub fn successor(self) -> Option<Ulid> {
        self.0.checked_add(1).map(Ulid)
    }

    /// The millisecond timestamp encoded in the first 48 bits.
    pub fn unix_millis(self) -> u64 {
        (self.0 >> 80) as u64
    }

    fn encode(self) -> String {
        let mut out = [0u8; ULID_LEN];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(value & 0x1F) as usize];
            value >>= 5;
        }
        out.iter().map(|&b| b as char).collect()
    }

    fn decode(text: &str) -> Result<Self, IdError> {
        if text.len() != ULID_LEN {
            return Err(IdError::Length { len: text.len() });
        }
        let mut value: u128 = 0;
        for (index, byte) in text.bytes().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|&a| a == byte)
                .ok_or(IdError::Character { index })?;
            if index == 0 && digit > 7 {
                // 26 base32 digits carry 130 bits; a ULID has 128, so the first digit is 0..=7.
                return Err(IdError::Overflow);
            }
            value = (value << 5) | digit as u128;
        }
        Ok(Ulid(value))
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string does not start with the id's prefix.
    #[error("expected an id starting with \"{expected}\"")]
    Prefix {
        /// The prefix this kind of id must have.
        expected: &'static str,
    },
    /// The part after the prefix is not 26 characters long.
    #[error("expected 26 characters after the prefix, found {len}")]
    Length {
        /// How many characters were found.
        len: usize,
    },
    /// A character is not in the upper-case Crockford base32 alphabet.
    #[error("character {index} after the prefix is not upper-case Crockford base32")]
    Character {
        /// Zero-based position after the prefix.
        index: usize,
    },
    /// The value does not fit in 128 bits.
    #[error("the id does not fit in 128 bits")]
    Overflow,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Builds the id for a ULID.
            pub fn new(ulid: Ulid) -> Self {
                Self(format!("{}{}", $prefix, ulid))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ULID behind the id.
            pub fn ulid(&self) -> Ulid {
                // Invariant: the text was validated on construction.
                Ulid::decode(&self.0[$prefix.len()..]).unwrap_or(Ulid(0))
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let rest = text
                    .strip_prefix($prefix)
                    .ok_or(IdError::Prefix { expected: $prefix })?;
                Ulid::decode(rest)?;
                Ok(Self(text.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

prefixed_id!(
    /// Identifies a workspace: `ws_<ulid>`.
    WorkspaceId,
    "ws_"
);
prefixed_id!(
    /// Identifies a task: `task_<ulid>`.
    TaskId,
    "task_"
);
prefixed_id!(
    /// Identifies a run: `run_<ulid>`.
    RunId,
    "run_"
);
prefixed_id!(
    /// Identifies an artifact: `art_<ulid>`.
    ArtifactId,
    "art_"
);
prefixed_id!(
    /// Identifies an uploaded workspace archive: `arc_<ulid>`.
    ArchiveId,
    "arc_"
);
prefixed_id!(
    /// Identifies a user: `usr_<ulid>`.
    UserId,
    "usr_"
);
prefixed_id!(
    /// Identifies one worker's lease on a run: `lease_<ulid>`.
    LeaseId,
    "lease_"
);
prefixed_id!(
    /// Identifies one API key of a user: `key_<ulid>` (never the key itself).
    KeyId,
    "key_"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_id_round_trips_through_its_text() {
        let id = RunId::new(Ulid::from_parts(1_700_000_000_000, 42));
        let parsed: RunId = id.as_str().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.ulid().unix_millis(), 1_700_000_000_000);
        assert!(id.as_str().starts_with("run_"));
        assert_eq!(id.as_str().len(), 4 + 26);
    }

    #[test]
    fn malformed_ids_are_rejected_with_the_reason() {
        assert_eq!(
            "task_01HZZZZZZZZZZZZZZZZZZZZZZZ".parse::<RunId>(),
            Err(IdError::Prefix { expected: "run_" })
        );
        assert_eq!("run_123".parse::<RunId>(), Err(IdError::Length { len: 3 }));
        assert_eq!(
            "run_01HZZZZZZZZZZZZZZZZZZZZZZU".parse::<RunId>(),
            Err(IdError::Character { index: 25 })
        );
        assert_eq!(
            format!("run_01h{}", "Z".repeat(23)).parse::<RunId>(),
            Err(IdError::Character { index: 2 })
        );
        assert_eq!(
            "run_8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<RunId>(),
            Err(IdError::Overflow)
        );
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        let ok: Result<WorkspaceId, _> = serde_json::from_str("\"ws_01ARZ3NDEKTSV4RRFFQ69G5FAV\"");
        assert!(ok.is_ok());
        let bad: Result<WorkspaceId, _> = serde_json::from_str("\"ws_nope\"");
        assert!(bad.is_err());
    }

    proptest! {
        #[test]
        fn ids_sort_by_time(a in 0u64..(1 << 48), b in 0u64..(1 << 48), ra: u128, rb: u128) {
            let x = RunId::new(Ulid::from_parts(a, ra));
            let y = RunId::new(Ulid::from_parts(b, rb));
            if a < b {
                prop_assert!(x.as_str() < y.as_str());
            }
            prop_assert_eq!(x.as_str().parse::<RunId>().unwrap(), x.clone());
        }
    }
}
