//! ANSI escape stripping: agents colour their output for terminals; the run's logs and
//! transcript store plain text.
//!
//! Removes CSI sequences (`ESC [ … final`, also the one-byte `U+009B` introducer), OSC
//! sequences (`ESC ] … BEL` or `ESC ] … ESC \`, e.g. hyperlinks and window titles),
//! other two-byte escapes, and every remaining control character except tab.

/// `text` without ANSI escape sequences and control characters (tabs are kept).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']') => skip_osc(&mut chars),
                // Character-set selection takes one more character, e.g. `ESC ( B`.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                // Any other escape is two characters long (`ESC 7`, `ESC M`, ...).
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' => skip_osc(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `text` as one log line: line breaks become spaces, then escape sequences and other
/// control characters are removed ([`strip_ansi`]), so text quoted in a line (a file
/// name, an agent's error) cannot start a forged line or move a terminal's cursor.
pub fn one_line(text: &str) -> String {
    strip_ansi(&text.replace("\r\n", " ").replace(['\n', '\r'], " "))
}

/// Skips a CSI sequence's parameters and intermediates up to its final byte (`@`–`~`).
fn skip_csi(chars: &mut impl Iterator<Item = char>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Skips an OSC sequence up to its terminator: BEL, `ESC \` or the one-byte ST.
fn skip_osc(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_quoting_line_breaks_and_escapes_stays_one_line() {
        assert_eq!(
            one_line("cannot read \"a\nthe run completed\u{1b}[2K\u{0}\"\r\nagain"),
            "cannot read \"a the run completed\" again"
        );
    }

    #[test]
    fn colours_and_styles_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[1;32m> \u{1b}[0mReading \u{1b}[38;5;8mfiles\u{1b}[m"),
            "> Reading files"
        );
    }

    #[test]
    fn hyperlinks_titles_and_cursor_moves_are_removed() {
        let text = "\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\ \u{1b}[2K\u{1b}[1Gdone\r";
        assert_eq!(strip_ansi(text), "link done");
    }

    #[test]
    fn plain_text_tabs_and_unicode_survive() {
        assert_eq!(
            strip_ansi("▸ Credits: 0.42 •\tTime: 1s"),
            "▸ Credits: 0.42 •\tTime: 1s"
        );
    }

    #[test]
    fn a_truncated_sequence_does_not_eat_past_the_end() {
        assert_eq!(strip_ansi("ok\u{1b}[31"), "ok");
        assert_eq!(strip_ansi("ok\u{1b}"), "ok");
    }
}
