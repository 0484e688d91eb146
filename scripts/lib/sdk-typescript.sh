#!/usr/bin/env bash
# The TypeScript SDK (sdk/typescript): install its dev dependencies when needed, build
# it with tsc, check its generated types against a live `tlao dev`'s /openapi.json, run
# its tests against a real `tlao dev`, then run its browser build in headless Chromium
# (scripts/lib/sdk-browser.sh, which installs chromium when it is missing).
#
#   scripts/lib/sdk-typescript.sh            from the repository root
#   TLAO_BIN=path/to/tlao scripts/lib/sdk-typescript.sh
#
# TLAO_BIN defaults to $CARGO_TARGET_DIR (else target)/debug/tlao (build it first). Exits non-zero on any failure.
# Sourcing this file only defines sdk_typescript_check.

# shellcheck source=scripts/lib/node.sh
source "$(dirname "${BASH_SOURCE[0]}")/node.sh"
# shellcheck source=scripts/lib/sdk-browser.sh
source "$(dirname "${BASH_SOURCE[0]}")/sdk-browser.sh"

sdk_typescript_check() {
  local root sdk
  root="$(pwd)"
  sdk="${root}/sdk/typescript"
  export TLAO_BIN="${TLAO_BIN:-${CARGO_TARGET_DIR:-${root}/target}/debug/tlao}"

  require_node sdk-typescript 18 || return 1
  if [[ ! -x "${TLAO_BIN}" ]]; then
    echo "sdk-typescript: no tlao binary at ${TLAO_BIN}; build it (cargo build -p tlao-cli) or set TLAO_BIN" >&2
    return 1
  fi

  npm_ci_when_changed sdk-typescript "${sdk}" || return 1

  echo "sdk-typescript: build (tsc), with TLAO_BIN=${TLAO_BIN}"
  (cd "${sdk}" && npm run --silent build)
  echo "sdk-typescript: generated types against the live /openapi.json"
  (cd "${sdk}" && npm run --silent check-types)
  echo "sdk-typescript: tests against tlao dev"
  (cd "${sdk}" && npm test --silent)
  sdk_browser_check
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  sdk_typescript_check
fi
