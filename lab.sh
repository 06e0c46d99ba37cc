#!/usr/bin/env bash
# The README's first command: gcsguard's main job on a simulated station, as root.
# Installs what it needs (.ci/setup), builds the lab in network namespaces (documentation
# addresses only; nothing leaves this machine), replays a controller app's egress
# techniques through gcsguard in each mode, and stays up until Ctrl-C, which tears it all
# down. Options go to `gcsguard lab run` (--mode isolate, --no-wait, --dir DIR).
set -euo pipefail
cd "$(dirname "$0")"
.ci/setup
exec .venv/bin/gcsguard lab run "$@"
