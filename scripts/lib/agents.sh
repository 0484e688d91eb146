#!/usr/bin/env bash
# The real agent CLIs the stream-executor tests run (crates/cli/tests/stream_agents.rs),
# installed from the npm registry at pinned versions into ${AGENTS_DIR}
# (default ${CARGO_TARGET_DIR:-target}/agents). Cached: nothing is fetched when the
# installed set matches the pins. Run it, or source it and call ensure_agents.
#
# The tests find the install through TLAO_TEST_AGENTS_DIR (or the same default) and
# skip, saying why, only when it is absent.

AGENT_PACKAGES=(
  "@anthropic-ai/claude-code@2.1.332"
  "@google/gemini-cli@0.61.0"
  "@openai/codex@0.171.0"
)

ensure_agents() {
  local root="${CARGO_TARGET_DIR:-target}"
  export AGENTS_DIR="${AGENTS_DIR:-${root}/agents}"
  local stamp="${AGENTS_DIR}/.tlao-agents" want
  want="$(printf '%s\n' "${AGENT_PACKAGES[@]}")"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "agents: cached in ${AGENTS_DIR}"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "agents: npm not found; the real-agent tests will skip" >&2
    return 0
  fi
  mkdir -p "${AGENTS_DIR}"
  echo "agents: npm install ${AGENT_PACKAGES[*]} into ${AGENTS_DIR}"
  # --save-exact keeps the pins in AGENTS_DIR/package.json; optional dependencies carry
  # the native binaries and must be installed.
  npm install --prefix "${AGENTS_DIR}" --save-exact --no-audit --no-fund \
    --loglevel=error "${AGENT_PACKAGES[@]}"
  printf '%s\n' "${want}" >"${stamp}"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  ensure_agents
fi
