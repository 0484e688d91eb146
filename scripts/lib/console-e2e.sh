#!/usr/bin/env bash
# The agent console in a real browser (tests/console): installs Debian's chromium when
# /usr/bin/chromium is missing, installs the tests' pinned npm dependencies when needed,
# and runs them against a real `tlao dev` with the stand-in kiro-cli. Every page is
# checked with axe-core; screenshots go to target/console-screenshots/.
#
#   scripts/lib/console-e2e.sh               from the repository root
#   TLAO_BIN=path/to/tlao scripts/lib/console-e2e.sh
#
# TLAO_BIN defaults to $CARGO_TARGET_DIR (else target)/debug/tlao (build it first: cargo build -p tlao-cli).
# CHROMIUM overrides the browser (default /usr/bin/chromium). Exits non-zero on any
# failure. Sourcing this file only defines console_e2e_check.

# shellcheck source=scripts/lib/node.sh
source "$(dirname "${BASH_SOURCE[0]}")/node.sh"
# shellcheck source=scripts/lib/chromium.sh
source "$(dirname "${BASH_SOURCE[0]}")/chromium.sh"

console_e2e_check() {
  local root tests
  root="$(pwd)"
  tests="${root}/tests/console"
  export TLAO_BIN="${TLAO_BIN:-${CARGO_TARGET_DIR:-${root}/target}/debug/tlao}"

  if [[ ! -x "${TLAO_BIN}" ]]; then
    echo "console-e2e: no tlao binary at ${TLAO_BIN}; build it (cargo build -p tlao-cli) or set TLAO_BIN" >&2
    return 1
  fi
  require_node console-e2e 20 || return 1

  ensure_chromium console-e2e || return 1

  npm_ci_when_changed console-e2e "${tests}" || return 1

  (cd "${tests}" && node --test --test-concurrency=1 --test-reporter=spec console.test.mjs)
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  console_e2e_check
fi
