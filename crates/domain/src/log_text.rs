//! A run's log text, escaped for JSON at most once.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A run's log text as the API shows it: a JSON string on the wire.
///
/// Made with [`LogText::escaped`], it also holds its JSON form, escaped once; serialising
/// it then copies those bytes instead of escaping every line again. The server keeps a
/// finished run's log so, since it answers the same text many times (a run's 1,000 lines
/// made escaping most of what `GET /runs/{id}` cost). Cloning shares the text.
#[derive(Clone)]
pub struct LogText {
    text: Arc<str>,
    json: Option<Arc<RawValue>>,
}

impl LogText {
    /// `text` with its JSON form made now, for a text that will be sent more than once.
    pub fn escaped(text: &str) -> LogText {
        LogText {
            text: Arc::from(text),
            // Escaping a string cannot fail; were it to, the text is escaped when sent.
            json: serde_json::value::to_raw_value(text).ok().map(Arc::from),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for LogText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<String> for LogText {
    fn from(text: String) -> Self {
        LogText {
            text: Arc::from(text),
            json: None,
        }
    }
}

impl From<&str> for LogText {
    fn from(text: &str) -> Self {
        LogText {
            text: Arc::from(text),
            json: None,
        }
    }
}

impl PartialEq for LogText {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for LogText {}

impl fmt::Debug for LogText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl Serialize for LogText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.json {
            Some(json) => json.serialize(serializer),
            None => serializer.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for LogText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(LogText::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn log_text_escaped_ahead_is_the_same_json_as_escaped_when_sent() {
        let text = "line \"1\"\n\ttab\\back\u{1}\u{1f}\u{7f} é ✓ 😀\r\n</script>\n";
        let plain = LogText::from(text);
        let ahead = LogText::escaped(text);
        let expected = serde_json::to_string(text).unwrap();
        assert_eq!(serde_json::to_string(&plain).unwrap(), expected);
        assert_eq!(serde_json::to_string(&ahead).unwrap(), expected);
        assert_eq!(serde_json::to_value(&ahead).unwrap(), json!(text));
        assert_eq!(ahead, plain);
        assert_eq!(ahead.as_str(), text);
        let back: LogText = serde_json::from_str(&expected).unwrap();
        assert_eq!(back.as_str(), text);
    }
}
