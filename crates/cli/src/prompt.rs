//! The prompt of `tlao run`: the argument; else standard input when it is piped; else
//! `$VISUAL` / `$EDITOR` (or `vi`) on a temporary file, the way `git commit` asks for a
//! message. Lines starting with `#` in the edited file are instructions and dropped. A
//! prompt that is empty once trimmed is a usage error (exit 2).

use std::io::{IsTerminal, Read};
use std::process::Command;

use anyhow::Context;

use crate::errors::CliError;

/// The instructions written into the editor's file.
const TEMPLATE: &str = "\n\
# Write the prompt for the agent above. Lines starting with '#' are ignored;\n\
# an empty prompt cancels the run.\n";

/// The prompt, from `given`, piped stdin, or an editor; `what` names the task type
/// in the editor's instructions.
pub fn resolve(given: Option<String>, what: &str) -> anyhow::Result<String> {
    let prompt = match given {
        Some(prompt) if prompt == "-" => read_stdin()?,
        Some(prompt) => prompt,
        None if !std::io::stdin().is_terminal() => read_stdin()?,
        None => edit(what)?,
    };
    let prompt = prompt.trim().to_owned();
    if prompt.is_empty() {
        return Err(CliError::Usage(
            "the prompt is empty: give it as an argument, pipe it on stdin, or write it in the editor"
                .into(),
        )
        .into());
    }
    Ok(prompt)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the prompt from stdin")?;
    Ok(text)
}

/// Opens the user's editor on a temporary file and returns what it holds, minus
/// comment lines.
fn edit(what: &str) -> anyhow::Result<String> {
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let file = tempfile::Builder::new()
        .prefix("tlao-prompt-")
        .suffix(".md")
        .tempfile()
        .context("creating a file for the prompt")?;
    std::fs::write(file.path(), format!("{TEMPLATE}# Task type: {what}\n"))
        .context("writing the prompt template")?;
    // The editor may carry arguments (`code --wait`): let the shell split them.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("tlao-editor")
        .arg(file.path())
        .status()
        .with_context(|| format!("starting the editor {editor:?}"))?;
    if !status.success() {
        return Err(CliError::Usage(format!(
            "the editor {editor:?} exited with {status}; no run was started"
        ))
        .into());
    }
    let text = std::fs::read_to_string(file.path()).context("reading the prompt back")?;
    Ok(strip_comments(&text))
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_lines_of_the_editor_file_are_dropped() {
        assert_eq!(
            strip_comments("make a plan\n# instructions\nfor X\n"),
            "make a plan\nfor X"
        );
    }

    #[test]
    fn a_blank_prompt_is_a_usage_error() {
        let error = resolve(Some("  \n ".into()), "plan").unwrap_err();
        assert!(matches!(
            error.downcast_ref::<CliError>(),
            Some(CliError::Usage(_))
        ));
    }
}
