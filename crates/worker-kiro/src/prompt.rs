//! The prompt an agent receives: the user's prompt plus what the task type asks for
//! and where results go.
//!
//! The instructions are plain sentences an agent can follow: a `spec.generate` task
//! writes its plan as JSON to `<out>/plan.json`, a `doc.write` task writes documents
//! into `<out>`, a `code.change` task edits the working directory (the worker turns
//! the edits into `changes.patch`), a `deploy.run` task records what it did in `<out>`.
//! The prompt never starts with `-`, so a CLI cannot mistake it for an option.

use std::fmt::Write as _;
use std::path::Path;

use tlao_domain::{TaskSpec, TaskType};

/// The prompt for `spec` when the agent's output directory is `outdir`.
pub fn build_prompt(spec: &TaskSpec, outdir: &Path) -> String {
    let out = outdir.display();
    let mut prompt = String::new();
    let request = spec.input.prompt.as_str().trim_end();
    if request.starts_with('-') {
        // An argument starting with '-' would be read as an option by the agent's CLI.
        prompt.push_str("Request:\n");
    }
    prompt.push_str(request);
    prompt.push_str("\n\n---\n");
    let _ = writeln!(
        prompt,
        "You are running unattended as a TLÁO Codex {} task; nobody can answer questions, so make reasonable assumptions and note them.",
        spec.task_type
    );
    prompt.push_str("The current working directory holds the workspace.\n");
    match spec.task_type {
        TaskType::SpecGenerate => {
            let _ = writeln!(
                prompt,
                "Produce an execution plan for the request above. Write the plan as a JSON file at {out}/plan.json, with a \"title\", a \"summary\" and a list of \"steps\" (each with a \"title\" and a \"description\"). Leave the files in the working directory as they are."
            );
        }
        TaskType::DocWrite => {
            let _ = writeln!(
                prompt,
                "Write the requested documentation as Markdown files in the directory {out}. Leave the files in the working directory as they are."
            );
        }
        TaskType::CodeChange => {
            prompt.push_str(
                "Make the requested change by editing, creating or deleting files in the working directory; your edits are collected as a patch.\n",
            );
            let _ = writeln!(
                prompt,
                "Files you write to {out} are kept as extra outputs."
            );
        }
        TaskType::DeployRun => {
            let _ = writeln!(
                prompt,
                "Carry out the requested deployment from the working directory, and write a short Markdown report of what you did (resources, URLs, outputs) to {out}/deployment.md."
            );
        }
    }
    if let Some(expected) = &spec.expected_output {
        if let Some(description) = &expected.description {
            let _ = writeln!(prompt, "Expected result: {}", description.trim());
        }
        if !expected.artifact_types.is_empty() {
            let types: Vec<&str> = expected.artifact_types.iter().map(|t| t.as_str()).collect();
            let _ = writeln!(prompt, "Expected outputs: {}.", types.join(", "));
        }
    }
    if let Some(budget) = spec.constraints.token_budget {
        let _ = writeln!(prompt, "Stay within a budget of {budget} tokens.");
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(task_type: &str, prompt: &str) -> TaskSpec {
        TaskSpec::parse(&json!({"taskType": task_type, "input": {"prompt": prompt}}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_plan_prompt_names_the_plan_file() {
        let prompt = build_prompt(&spec("spec.generate", "plan a cache"), Path::new("/r/out"));
        assert!(prompt.starts_with("plan a cache\n"));
        assert!(prompt.contains("/r/out/plan.json"));
    }

    #[test]
    fn a_prompt_never_starts_like_an_option() {
        let prompt = build_prompt(&spec("code.change", "- fix a\n- fix b"), Path::new("/o"));
        assert!(
            prompt.starts_with("Request:\n- fix a\n- fix b\n"),
            "{prompt}"
        );
    }

    #[test]
    fn each_task_type_says_where_results_go() {
        let out = Path::new("/r/out");
        assert!(
            build_prompt(&spec("doc.write", "x"), out)
                .contains("Markdown files in the directory /r/out")
        );
        assert!(
            build_prompt(&spec("code.change", "x"), out)
                .contains("editing, creating or deleting files")
        );
        assert!(build_prompt(&spec("deploy.run", "x"), out).contains("/r/out/deployment.md"));
    }
}
