#!/usr/bin/env bash
# Debian's chromium for the browser suites (the console's and the SDK's): installed with
# apt-get when missing. Sourcing this file only defines ensure_chromium.

# ensure_chromium NAME: makes $CHROMIUM (default /usr/bin/chromium) exist, installing
# Debian's package when it does not; NAME prefixes the messages.
ensure_chromium() {
  local name="$1" sudo=()
  export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
  if [[ -x "${CHROMIUM}" ]]; then
    return 0
  fi
  echo "${name}: installing Debian's chromium"
  if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
  fi
  # The package index is refreshed only when installing from the current one fails.
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  fi
}
