# Helpers of the Node.js parts of the test run (sourced, never run).

# require_node NAME MAJOR: fails (status 1, a message naming NAME) unless node MAJOR or
# later and npm are on the PATH.
require_node() {
  local name="$1" major="$2" have
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "${name}: node (${major} or later) and npm are required; install Node.js" >&2
    return 1
  fi
  have="$(node -p 'process.versions.node.split(".")[0]')"
  if (( have < major )); then
    echo "${name}: node $(node --version) is too old; ${major} or later is needed" >&2
    return 1
  fi
}

# npm_ci_when_changed NAME DIR: `npm ci` in DIR when its node_modules is missing or its
# package-lock.json changed since the last install (a hash kept in node_modules).
npm_ci_when_changed() {
  local name="$1" dir="$2" stamp lock_sum
  stamp="${dir}/node_modules/.tlao-lock.sha256"
  lock_sum="$(sha256sum "${dir}/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${lock_sum}" ]]; then
    echo "${name}: npm ci"
    (cd "${dir}" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "${lock_sum}" >"${stamp}"
  fi
}
