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
backends="${KERAS_SEG_BACKENDS-tensorflow jax torch}"
for backend in $backends; do
  case "$backend" in
    tensorflow|jax|torch) ;;
    *) echo "error: KERAS_SEG_BACKENDS: unknown backend '$backend'; valid: tensorflow jax torch" >&2; exit 2 ;;
  esac
done
if [ -z "${backends// /}" ]; then
  echo "error: KERAS_SEG_BACKENDS is blank; name one or more of: tensorflow jax torch" >&2
  exit 2
fi
status=0
reports=()
for backend in $backends; do
  echo "=== KERAS_BACKEND=$backend ==="
  report="$(mktemp -t "pytest-$backend-XXXX.xml")"
  reports+=("$report")
  KERAS_BACKEND="$backend" .venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadgroup --junitxml="$report" "$@"
  rc=$?
  if [ "$rc" -ne 0 ]; then status=1; fi
done
.venv/bin/python - $backends -- "${reports[@]}" <<'PY' || status=1
"""Per-backend and overall counts from the JUnit reports; fails when a backend ran no test."""
import sys
import xml.etree.ElementTree as ET

args = sys.argv[1:]
split = args.index("--")
backends, paths = args[:split], args[split + 1 :]
totals = [0, 0, 0]
empty = []
for backend, path in zip(backends, paths):
    tests = failed = skipped = 0
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError):
        failed = 1
    else:
        for suite in root.iter("testsuite"):
            tests += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    passed = tests - failed - skipped
    print(f"{backend}: {passed} passed, {failed} failed, {skipped} skipped")
    if passed == 0:
        empty.append(backend)
    totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
print(f"all backends: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
if empty:
    print(f"error: no test passed on {', '.join(empty)}", file=sys.stderr)
    sys.exit(1)
PY
exit $status
