#!/usr/bin/env bash
# Install shoprec into ./.venv on a fresh machine, then run the demo or the test suite.
#
#   bash scripts/setup.sh demo    # install everything, run `shoprec demo`
#   bash scripts/setup.sh test    # install everything, run the test suite
#
# torch==2.13.0 is installed before anything else: that exact version is a CPU wheel, while an
# unpinned torch pulled in by another package would download gigabytes of CUDA libraries.
set -euo pipefail

job="${1:-}"
case "$job" in
  demo|test) ;;
  *) echo "usage: bash scripts/setup.sh demo|test" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# The dashboard tests drive Debian's Chromium (never a browser downloaded by a test tool).
if [ "$job" = test ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1; } \
    || echo "warning: could not install chromium; the dashboard browser tests will be skipped" >&2
fi
# The live-state tests start, kill and restart a redis-server of their own.
if [ "$job" = test ] && ! command -v redis-server >/dev/null && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -qq redis-server >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq redis-server >/dev/null 2>&1; } \
    || echo "warning: could not install redis-server; the Redis live-state tests will be skipped" >&2
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet "torch==2.13.0"
"${pip[@]}" install --quiet -e ".[dev]"

if [ "$job" = demo ]; then
  exec .venv/bin/shoprec demo
fi
exec .venv/bin/python -m pytest
