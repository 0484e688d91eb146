//! How the client commands print: data on stdout (a table for people, JSON with
//! `--json`), everything else (progress, notes, errors) on stderr. Colours only when the
//! stream is a terminal and `NO_COLOR` is unset.

use std::io::{IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use console::Style;
use serde::Serialize;
use tlao_domain::Timestamp;
use tlao_sdk::wire::RunStatusName;

/// Sets up colours: off for a stream that is not a terminal (console's own check) and
/// everywhere when `NO_COLOR` is set.
pub fn init_colors() {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
}

/// Whether stderr is a terminal (progress bars and notes are drawn only then).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// Prints `value` as one line of JSON on stdout (a stream of events).
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// `text` as it may reach a terminal: without control characters other than tab and
/// line feed, so text a run produced cannot move the cursor, recolour or rewrite the
/// lines before it.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
        .collect()
}

/// A note for people on stderr (dimmed on a terminal).
pub fn note(text: impl AsRef<str>) {
    eprintln!(
        "{}",
        Style::new().for_stderr().dim().apply_to(text.as_ref())
    );
}

/// A success line on stderr.
pub fn success(text: impl AsRef<str>) {
    eprintln!(
        "{} {}",
        Style::new().for_stderr().green().bold().apply_to("✓"),
        text.as_ref()
    );
}

/// A warning line on stderr.
pub fn warn(text: impl AsRef<str>) {
    eprintln!(
        "{} {}",
        Style::new()
            .for_stderr()
            .yellow()
            .bold()
            .apply_to("warning:"),
        text.as_ref()
    );
}

/// The style of a run status: green when completed, red when failed or timed out,
/// yellow when cancelled, cyan while running.
pub fn status_style(status: RunStatusName) -> Style {
    match status {
        RunStatusName::Completed => Style::new().green(),
        RunStatusName::Failed | RunStatusName::TimedOut => Style::new().red(),
        RunStatusName::Cancelled => Style::new().yellow(),
        RunStatusName::Running => Style::new().cyan(),
        RunStatusName::Queued => Style::new().dim(),
    }
}

/// A table for stdout: left-aligned columns, two spaces apart, headers in bold.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<(String, Option<Style>)>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of plain cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|cell| (cell, None)).collect());
    }

    /// Adds a row whose cells may carry a style.
    pub fn styled_row(&mut self, cells: Vec<(String, Option<Style>)>) {
        self.rows.push(cells);
    }

    /// Prints it on stdout.
    pub fn print(&self) -> anyhow::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        let bold = Style::new().bold();
        let header: Vec<String> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                bold.apply_to(pad(h, widths[i], i + 1 == widths.len()))
                    .to_string()
            })
            .collect();
        writeln!(stdout, "{}", header.join("  "))?;
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, (cell, style))| {
                    let padded = pad(
                        cell,
                        widths.get(i).copied().unwrap_or(0),
                        i + 1 == row.len(),
                    );
                    match style {
                        Some(style) => style.apply_to(padded).to_string(),
                        None => padded,
                    }
                })
                .collect();
            writeln!(stdout, "{}", cells.join("  "))?;
        }
        Ok(())
    }
}

fn pad(text: &str, width: usize, last: bool) -> String {
    if last {
        return text.to_owned();
    }
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// Now, as the API writes time.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(millis)
}

/// A byte count for people: `512 B`, `12.3 KiB`, `30.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration for people: `850ms`, `4.2s`, `3m 05s`, `1h 02m`.
pub fn human_duration(millis: i64) -> String {
    let millis = millis.max(0);
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis < 60_000 {
        return format!("{:.1}s", millis as f64 / 1000.0);
    }
    let seconds = millis / 1000;
    if seconds < 3600 {
        return format!("{}m {:02}s", seconds / 60, seconds % 60);
    }
    format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
}

/// How long ago `at` was: `just now`, `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.millis_since(at) / 1000;
    match seconds {
        s if s < 5 => "just now".to_owned(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(31_457_280), "30.0 MiB");
        assert_eq!(human_duration(850), "850ms");
        assert_eq!(human_duration(4_200), "4.2s");
        assert_eq!(human_duration(185_000), "3m 05s");
        let now = Timestamp::from_unix_millis(10_000_000);
        assert_eq!(ago(now.plus_millis(-300_000), now), "5m ago");
    }

    #[test]
    fn text_a_run_produced_reaches_the_terminal_without_control_characters() {
        assert_eq!(
            printable("ok\u{1b}[2K\r\u{0}done\tnow\nnext"),
            "ok[2Kdone\tnow\nnext"
        );
    }
}
