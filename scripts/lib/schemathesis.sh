#!/usr/bin/env bash
# The OpenAPI document against the server it describes: schemathesis (pinned in
# scripts/lib/aws-emulator.sh, installed into .venv) generates requests from
# `GET /openapi.json` of a throw-away `tlao dev` and runs every check on the answers:
# no 5xx, every status code, content type, header and body documented, requests valid by
# the document accepted and invalid ones refused, 401 without credentials, 405 with
# `Allow` for undocumented methods, created resources readable, deleted ones gone.
#
# Two runs, each bounded in time: the user-facing routes (everything but /worker/*)
# with an administrator's bearer token, then the worker protocol (/worker/*) with the
# server's worker token. Exits non-zero on any failure or error of either run; stops
# `tlao dev` (and every worker process it started) however it ends.
#
#   scripts/lib/schemathesis.sh                   from the repository root
#   TLAO_BIN=path/to/tlao scripts/lib/schemathesis.sh
#   SCHEMATHESIS_SEED=N scripts/lib/schemathesis.sh   replays the data of an earlier
#                                                     run (its seed is printed at its end)
#   ST_ONLY=user|worker scripts/lib/schemathesis.sh   only one of the two runs
#
# TLAO_BIN defaults to $CARGO_TARGET_DIR (else target)/debug/tlao (build it first).
# Reports (JUnit XML) and the server's log land in target/schemathesis/.
#
# What fuzzing creates is real: tasks, runs, users, workspaces and executors in the
# throw-away data dir. Runs are leased and executed by the local workers of `tlao dev`,
# with the stand-in kiro-cli of tests/fixtures first on the PATH (a real kiro-cli is
# never called) and guardrails that keep them short and few (below). Executors that
# fuzzing registers have random argv templates; their programs run, as this user, in a
# temporary working directory, and are almost always not found.
#
# Nothing is excluded: every operation of the document and every check of schemathesis
# runs. Where schemathesis's defaults are adjusted, docs/decisions.md says why.

# shellcheck source=scripts/lib/aws-emulator.sh
source "$(dirname "${BASH_SOURCE[0]}")/aws-emulator.sh"

# The bound of each schemathesis run (seconds; it is killed after it) and of each request
# it sends. The event stream of a run answers until the run is over, and a lease may wait
# up to 30 s for a run, so a request may take up to ~35 s; each run takes about a minute.
ST_RUN_SECONDS="${ST_RUN_SECONDS:-600}"
ST_REQUEST_SECONDS="${ST_REQUEST_SECONDS:-45}"
# Test cases per operation in the fuzzing phase.
ST_MAX_EXAMPLES=50

# Guardrails of the fuzzed server: runs end within 5 s, a workspace creates at most 30 a
# day (then 429, which the document lists), and up to 4 run at once.
DEV_GUARDRAILS=(
  TLAO_GUARDRAILS__MAX_RUN_SECONDS=5
  TLAO_GUARDRAILS__DAILY_RUN_QUOTA=30
  TLAO_GUARDRAILS__MAX_CONCURRENT_RUNS=4
)

DEV_PID=""
WORK_DIR=""

# Stops `tlao dev` and its process group (the worker processes), removes the data dir.
stop_dev() {
  if [[ -n "${DEV_PID}" ]]; then
    kill -TERM -- "-${DEV_PID}" 2>/dev/null || true
    local tries=0
    while kill -0 "${DEV_PID}" 2>/dev/null && (( tries < 100 )); do
      sleep 0.1
      tries=$((tries + 1))
    done
    # Whatever is left of the group (a worker that ignored TERM) goes too.
    kill -KILL -- "-${DEV_PID}" 2>/dev/null || true
    wait "${DEV_PID}" 2>/dev/null || true
    DEV_PID=""
  fi
  if [[ -n "${WORK_DIR}" ]]; then
    # The server's log, for reading a failure after the fact.
    cp "${WORK_DIR}/dev.err" "${ROOT_DIR}/target/schemathesis/tlao-dev.log" 2>/dev/null || true
    rm -rf "${WORK_DIR}"
    WORK_DIR=""
  fi
}

# Starts `tlao dev` on a free loopback port with a fresh data dir; sets DEV_URL.
start_dev() {
  local root="$1" unset_tlao=()
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tlao-schemathesis.XXXXXX")"
  mkdir -p "${WORK_DIR}/cwd"
  # Only the settings below: no TLAO_* of the caller's shell, no ./tlao.toml.
  local name
  while IFS= read -r name; do
    unset_tlao+=(-u "${name}")
  done < <(compgen -e | grep '^TLAO_' || true)
  # setsid: its own process group, so stop_dev reaches the workers it starts.
  (
    cd "${WORK_DIR}/cwd"
    exec env "${unset_tlao[@]}" \
      XDG_CONFIG_HOME="${WORK_DIR}/config" XDG_DATA_HOME="${WORK_DIR}/share" NO_COLOR=1 \
      PATH="${root}/tests/fixtures:${PATH}" "${DEV_GUARDRAILS[@]}" \
      setsid "${TLAO_BIN}" dev --addr 127.0.0.1:0 --data-dir "${WORK_DIR}/data" --no-login
  ) >"${WORK_DIR}/dev.out" 2>"${WORK_DIR}/dev.err" &
  DEV_PID=$!
  local tries=0
  DEV_URL=""
  until DEV_URL="$(sed -n 's/^Ready: \(http:[^ ]*\)$/\1/p' "${WORK_DIR}/dev.out")" && [[ -n "${DEV_URL}" ]]; do
    tries=$((tries + 1))
    if ! kill -0 "${DEV_PID}" 2>/dev/null || (( tries > 300 )); then
      echo "schemathesis: tlao dev (${TLAO_BIN}) printed no \"Ready:\" line within 30 s:" >&2
      cat "${WORK_DIR}/dev.out" >&2
      tail -n 30 "${WORK_DIR}/dev.err" >&2
      return 1
    fi
    sleep 0.1
  done
}

# A bearer token for the administrator: its API key exchanged at POST /auth/token.
admin_token() {
  "${VENV_DIR}/bin/python" - "${DEV_URL}" "${WORK_DIR}/data/admin.key" <<'PY'
import json, sys, urllib.request
url, key_file = sys.argv[1], sys.argv[2]
body = json.dumps({"apiKey": open(key_file).read().strip()}).encode()
request = urllib.request.Request(f"{url}/auth/token", data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.load(response)["token"])
PY
}

# run_schemathesis NAME TOKEN FILTER...: one bounded schemathesis run over the
# operations FILTER selects, authenticated with TOKEN.
run_schemathesis() {
  local name="$1" token="$2" status=0
  shift 2
  local seed=()
  if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then
    seed=(--seed "${SCHEMATHESIS_SEED}")
  fi
  echo "schemathesis: ${name} routes"
  # From the throw-away dir: schemathesis and hypothesis keep state in the working dir.
  (
    cd "${WORK_DIR}"
    SCHEMATHESIS_HOOKS="${ROOT_DIR}/scripts/lib/schemathesis_hooks.py" \
    timeout --kill-after=10 "${ST_RUN_SECONDS}" \
      "${ROOT_DIR}/${VENV_DIR}/bin/st" --config-file "${WORK_DIR}/schemathesis.toml" \
        run "${DEV_URL}/openapi.json" \
        "$@" \
        --header "Authorization: Bearer ${token}" \
        --checks all \
        --max-examples "${ST_MAX_EXAMPLES}" \
        --request-timeout "${ST_REQUEST_SECONDS}" \
        --workers 1 \
        --generation-database none \
        --no-color \
        --report "junit${ST_EXTRA_REPORTS:+,${ST_EXTRA_REPORTS}}" --report-dir "${ROOT_DIR}/target/schemathesis" \
        --report-junit-path "${ROOT_DIR}/target/schemathesis/${name}.xml" \
        "${seed[@]}"
  ) || status=$?
  if (( status == 124 || status == 137 )); then
    echo "schemathesis: the ${name} run did not finish within ${ST_RUN_SECONDS} s" >&2
  elif (( status != 0 )); then
    echo "schemathesis: the ${name} run failed (exit ${status})" >&2
  fi
  return "${status}"
}

schemathesis_check() {
  local root status=0
  root="$(pwd)"
  ROOT_DIR="${root}"
  export TLAO_BIN="${TLAO_BIN:-${CARGO_TARGET_DIR:-${root}/target}/debug/tlao}"
  if [[ ! -x "${TLAO_BIN}" ]]; then
    echo "schemathesis: no tlao binary at ${TLAO_BIN}; build it (cargo build -p tlao-cli) or set TLAO_BIN" >&2
    return 1
  fi
  ensure_venv
  mkdir -p target/schemathesis
  trap stop_dev EXIT
  start_dev "${root}"
  echo "schemathesis $("${VENV_DIR}/bin/st" --version | sed 's/.*version //') against ${DEV_URL}"

  local token worker_token
  token="$(admin_token)"
  worker_token="$(cat "${WORK_DIR}/data/worker.token")"

  # The settings of scripts/lib/schemathesis.toml, and the ids of a task, a finished run
  # and its artifacts made for the generators to use (scripts/lib/schemathesis_seed.py).
  cp scripts/lib/schemathesis.toml "${WORK_DIR}/schemathesis.toml"
  "${VENV_DIR}/bin/python" scripts/lib/schemathesis_seed.py "${DEV_URL}" "${token}" \
    >>"${WORK_DIR}/schemathesis.toml"

  if [[ "${ST_ONLY:-user}" == user ]]; then
    run_schemathesis user "${token}" --exclude-path-regex '^/worker/' || status=1
  fi
  if [[ "${ST_ONLY:-worker}" == worker ]]; then
    run_schemathesis worker "${worker_token}" --include-path-regex '^/worker/' || status=1
  fi
  return "${status}"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  schemathesis_check
fi
