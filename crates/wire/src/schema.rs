//! Hand-written OpenAPI schemas, for the shapes the derive cannot describe exactly:
//! a tagged enum whose variants refuse unknown fields (the derive leaves their objects
//! open), and a field required by another's value (`error` with `status: failed`).
//! Each is checked against what the server accepts by the property-based run of
//! `scripts/lib/schemathesis.sh`.

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::events::{PlanEntryView, ToolCallView};
use crate::names::LogStreamName;
use crate::runs::{RunErrorView, UsageView};
use crate::sandbox::NetworkPolicyBody;
use crate::worker::{CompleteRequest, WorkerEvent};

/// The pattern of a lease id (`lease_` and a ULID).
pub(crate) const LEASE_ID_PATTERN: &str = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$";

/// An object that refuses properties it does not list.
fn closed_object(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

/// A string.
fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A whole number, 0 or more, as large as a `u64`.
fn count() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
}

/// A string that is one of `values`.
fn one_of_strings(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

/// A reference to the component of `T`.
fn reference<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

/// The component of `T` (and those it refers to), for [`ToSchema::schemas`].
fn push<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

impl ToSchema for WorkerEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        push::<LogStreamName>(schemas);
        push::<ToolCallView>(schemas);
        push::<PlanEntryView>(schemas);
        push::<UsageView>(schemas);
    }
}

impl PartialSchema for WorkerEvent {
    fn schema() -> RefOr<Schema> {
        let percent = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(0))
            .maximum(Some(100))
            .description(Some("How far along, 0 to 100, when known."));
        OneOfBuilder::new()
            .description(Some(
                "An event as a worker reports it, told apart by `type`; the server numbers \
                 and stamps it. Status, artifact and truncation events are the server's own \
                 and cannot be sent.",
            ))
            .item(
                closed_object("A line of output, ANSI-free.")
                    .property("type", one_of_strings(&["log"]))
                    .required("type")
                    .property("stream", reference::<LogStreamName>())
                    .required("stream")
                    .property(
                        "text",
                        string().description(Some("The text, without the trailing newline.")),
                    )
                    .required("text"),
            )
            .item(
                closed_object("A progress report.")
                    .property("type", one_of_strings(&["progress"]))
                    .required("type")
                    .property("message", string().description(Some("What is happening.")))
                    .required("message")
                    .property("percent", percent),
            )
            .item(
                closed_object("The agent called a tool, or a call changed (same `call.id`).")
                    .property("type", one_of_strings(&["tool_call"]))
                    .required("type")
                    .property("call", reference::<ToolCallView>())
                    .required("call"),
            )
            .item(
                closed_object("The agent's plan as it stands now.")
                    .property("type", one_of_strings(&["plan"]))
                    .required("type")
                    .property(
                        "entries",
                        utoipa::openapi::schema::ArrayBuilder::new()
                            .items(reference::<PlanEntryView>()),
                    )
                    .required("entries"),
            )
            .item(
                closed_object("Text the agent addressed to the user, in whole lines.")
                    .property("type", one_of_strings(&["message"]))
                    .required("type")
                    .property("text", string())
                    .required("text"),
            )
            .item(
                closed_object("What the run has cost so far.")
                    .property("type", one_of_strings(&["usage"]))
                    .required("type")
                    .property("usage", reference::<UsageView>())
                    .required("usage"),
            )
            .item(
                closed_object(
                    "Events the worker could not deliver and dropped (its buffer overflowed \
                     while the server was unreachable, or the server refused the batch that \
                     held them).",
                )
                .property("type", one_of_strings(&["dropped"]))
                .required("type")
                .property(
                    "lines",
                    count().description(Some("How many events (log lines and progress reports).")),
                )
                .required("lines")
                .property(
                    "bytes",
                    count().description(Some(
                        "The log bytes among them (each line's text plus its newline).",
                    )),
                )
                .required("bytes"),
            )
            .into()
    }
}

impl ToSchema for CompleteRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        push::<RunErrorView>(schemas);
        push::<UsageView>(schemas);
    }
}

impl PartialSchema for CompleteRequest {
    /// Two shapes, told apart by `status`: `failed` requires an `error`; the other
    /// endings may carry one (it is not kept).
    fn schema() -> RefOr<Schema> {
        let ending = |description: &str, statuses: &[&str]| {
            closed_object(description)
                .property(
                    "leaseId",
                    string()
                        .pattern(Some(LEASE_ID_PATTERN))
                        .description(Some("The lease (`lease_...`).")),
                )
                .required("leaseId")
                .property(
                    "status",
                    one_of_strings(statuses).description(Some("How it ended.")),
                )
                .required("status")
                .property("usage", reference::<UsageView>())
        };
        let error_or_null = OneOfBuilder::new()
            .item(reference::<RunErrorView>())
            .item(ObjectBuilder::new().schema_type(Type::Null));
        OneOfBuilder::new()
            .description(Some(
                "`POST /worker/runs/{id}/complete`: how the run ended, as the worker saw it, \
                 and what it cost (`usage`, when the executor reported it).",
            ))
            .item(
                ending(
                    "The executor or the worker failed: `error` says why.",
                    &["failed"],
                )
                .property("error", reference::<RunErrorView>())
                .required("error"),
            )
            .item(
                ending(
                    "The executor succeeded, or the worker stopped it at the deadline or \
                     because the run was cancelled.",
                    &["completed", "timed_out", "cancelled"],
                )
                .property("error", error_or_null),
            )
            .into()
    }
}

impl ToSchema for NetworkPolicyBody {}

impl PartialSchema for NetworkPolicyBody {
    /// `"any"`, `"none"`, or an object with only `tcpPorts`.
    fn schema() -> RefOr<Schema> {
        let port = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(65535));
        let ports = utoipa::openapi::schema::ArrayBuilder::new()
            .items(port)
            .max_items(Some(tlao_domain::sandbox::MAX_GRANTS))
            .description(Some("The TCP ports the agent may connect to."));
        OneOfBuilder::new()
            .description(Some(
                "Where the agent may connect: `any` (the default), `none`, or only the \
                 listed TCP ports.",
            ))
            .item(one_of_strings(&["any", "none"]))
            .item(
                closed_object("TCP connections to these ports only; no binds.")
                    .property("tcpPorts", ports)
                    .required("tcpPorts"),
            )
            .into()
    }
}
