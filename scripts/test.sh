#!/usr/bin/env bash
# Set up the environment, then run the test suite once per Keras backend.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_unet.py -x`).
# Backends to run: KERAS_SEG_BACKENDS (default "tensorflow jax torch"). Tests run in
# KERAS_SEG_TEST_WORKERS parallel pytest-xdist workers (default: the number of CPU cores; most
# tests keep about one core busy, so two workers on two cores take about half the time).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3
workers="${KERAS_SEG_TEST_WORKERS:-$(nproc)}"
status=0
reports=()
for backend in ${KERAS_SEG_BACKENDS:-tensorflow jax torch}; do
  echo "=== KERAS_BACKEND=$backend ==="
  report="$(mktemp -t "pytest-$backend-XXXX.xml")"
  reports+=("$report")
  KERAS_BACKEND="$backend" .venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadgroup --junitxml="$report" "$@"
  rc=$?
  if [ "$rc" -ne 0 ]; then status=1; fi
done
.venv/bin/python - "${reports[@]}" <<'PY'
import sys
import xml.etree.ElementTree as ET

tests = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError):
        failed += 1
        continue
    for suite in root.iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
print(f"all backends: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit $status
