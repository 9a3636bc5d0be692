#!/usr/bin/env bash
# One-step set-up on a fresh machine (Python 3.11, Java 17, Maven, Node present):
#   bash scripts/setup.sh          -> .venv with Mayak, the beacon built, Kafka jars cached
#   bash scripts/setup.sh --test   -> the same, plus test extras, Debian's chromium, wrk, hey
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found: install $2" >&2; exit 2; }; }
need python3.11 "Python 3.11" 2>/dev/null || need python3 "Python 3.11"
need java "openjdk-17-jre-headless (apt-get install openjdk-17-jre-headless)"
need mvn "maven (apt-get install maven)"
need npm "Node.js 20 with npm"

PY=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
echo "==> installing Python packages (pinned in pyproject.toml)"
.venv/bin/python -m pip install -q --upgrade pip
if [ $want_tests = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi

if [ -f producers/beacon/package.json ]; then
  echo "==> building the beacon (npm ci)"
  (cd producers/beacon && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi

if [ -f dashboards/ui/package.json ]; then
  echo "==> bundling the dashboards' chart library (npm ci: uPlot into dashboards/static/vendor)"
  (cd dashboards/ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi

echo "==> fetching Apache Kafka jars from Maven Central (cached in ~/.cache/mayak)"
.venv/bin/mayak kafka fetch

# chromium drives the browser tests; wrk and hey are the load generators of `mayak bench`
if [ $want_tests = 1 ] && ! { command -v chromium && command -v wrk && command -v hey; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian's chromium, wrk and hey"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium wrk hey >/dev/null
  else
    echo "error: tests and benchmarks need Debian's chromium, wrk and hey: sudo apt-get install chromium wrk hey" >&2
    exit 2
  fi
fi
echo "==> ready"
