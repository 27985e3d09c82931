#!/usr/bin/env bash
# Create .venv (if missing) and install keras-seg with all three backends and the test tools.
# Re-running is cheap: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.keras-seg-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: this machine serves these wheels from local files.
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[torch,tensorflow,jax,hub,data,litert,onnx,test]"
  rm -f .venv/.keras-seg-installed-*
  touch "$stamp"
fi
echo "keras-seg environment ready: $(.venv/bin/python -c 'import keras, tensorflow, jax, torch; print(f"keras {keras.__version__}, tensorflow {tensorflow.__version__}, jax {jax.__version__}, torch {torch.__version__}")' 2>/dev/null)"
