"""Seeds a fresh `tlao dev` for scripts/lib/schemathesis.sh and prints the schemathesis
configuration that hands the seeded ids to the generators.

    schemathesis_seed.py BASE_URL ADMIN_TOKEN

Ids the document cannot tell a generator (a run that exists, its task, its artifacts)
would otherwise be drawn at random, so every `GET /runs/{runId}` would be a 404 and the
answers worth checking (a run, its event stream, its artifacts) would never be seen.
This makes, through the API, a task in the default workspace and a run of it on the
`kiro` executor (the stand-in kiro-cli of tests/fixtures, which writes a document for a
prompt that asks for one), waits for the run to end, and prints TOML dictionaries of
those ids, bound to the parameters that take them. Each binding replaces a generated
valid value half of the time; invalid values are generated as before.
"""

import json
import sys
import time
import urllib.request

TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


def call(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    base, token = sys.argv[1], sys.argv[2]
    workspace = call(base, token, "GET", "/workspaces")["items"][0]["workspaceId"]
    task = call(base, token, "POST", "/tasks", {
        "workspaceId": workspace,
        "taskType": "doc.write",
        "input": {"prompt": "write the doc of this project"},
    })["taskId"]
    run = call(base, token, "POST", "/runs", {"taskId": task, "executor": "kiro"})
    deadline = time.monotonic() + 60
    while run["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            sys.exit(f"the seeded run {run['runId']} did not end within 60 s: {run['status']}")
        time.sleep(0.2)
        run = call(base, token, "GET", f"/runs/{run['runId']}")
    if run["status"] != "completed":
        sys.exit(f"the seeded run {run['runId']} ended {run['status']}: {run.get('error')}")
    artifacts = [a["artifactId"] for a in call(base, token, "GET", f"/runs/{run['runId']}/artifacts")["items"]]
    if not artifacts:
        sys.exit(f"the seeded run {run['runId']} produced no artifact")

    dictionaries = {
        "seeded-workspaces": [workspace],
        "seeded-tasks": [task],
        "seeded-runs": [run["runId"]],
        "seeded-artifacts": artifacts,
    }
    bindings = {
        "path.workspaceId": "seeded-workspaces",
        "query.workspaceId": "seeded-workspaces",
        "body.workspaceId": "seeded-workspaces",
        "path.taskId": "seeded-tasks",
        "body.taskId": "seeded-tasks",
        "path.runId": "seeded-runs",
        "path.artifactId": "seeded-artifacts",
    }
    print("\n# Seeded by scripts/lib/schemathesis_seed.py")
    for name, values in dictionaries.items():
        print(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
    print("[parameters]")
    for parameter, dictionary in bindings.items():
        print(f'"{parameter}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')


if __name__ == "__main__":
    main()
