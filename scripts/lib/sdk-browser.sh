#!/usr/bin/env bash
# The TypeScript SDK's runtime-neutral build in headless Chromium (tests/sdk-browser):
# installs Debian's chromium when /usr/bin/chromium is missing, installs the test's
# pinned npm dependencies when needed, and runs a whole SDK flow in a page against a real
# `tlao dev` (with the stand-in kiro-cli). The SDK must be built first (sdk/typescript/dist,
# which scripts/lib/sdk-typescript.sh does before calling this).
#
#   scripts/lib/sdk-browser.sh               from the repository root
#   TLAO_BIN=path/to/tlao scripts/lib/sdk-browser.sh
#
# TLAO_BIN defaults to $CARGO_TARGET_DIR (else target)/debug/tlao. CHROMIUM overrides the
# browser (default /usr/bin/chromium). SDK_BROWSER_TIMEOUT bounds the run in seconds
# (default 300). Exits non-zero on any failure. Sourcing this file only defines
# sdk_browser_check.

# shellcheck source=scripts/lib/node.sh
source "$(dirname "${BASH_SOURCE[0]}")/node.sh"
# shellcheck source=scripts/lib/chromium.sh
source "$(dirname "${BASH_SOURCE[0]}")/chromium.sh"

sdk_browser_check() {
  local root tests
  root="$(pwd)"
  tests="${root}/tests/sdk-browser"
  export TLAO_BIN="${TLAO_BIN:-${CARGO_TARGET_DIR:-${root}/target}/debug/tlao}"

  if [[ ! -x "${TLAO_BIN}" ]]; then
    echo "sdk-browser: no tlao binary at ${TLAO_BIN}; build it (cargo build -p tlao-cli) or set TLAO_BIN" >&2
    return 1
  fi
  if [[ ! -f "${root}/sdk/typescript/dist/index.js" ]]; then
    echo "sdk-browser: the SDK is not built; run scripts/lib/sdk-typescript.sh (or npm run build in sdk/typescript)" >&2
    return 1
  fi
  require_node sdk-browser 20 || return 1

  ensure_chromium sdk-browser || return 1

  npm_ci_when_changed sdk-browser "${tests}" || return 1

  echo "sdk-browser: @tlao/sdk in headless Chromium against tlao dev"
  # Each test bounds itself; this bounds the whole run, browser start and teardown included.
  (cd "${tests}" && timeout --kill-after=10 "${SDK_BROWSER_TIMEOUT:-300}" \
    node --test --test-concurrency=1 --test-reporter=spec sdk-browser.test.mjs)
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  sdk_browser_check
fi
