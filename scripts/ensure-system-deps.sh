#!/usr/bin/env bash
# Install what the test suite needs from Debian when it is missing (fresh machines, CI):
# PostgreSQL server binaries (the suite starts its own throwaway cluster), and
# Chromium for the dashboard's headless browser test.
# PostgreSQL is skipped when BREWLINE_TEST_POSTGRES_URL names an existing server.
set -euo pipefail
need=()
if [ -z "${BREWLINE_TEST_POSTGRES_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# Headless Chromium for the dashboard's browser test (tests/serve, marker "browser").
if [ ! -x /usr/bin/chromium ]; then
  need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (install them, or run as root to let this script)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
