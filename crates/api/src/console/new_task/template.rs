//! The start form's markup: the error summary, then one field per input, each with its
//! hint and, when the form came back, its error (linked from the summary, announced by
//! `aria-describedby` and `aria-invalid`).

use maud::{Markup, html};
use tlao_domain::{ExecutorDescriptor, TaskType, Workspace};

use super::Draft;
use crate::console::page::{self, Ctx};
use crate::console::session;

/// What is wrong with the form: `(field id, message)`; an empty id is about the whole form.
pub(super) type FieldErrors = Vec<(&'static str, String)>;

/// The errors of a form that came back, looked up by field.
struct Errors<'a>(&'a [(&'static str, String)]);

impl Errors<'_> {
    /// The message about field `id`, if any.
    fn of(&self, id: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| *field == id)
            .map(|(_, message)| message.as_str())
    }

    /// The `aria-describedby` of field `id`: its error, if any, and its hint.
    fn described(&self, id: &str) -> String {
        match self.of(id) {
            Some(_) => format!("{id}-error {id}-hint"),
            None => format!("{id}-hint"),
        }
    }

    /// The `aria-invalid` of field `id`.
    fn invalid(&self, id: &str) -> Option<&'static str> {
        self.of(id).map(|_| "true")
    }
}

/// What the form shows besides the draft: the executors to choose from and the
/// workspace's archive limit.
pub(super) struct FormData<'a> {
    pub(super) ws: &'a Workspace,
    pub(super) executors: &'a [ExecutorDescriptor],
    pub(super) max_archive: u64,
}

/// The page's body: the heading, the error summary and the form.
pub(super) fn form_body(
    ctx: &Ctx,
    data: &FormData<'_>,
    draft: &Draft,
    errors: &[(&'static str, String)],
) -> Markup {
    let errors = Errors(errors);
    html! {
        h1 { "Start a task" }
        p class="muted" { "The task runs in workspace " strong { (data.ws.name.as_str()) } "; you will see it live on its run page." }
        (error_summary(&errors))
        form class="stacked" method="post" action="/console/runs" enctype="multipart/form-data" {
            (ctx.csrf_input())
            input type="hidden" name="nonce" value=(session::random_token());
            input type="hidden" name="workspaceId" value=(data.ws.workspace_id);
            (task_type_field(draft, &errors))
            (prompt_field(draft, &errors))
            (executor_field(draft, data.executors, &errors))
            (archive_field(data.max_archive, &errors))
            button type="submit" class="button" { "Start run" }
        }
    }
}

/// The list of what is wrong, each message linked to its field; nothing when all is well.
fn error_summary(errors: &Errors<'_>) -> Markup {
    html! {
        @if !errors.0.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" id="error-summary" tabindex="-1" {
                h2 id="error-summary-title" { "The task was not started" }
                ul {
                    @for (field, message) in errors.0 {
                        @if field.is_empty() {
                            li { (message) }
                        } @else {
                            li { a href={ "#" (field) } { (message) } }
                        }
                    }
                }
            }
        }
    }
}

/// One field: its label, its hint, its error if any, then `control`.
fn field(id: &str, label: &str, hint: Markup, errors: &Errors<'_>, control: Markup) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (label) }
            span class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(message) = errors.of(id) { span class="field-error" id={ (id) "-error" } { (message) } }
            (control)
        }
    }
}

fn task_type_field(draft: &Draft, errors: &Errors<'_>) -> Markup {
    let control = html! {
        select id="taskType" name="taskType" required aria-describedby=(errors.described("taskType")) aria-invalid=[errors.invalid("taskType")] {
            @for task_type in TaskType::ALL {
                option value=(task_type.as_str()) selected[draft.task_type == task_type.as_str()] {
                    (task_type.as_str()) " — " (describe(task_type))
                }
            }
        }
    };
    let hint = html! { "What kind of work the agent should do." };
    field("taskType", "Task type", hint, errors, control)
}

fn prompt_field(draft: &Draft, errors: &Errors<'_>) -> Markup {
    let control = html! {
        textarea id="prompt" name="prompt" required rows="8" aria-describedby=(errors.described("prompt")) aria-invalid=[errors.invalid("prompt")] { (draft.prompt) }
    };
    let hint = html! { "The instruction to the agent, up to 64 KiB." };
    field("prompt", "Prompt", hint, errors, control)
}

fn executor_field(draft: &Draft, executors: &[ExecutorDescriptor], errors: &Errors<'_>) -> Markup {
    let control = html! {
        select id="executor" name="executor" aria-describedby=(errors.described("executor")) aria-invalid=[errors.invalid("executor")] {
            option value="" selected[draft.executor.is_empty()] { "Default (chosen by task type)" }
            @for executor in executors {
                option value=(executor.name) selected[draft.executor == executor.name.as_str()] {
                    (executor.name) " — " (executor.task_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))
                }
            }
        }
    };
    let hint = html! { "Leave on default to use the first executor that serves the task type." };
    field("executor", "Executor", hint, errors, control)
}

fn archive_field(max_archive: u64, errors: &Errors<'_>) -> Markup {
    let control = html! {
        input type="file" id="archive" name="archive" accept=".tar.gz,.tgz,application/gzip"
            aria-describedby=(errors.described("archive")) aria-invalid=[errors.invalid("archive")];
        @if errors.of("archive").is_none() && !errors.0.is_empty() {
            span class="hint" { "If you chose an archive, choose it again: browsers do not keep files across submissions." }
        }
    };
    let hint = html! {
        "A .tar.gz of the repository to work in, up to " (page::bytes(max_archive)) ". "
        "Without one the agent starts in an empty directory."
    };
    field(
        "archive",
        "Workspace archive (optional)",
        hint,
        errors,
        control,
    )
}

/// What a task type is for, in a few words.
fn describe(task_type: TaskType) -> &'static str {
    match task_type {
        TaskType::SpecGenerate => "write a plan or specification",
        TaskType::CodeChange => "change the code (returns a patch)",
        TaskType::DocWrite => "write documentation",
        TaskType::DeployRun => "deploy infrastructure",
    }
}
