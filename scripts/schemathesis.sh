#!/usr/bin/env bash
# Schemathesis (https://schemathesis.io, from PyPI) for the control API's contract test
# (test/api/schemathesis.test.ts), in a virtualenv inside the repository: .venv-st/ (git-ignored).
#
#   scripts/schemathesis.sh install   create the venv and install the pinned version (idempotent)
#   scripts/schemathesis.sh bin       print the path of its `st` command
#   scripts/schemathesis.sh ARGS...   run `st ARGS...` (e.g. `run http://127.0.0.1:8080/openapi.json`)
#
# Needs python3 with venv and ensurepip (Debian: python3-venv; .ci/run installs it).
set -euo pipefail
VERSION=4.32.5
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-st"
st="$venv/bin/st"

case "${1:-}" in
  install)
    if [ -x "$st" ] && "$venv/bin/python" -m pip show schemathesis 2>/dev/null | grep -qx "Version: $VERSION"; then
      echo "schemathesis $VERSION already in $venv"
      exit 0
    fi
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
    "$st" --version
    ;;
  bin)
    echo "$st"
    ;;
  *)
    if [ ! -x "$st" ]; then
      echo "schemathesis is not installed: run scripts/schemathesis.sh install" >&2
      exit 127
    fi
    exec "$st" "$@"
    ;;
esac
