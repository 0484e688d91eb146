#!/usr/bin/env bash
# The TypeScript SDK (sdk/typescript): install its dev dependencies when needed, build
# it with tsc, check its generated types against a live `tlao dev`'s /openapi.json, and
# run its tests against a real `tlao dev`.
#
#   scripts/lib/sdk-typescript.sh            from the repository root
#   TLAO_BIN=path/to/tlao scripts/lib/sdk-typescript.sh
#
# TLAO_BIN defaults to target/debug/tlao (build it first). Exits non-zero on any failure.
# Sourcing this file only defines sdk_typescript_check.

sdk_typescript_check() {
  local root sdk node_major stamp lock_sum
  root="$(pwd)"
  sdk="${root}/sdk/typescript"
  export TLAO_BIN="${TLAO_BIN:-${root}/target/debug/tlao}"

  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "sdk-typescript: node (18 or later) and npm are required; install Node.js from https://nodejs.org" >&2
    return 1
  fi
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if (( node_major < 18 )); then
    echo "sdk-typescript: node $(node --version) is too old; the SDK needs Node 18 or later" >&2
    return 1
  fi
  if [[ ! -x "${TLAO_BIN}" ]]; then
    echo "sdk-typescript: no tlao binary at ${TLAO_BIN}; build it (cargo build -p tlao-cli) or set TLAO_BIN" >&2
    return 1
  fi

  # npm ci only when node_modules is missing or package-lock.json changed since.
  stamp="${sdk}/node_modules/.tlao-lock.sha256"
  lock_sum="$(sha256sum "${sdk}/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${lock_sum}" ]]; then
    echo "sdk-typescript: npm ci"
    (cd "${sdk}" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "${lock_sum}" >"${stamp}"
  fi

  echo "sdk-typescript: build (tsc), with TLAO_BIN=${TLAO_BIN}"
  (cd "${sdk}" && npm run --silent build)
  echo "sdk-typescript: generated types against the live /openapi.json"
  (cd "${sdk}" && npm run --silent check-types)
  echo "sdk-typescript: tests against tlao dev"
  (cd "${sdk}" && npm test --silent)
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  sdk_typescript_check
fi
