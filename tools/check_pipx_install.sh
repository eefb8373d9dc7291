#!/usr/bin/env bash
# Check that the built wheel installs with pipx into a fresh environment and runs.
#
# Everything goes into a temporary directory (pipx's home and bin dir included), so the
# machine's own pipx and PATH are untouched. Needs the package index (pipx, build and
# aivoco's dependencies are downloaded), so it is not part of the test suite.
#
#   bash tools/check_pipx_install.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet pipx build
"$WORK/tools/bin/python" -m build --wheel --outdir "$WORK/dist" "$REPO" >/dev/null
wheel="$(ls "$WORK"/dist/aivoco-*.whl)"
echo "built $(basename "$wheel")"

export PIPX_HOME="$WORK/pipx" PIPX_BIN_DIR="$WORK/bin" PIPX_MAN_DIR="$WORK/man"
"$WORK/tools/bin/pipx" install "$wheel"
# A fresh environment: no config, no key; the demo needs neither.
export XDG_CONFIG_HOME="$WORK/config" HOME="$WORK/home"
mkdir -p "$HOME"
"$WORK/bin/aivoco" --version
"$WORK/bin/aivoco" config path
"$WORK/bin/aivoco" config init
"$WORK/bin/aivoco" config show --json >/dev/null
"$WORK/bin/aivoco" --show-completion bash >/dev/null 2>&1 || true  # shell detection aside
_AIVOCO_COMPLETE=source_bash "$WORK/bin/aivoco" | grep -q _aivoco_completion
"$WORK/bin/aivoco" demo --output "$WORK/reply.wav" --plain >/dev/null
test -s "$WORK/reply.wav"
echo "pipx install of $(basename "$wheel"): ok"
