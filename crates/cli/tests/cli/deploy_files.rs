//! The deployment files, checked without a container engine: what the Dockerfiles of
//! `deploy/aws` copy from the build context exists and is not excluded by
//! `.dockerignore`; what they copy from their build stage is the binary that stage
//! builds (a package and a `[[bin]]` of this workspace); and the commands the images and
//! the CloudFormation template run are commands `tlao` accepts (parsed by the real
//! binary, values validated, `--help` so nothing runs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Dockerfiles that build `tlao` themselves.
const DOCKERFILES: [&str; 2] = [
    "deploy/aws/Dockerfile.server",
    "deploy/aws/Dockerfile.worker",
];

/// The serverless profile's function image: the server image plus the Lambda Web
/// Adapter (it builds nothing).
const LAMBDA_DOCKERFILE: &str = "deploy/aws/Dockerfile.lambda";

/// The serverless profile's template.
const SERVERLESS: &str = "deploy/aws/serverless.yaml";

/// The repository's root: the images' build context.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// One instruction of a Dockerfile: its keyword, its arguments (continuation lines
/// joined) and the build stage it belongs to.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
    stage: Option<String>,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stage = None;
    logical
        .into_iter()
        .map(|line| {
            let (keyword, args) = line.split_once(' ').unwrap_or((&line, ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                stage = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                    _ => None,
                };
            }
            Instruction {
                keyword,
                args: args.trim().to_owned(),
                stage: stage.clone(),
            }
        })
        .collect()
}

/// A COPY's `--from` stage (if any), its sources and its destination.
fn copy_parts(args: &str) -> (Option<String>, Vec<String>, String) {
    let mut from = None;
    let mut paths = Vec::new();
    for word in args.split_whitespace() {
        if let Some(stage) = word.strip_prefix("--from=") {
            from = Some(stage.to_owned());
        } else if !word.starts_with("--") {
            paths.push(word.to_owned());
        }
    }
    let destination = paths.pop().expect("a COPY names a destination");
    (from, paths, destination)
}

/// Whether `.dockerignore`'s `patterns` exclude `path` (relative to the context): a
/// pattern names the path or a directory above it; `**/name` names a component
/// anywhere.
fn ignored(patterns: &[String], path: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_prefix("**/") {
            Some(name) => path.split('/').any(|component| component == name),
            None => path == pattern || path.starts_with(&format!("{pattern}/")),
        })
}

fn dockerignore() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_owned())
        .collect()
}

/// The workspace's member directories, from the root manifest.
fn members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest.find("members = [").expect("a members list");
    let list = &manifest[start..];
    let list = &list[..list.find(']').expect("the list ends")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The value of `key = "..."` in the first section named `section` of `manifest`.
fn names_in(manifest: &str, section: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == section;
        } else if inside && let Some(value) = line.strip_prefix("name = \"") {
            names.push(value.trim_end_matches('"').to_owned());
        }
    }
    names
}

#[test]
fn what_the_dockerfiles_copy_from_the_context_exists_and_is_not_ignored() {
    let patterns = dockerignore();
    assert!(
        ignored(&patterns, "target"),
        "the build context would carry target/ (gigabytes): add it to .dockerignore"
    );
    let mut needed: Vec<String> = vec!["Cargo.toml".into(), "Cargo.lock".into()];
    needed.extend(members());
    assert!(needed.len() > 2, "no workspace members found");
    for dockerfile in DOCKERFILES {
        let copies: Vec<Instruction> = instructions(&read(dockerfile))
            .into_iter()
            .filter(|i| i.keyword == "COPY" || i.keyword == "ADD")
            .collect();
        assert!(!copies.is_empty(), "{dockerfile} copies nothing");
        for copy in copies {
            let (from, sources, _) = copy_parts(&copy.args);
            if from.is_some() {
                continue;
            }
            for source in sources {
                if source == "." {
                    // The whole context: the workspace build needs every member.
                    for path in &needed {
                        assert!(
                            repo().join(path).exists(),
                            "{dockerfile}: {path} is missing"
                        );
                        assert!(
                            !ignored(&patterns, path),
                            "{dockerfile}: .dockerignore excludes {path}, which the build needs"
                        );
                    }
                } else {
                    assert!(
                        repo().join(&source).exists(),
                        "{dockerfile}: COPY {source}: no such file in the build context"
                    );
                    assert!(
                        !ignored(&patterns, &source),
                        "{dockerfile}: COPY {source}: excluded by .dockerignore"
                    );
                }
            }
        }
    }
}

#[test]
fn what_the_dockerfiles_copy_from_their_build_stage_is_the_binary_it_builds() {
    for dockerfile in DOCKERFILES {
        let all = instructions(&read(dockerfile));
        let mut checked = 0;
        for copy in all.iter().filter(|i| i.keyword == "COPY") {
            let (Some(stage), sources, _) = copy_parts(&copy.args) else {
                continue;
            };
            let runs: Vec<&Instruction> = all
                .iter()
                .filter(|i| i.keyword == "RUN" && i.stage.as_deref() == Some(stage.as_str()))
                .collect();
            assert!(
                !runs.is_empty(),
                "{dockerfile}: COPY --from={stage}: no stage {stage} runs anything"
            );
            for source in sources {
                let build = runs
                    .iter()
                    .find(|run| run.args.contains(&format!(" {source}")))
                    .unwrap_or_else(|| {
                        panic!("{dockerfile}: no RUN of stage {stage} produces {source}")
                    });
                let words: Vec<&str> = build.args.split_whitespace().collect();
                let after = |flag: &str| {
                    words
                        .windows(2)
                        .find(|pair| pair[0] == flag)
                        .map(|pair| pair[1].to_owned())
                        .unwrap_or_else(|| panic!("{dockerfile}: the build names no {flag}"))
                };
                assert!(
                    build.args.contains("cargo build"),
                    "{dockerfile}: {build:?}"
                );
                let (package, bin) = (after("-p"), after("--bin"));
                assert!(
                    build
                        .args
                        .contains(&format!("cp target/release/{bin} {source}")),
                    "{dockerfile}: {source} is not the binary {bin} the stage builds"
                );
                let manifest = members()
                    .into_iter()
                    .map(|member| read(&format!("{member}/Cargo.toml")))
                    .find(|manifest| names_in(manifest, "[package]") == [package.clone()])
                    .unwrap_or_else(|| {
                        panic!("{dockerfile}: no workspace package is named {package}")
                    });
                assert!(
                    names_in(&manifest, "[[bin]]").contains(&bin),
                    "{dockerfile}: package {package} has no binary {bin}"
                );
                // The server talks to DynamoDB, S3, ECS and Secrets Manager: a local
                // install's default features leave those adapters out.
                if dockerfile.ends_with("Dockerfile.server") {
                    assert!(
                        after("--features").split(',').any(|f| f == "aws"),
                        "{dockerfile}: the server image must build with the aws feature"
                    );
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 1, "{dockerfile} copies one binary from its build");
    }
}

/// The JSON-array words of an exec-form `CMD` or `ENTRYPOINT`.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec form: {args}: {e}"))
}

/// The `Command: [...]` lists of the CloudFormation template, `!Ref` items replaced by
/// a value of the kind they name (the only one used is a secret's ARN).
fn template_commands(template: &str) -> Vec<Vec<String>> {
    read(template)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Command: ["))
        .map(|list| {
            list.trim_end_matches(']')
                .split(',')
                .map(|word| {
                    let word = word.trim().trim_matches('"');
                    if word.starts_with("!Ref") {
                        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tlao-admin-AbCdEf"
                            .into()
                    } else {
                        word.to_owned()
                    }
                })
                .collect()
        })
        .collect()
}

/// Runs `tlao args... --help`: clap parses and validates every argument before it
/// prints the help, so success means `tlao` accepts the command.
fn accepted(args: &[String]) -> Result<(), String> {
    let output = Command::new(common::tlao_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn the_commands_the_images_and_the_template_run_are_commands_tlao_accepts() {
    let mut commands = Vec::new();
    for dockerfile in DOCKERFILES {
        let all = instructions(&read(dockerfile));
        let last = |keyword: &str| {
            all.iter()
                .rev()
                .find(|i| i.keyword == keyword)
                .map(|i| exec_form(&i.args))
                .unwrap_or_else(|| panic!("{dockerfile} has no {keyword}"))
        };
        assert_eq!(last("ENTRYPOINT"), ["tlao"], "{dockerfile}");
        commands.push(last("CMD"));
    }
    let from_template = template_commands("deploy/aws/template.yaml");
    assert_eq!(from_template.len(), 3, "{from_template:?}");
    assert!(
        from_template.contains(&commands[1]),
        "the template's workers run what the worker image runs by default"
    );
    commands.extend(from_template);
    // The serverless profile runs the bootstrap too (its workers' command is the
    // launcher's `worker --run ID --lease ID`), and its function the server image's.
    let serverless = template_commands(SERVERLESS);
    assert_eq!(serverless.len(), 1, "{serverless:?}");
    commands.extend(serverless);

    for command in &commands {
        if let Err(refusal) = accepted(command) {
            panic!("tlao refuses {command:?}: {refusal}");
        }
    }
    // And the check can fail: a value out of range is refused.
    let refused: Vec<String> = ["worker", "--once", "--wait", "999999"]
        .map(String::from)
        .to_vec();
    assert!(accepted(&refused).is_err());
}

/// The block of `deploy/aws/template.yaml` under the key `name` at `indent` spaces: its
/// lines up to the next key at that indentation or less.
fn template_block(name: &str, indent: usize) -> String {
    block_in("deploy/aws/template.yaml", name, indent)
}

/// [`template_block`] of another template.
fn block_in(template: &str, name: &str, indent: usize) -> String {
    let text = read(template);
    let key = format!("{}{name}:", " ".repeat(indent));
    let mut lines = text.lines().skip_while(|line| *line != key);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("the template has no {name} at indent {indent}"));
    let body: Vec<&str> = lines
        .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() > indent)
        .collect();
    format!("{first}\n{}", body.join("\n"))
}

#[test]
fn the_template_serves_https_and_refuses_plain_http_unless_told() {
    let rule = template_block("HttpsUnlessInsecureIsAllowed", 2);
    assert!(
        rule.contains(r#"RuleCondition: !Equals [!Ref AllowInsecureHttp, "false"]"#)
            && rule.contains(r#"Assert: !Not [!Equals [!Ref CertificateArn, ""]]"#),
        "{rule}"
    );
    let allow = template_block("AllowInsecureHttp", 2);
    assert!(allow.contains(r#"Default: "false""#), "{allow}");
    let cidr = template_block("AllowedCidr", 2);
    assert!(
        !cidr.contains("Default:"),
        "AllowedCidr has a default: {cidr}"
    );

    let https = template_block("HttpsListener", 2);
    for needed in [
        "Condition: HasCertificate",
        "Protocol: HTTPS",
        "Port: 443",
        "CertificateArn: !Ref CertificateArn",
        "TargetGroupArn: !Ref ServerTargetGroup",
    ] {
        assert!(
            https.contains(needed),
            "HttpsListener lacks {needed}: {https}"
        );
    }
    let http = template_block("HttpListener", 2);
    let (with_certificate, without) = http
        .split_once("        - - Type: forward")
        .expect("the HTTP listener forwards only without a certificate");
    assert!(
        with_certificate.contains("- HasCertificate")
            && with_certificate.contains("Type: redirect")
            && with_certificate.contains("Protocol: HTTPS")
            && with_certificate.contains("StatusCode: HTTP_301"),
        "{http}"
    );
    assert!(without.contains("TargetGroupArn: !Ref ServerTargetGroup"));
    let public_url = template_block("ServerTaskDefinition", 2);
    assert!(
        public_url.contains("- !Sub https://${DomainName}"),
        "the API is told its https URL: {public_url}"
    );
}

#[test]
fn the_template_scales_workers_on_the_metrics_the_api_publishes() {
    let server = template_block("ServerTaskDefinition", 2);
    for needed in [
        "TLAO_METRICS__EMF_INTERVAL_SECONDS",
        "TLAO_METRICS__NAMESPACE",
        "Value: TLAO",
        "TLAO_METRICS__DEPLOYMENT",
    ] {
        assert!(server.contains(needed), "the API is not told {needed}");
    }
    let out = template_block("RunsWaitingAlarm", 2);
    assert!(
        out.contains("Namespace: TLAO")
            && out.contains("MetricName: QueuedRuns")
            && out.contains("- !Ref WorkerScaleOut"),
        "{out}"
    );
    let idle = template_block("NothingToDoAlarm", 2);
    assert!(
        idle.contains("MetricName: QueuedRuns")
            && idle.contains("MetricName: RunningRuns")
            && idle.contains("Expression: queued + running")
            && idle.contains("- !Ref WorkerScaleIn"),
        "scaling in looks at queued and running runs: {idle}"
    );
    let target = template_block("WorkerScalableTarget", 2);
    assert!(
        target.contains("MinCapacity: !Ref MinWorkers")
            && target.contains("MaxCapacity: !Ref MaxWorkers"),
        "{target}"
    );
    assert!(template_block("MinWorkers", 2).contains("Default: 0"));
    // The names the server publishes under are the names the alarms watch.
    let source = read("crates/cli/src/metrics.rs");
    for metric in ["\"QueuedRuns\"", "\"RunningRuns\"", "\"Deployment\""] {
        assert!(
            source.contains(metric),
            "metrics.rs no longer says {metric}"
        );
    }
}

/// The inline code of the template's `BootstrapFunction` (its `ZipFile` block).
fn bootstrap_function_code() -> String {
    bootstrap_function_code_in("deploy/aws/template.yaml")
}

/// [`bootstrap_function_code`] of another template.
fn bootstrap_function_code_in(template: &str) -> String {
    let block = block_in(template, "BootstrapFunction", 2);
    let start = block
        .find("ZipFile: |\n")
        .expect("the function's code is inline")
        + "ZipFile: |\n".len();
    let lines: Vec<&str> = block[start..].lines().collect();
    let indent = lines
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .expect("some code");
    lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the bootstrap function's handler under python3 with stand-ins for `boto3` (an
/// ECS client whose task ends as `scenario` says) and `cfnresponse` (recording what is
/// sent); prints one JSON line: the response sent and the ECS calls made.
const HARNESS: &str = r#"
import json, sys, types

scenario = sys.argv[1]
calls, sent = [], []

class Ecs:
    def run_task(self, **kwargs):
        calls.append(["RunTask", kwargs])
        if scenario == "refused":
            return {"tasks": [], "failures": [{"reason": "RESOURCE:ENI"}]}
        return {"tasks": [{"taskArn": "arn:task/1"}], "failures": []}
    def describe_tasks(self, **kwargs):
        calls.append(["DescribeTasks", kwargs])
        described = sum(1 for call in calls if call[0] == "DescribeTasks")
        if described < 2:
            return {"tasks": [{"lastStatus": "RUNNING", "containers": [{}]}]}
        code = 0 if scenario == "succeeds" else 1
        return {"tasks": [{"lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
                           "containers": [{"exitCode": code}]}]}

boto3 = types.ModuleType("boto3")
boto3.client = lambda name: Ecs()
sys.modules["boto3"] = boto3
cfn = types.ModuleType("cfnresponse")
cfn.SUCCESS, cfn.FAILED = "SUCCESS", "FAILED"
def send(event, context, status, data, physical=None, noEcho=False, reason=None):
    sent.append({"status": status, "data": data, "physical": physical, "reason": reason})
cfn.send = send
sys.modules["cfnresponse"] = cfn

import index
index.time.sleep = lambda seconds: None

class Context:
    def get_remaining_time_in_millis(self):
        return 600000

request = "Create" if scenario in ("succeeds", "fails", "refused") else scenario
event = {"RequestType": request, "ResourceProperties": {
    "Cluster": "c", "TaskDefinition": "arn:td/1", "Subnets": ["s1", "s2"],
    "SecurityGroup": "sg", "LogGroup": "/tlao/x/server"}}
if request != "Create":
    event["PhysicalResourceId"] = "tlao-bootstrap"
index.handler(event, Context())
print(json.dumps({"sent": sent, "calls": calls}))
"#;

fn run_bootstrap_function(scenario: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.py"), bootstrap_function_code()).unwrap();
    std::fs::write(dir.path().join("harness.py"), HARNESS).unwrap();
    let output = Command::new("python3")
        .arg("harness.py")
        .arg(scenario)
        .current_dir(dir.path())
        .output()
        .expect("python3 runs (the test scripts need it too)");
    assert!(
        output.status.success(),
        "the handler raised: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().expect("a result line")).unwrap()
}

#[test]
fn the_bootstrap_function_runs_the_task_once_on_create_and_reports_how_it_ended() {
    let ok = run_bootstrap_function("succeeds");
    assert_eq!(ok["sent"].as_array().unwrap().len(), 1, "{ok}");
    assert_eq!(ok["sent"][0]["status"], "SUCCESS", "{ok}");
    let run = &ok["calls"][0];
    assert_eq!(run[0], "RunTask");
    assert_eq!(run[1]["cluster"], "c");
    assert_eq!(run[1]["taskDefinition"], "arn:td/1");
    assert_eq!(run[1]["launchType"], "FARGATE");
    let network = &run[1]["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(network["subnets"], serde_json::json!(["s1", "s2"]));
    assert_eq!(network["securityGroups"], serde_json::json!(["sg"]));
    assert_eq!(network["assignPublicIp"], "ENABLED");

    let failed = run_bootstrap_function("fails");
    assert_eq!(failed["sent"][0]["status"], "FAILED", "{failed}");
    let reason = failed["sent"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("exit code 1") && reason.contains("/tlao/x/server"),
        "{reason}"
    );

    let refused = run_bootstrap_function("refused");
    assert_eq!(refused["sent"][0]["status"], "FAILED", "{refused}");
    assert!(
        refused["sent"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("RESOURCE:ENI")
    );

    for request in ["Update", "Delete"] {
        let untouched = run_bootstrap_function(request);
        assert_eq!(untouched["sent"][0]["status"], "SUCCESS", "{untouched}");
        assert_eq!(untouched["sent"][0]["physical"], "tlao-bootstrap");
        assert_eq!(
            untouched["calls"],
            serde_json::json!([]),
            "{request} runs nothing"
        );
    }
}

#[test]
fn the_serverless_template_bootstraps_with_the_same_tested_function() {
    assert_eq!(
        bootstrap_function_code_in(SERVERLESS),
        bootstrap_function_code(),
        "the serverless profile's bootstrap function differs from the one tested above"
    );
}

/// The `KEY=value` pairs of a Dockerfile's `ENV` instructions.
fn env_of(dockerfile: &[Instruction]) -> Vec<(String, String)> {
    dockerfile
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| i.args.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The default of `ARG name=...` in a Dockerfile.
fn arg_default(dockerfile: &[Instruction], name: &str) -> String {
    dockerfile
        .iter()
        .filter(|i| i.keyword == "ARG")
        .find_map(|i| i.args.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no ARG {name}=... default"))
        .to_owned()
}

#[test]
fn the_lambda_image_is_the_server_image_with_the_adapter_streaming_to_tlao_serve() {
    let lambda = instructions(&read(LAMBDA_DOCKERFILE));
    let froms: Vec<&str> = lambda
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| i.args.as_str())
        .collect();
    assert_eq!(
        froms,
        ["${LAMBDA_ADAPTER_IMAGE} AS adapter", "${SERVER_IMAGE}"],
        "the function's image is the server image, with the adapter copied in"
    );
    let adapter = arg_default(&lambda, "LAMBDA_ADAPTER_IMAGE");
    let version = adapter
        .strip_prefix("public.ecr.aws/awsguru/aws-lambda-adapter:")
        .unwrap_or_else(|| panic!("not the AWS Lambda Web Adapter: {adapter}"));
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|n| n.parse::<u32>().is_ok()),
        "the adapter is pinned to a release: {adapter}"
    );
    let copies: Vec<_> = lambda
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(|i| copy_parts(&i.args))
        .collect();
    assert_eq!(
        copies,
        [(
            Some("adapter".to_owned()),
            vec!["/lambda-adapter".to_owned()],
            "/opt/extensions/lambda-adapter".to_owned()
        )],
        "Lambda starts external extensions from /opt/extensions"
    );

    let env = env_of(&lambda);
    let get = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{LAMBDA_DOCKERFILE} sets no {key}"))
    };
    assert_eq!(get("AWS_LWA_INVOKE_MODE"), "response_stream");
    assert_eq!(get("TLAO_SERVER__BACKGROUND"), "false");
    assert_eq!(
        get("TLAO_SERVER__ADDR"),
        format!("127.0.0.1:{}", get("AWS_LWA_PORT")),
        "the adapter forwards to the port tlao serve listens on"
    );
    assert!(
        get("TLAO_DATA_DIR").starts_with("/tmp/"),
        "/tmp is a Lambda function's only writable path"
    );
    let readiness = get("AWS_LWA_READINESS_CHECK_PATH");
    assert!(
        read("crates/api/src/routes.rs").contains(&format!("route!(GET \"{readiness}\"")),
        "the adapter's readiness check {readiness} is a route of the API"
    );

    // `tlao serve`, as the server image runs it.
    let server = instructions(&read("deploy/aws/Dockerfile.server"));
    for keyword in ["ENTRYPOINT", "CMD"] {
        let last = |file: &[Instruction]| {
            file.iter()
                .rev()
                .find(|i| i.keyword == keyword)
                .map(|i| exec_form(&i.args))
        };
        assert_eq!(last(&lambda), last(&server), "{keyword}");
    }
}

/// The value of `key: value` on the first line of `block` that names `key`.
fn value_in(block: &str, key: &str) -> String {
    let prefix = format!("{key}: ");
    block
        .lines()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {block}"))
        .trim()
        .to_owned()
}

#[test]
fn the_serverless_template_streams_and_calls_the_maintenance_route_every_minute() {
    let url = block_in(SERVERLESS, "ApiFunctionUrl", 2);
    assert_eq!(value_in(&url, "InvokeMode"), "RESPONSE_STREAM");
    let function = block_in(SERVERLESS, "ApiFunction", 2);
    assert_eq!(value_in(&function, "PackageType"), "Image");
    assert_eq!(value_in(&function, "Timeout"), "900");
    assert_eq!(value_in(&function, "TLAO_LAUNCHER__KIND"), "ecs");
    assert_eq!(
        value_in(
            &function,
            "TLAO_LAUNCHER__ECS__API_URL_FROM_TASK_DEFINITION"
        ),
        "\"true\""
    );

    // The schedule: once a minute, the route the API serves, with the token the
    // function checks.
    let rule = block_in(SERVERLESS, "MaintenanceSchedule", 2);
    assert_eq!(value_in(&rule, "ScheduleExpression"), "rate(1 minute)");
    assert!(rule.contains("!GetAtt MaintenanceDestination.Arn"));
    let destination = block_in(SERVERLESS, "MaintenanceDestination", 2);
    let method = value_in(&destination, "HttpMethod");
    let endpoint = value_in(&destination, "InvocationEndpoint");
    let path = endpoint
        .trim_matches('"')
        .strip_prefix("!Sub ")
        .map(|rest| rest.trim_matches('"'))
        .and_then(|rest| rest.strip_prefix("${ApiFunctionUrl.FunctionUrl}"))
        .unwrap_or_else(|| panic!("not a path of the Function URL: {endpoint}"));
    assert!(
        read("crates/api/src/routes.rs").contains(&format!("route!({method} \"/{path}\"")),
        "the schedule calls {method} /{path}, which is not a route"
    );
    let connection = block_in(SERVERLESS, "MaintenanceConnection", 2);
    assert_eq!(value_in(&connection, "ApiKeyName"), "Authorization");
    let secret = "{{resolve:secretsmanager:${MaintenanceTokenSecret}}}";
    assert_eq!(
        value_in(&connection, "ApiKeyValue"),
        format!("!Sub \"Bearer {secret}\"")
    );
    assert_eq!(
        value_in(&function, "TLAO_MAINTENANCE_TOKEN"),
        format!("!Sub \"{secret}\"")
    );

    // One task per run: the launcher names the worker task definition by its family,
    // the only ARN the function may run, and the task definition tells its workers
    // the Function URL.
    let family = value_in(&function, "TLAO_LAUNCHER__ECS__TASK_DEFINITION");
    let workers = block_in(SERVERLESS, "WorkerTaskDefinition", 2);
    assert_eq!(value_in(&workers, "Family"), family);
    assert!(
        block_in(SERVERLESS, "ApiFunctionRole", 2).contains(&format!(
            "task-definition/{}:*",
            family.trim_start_matches("!Sub ")
        )),
        "the function may run the worker task definition"
    );
    assert!(
        workers.contains(
            "- Name: TLAO_API_URL\n              Value: !GetAtt ApiFunctionUrl.FunctionUrl"
        ),
        "{workers}"
    );
}
