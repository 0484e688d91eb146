//! An incremental `text/event-stream` parser (the WHATWG "event stream interpretation"):
//! bytes go in as they arrive, split anywhere; complete messages come out.
//!
//! Lines end with LF, CRLF or CR (a CRLF split across two chunks counts once); a line
//! starting with `:` is a comment; `field: value` loses one space after the colon;
//! `data` lines accumulate, joined with LF; a blank line dispatches the message, unless
//! it has no data. Unknown fields are ignored. A message cut off by the end of the
//! connection is never dispatched: the caller reconnects and asks for it again.

/// One dispatched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event` field, `message` when absent.
    pub event: String,
    /// The `data` lines, joined with LF.
    pub data: String,
    /// The `id` field of this message, if it had one.
    pub id: Option<String>,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The last chunk ended with CR: a leading LF of the next one ends nothing.
    after_cr: bool,
    /// The `event` field of the message being read.
    event: Option<String>,
    /// Its `data` lines, each followed by LF.
    data: String,
    /// Its `id` field.
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Forgets any partial line or message (a new connection starts afresh).
    pub fn reset(&mut self) {
        *self = SseParser::default();
    }

    /// Consumes `chunk` and returns the messages it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut messages = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.line_done(&line) {
                        messages.push(message);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        messages
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseMessage> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseMessage> {
        let event = self.event.take();
        let id = self.id.take();
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return None;
        }
        data.pop();
        Some(SseMessage {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: &str, data: &str, id: Option<&str>) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
            id: id.map(str::to_owned),
        }
    }

    const STREAM: &str = ": keep-alive\n\nid: 1\nevent: log\ndata: {\"seq\":1}\n\n\
                          data: first\ndata:second\r\n\r\nevent: end\rid: 2\rdata: é\r\r\
                          data\n\nevent: nothing\n\nretry: 10\nunknown: x\ndata: last\n\n";

    fn expected() -> Vec<SseMessage> {
        vec![
            message("log", "{\"seq\":1}", Some("1")),
            message("message", "first\nsecond", None),
            message("end", "é", Some("2")),
            message("message", "", None),
            message("message", "last", None),
        ]
    }

    #[test]
    fn messages_are_parsed_whatever_the_line_endings() {
        assert_eq!(SseParser::new().feed(STREAM.as_bytes()), expected());
    }

    #[test]
    fn messages_are_the_same_however_the_bytes_are_split() {
        let bytes = STREAM.as_bytes();
        for size in 1..bytes.len() {
            let mut parser = SseParser::new();
            let messages: Vec<SseMessage> = bytes
                .chunks(size)
                .flat_map(|chunk| parser.feed(chunk))
                .collect();
            assert_eq!(messages, expected(), "chunks of {size} bytes");
        }
    }

    #[test]
    fn an_unfinished_message_is_not_dispatched_and_reset_forgets_it() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"id: 3\nevent: log\ndata: {\"se").is_empty());
        parser.reset();
        assert_eq!(
            parser.feed(b"data: fresh\n\n"),
            vec![message("message", "fresh", None)]
        );
    }
}
