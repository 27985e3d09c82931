#!/usr/bin/env bash
# Set up the environment, then run the main job: `keras-seg demo` (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/keras-seg demo "$@"
