#!/usr/bin/env bash
# The CuPy test suite and the GPU benchmark with the Python at hand, installing nothing.
#
# For a GPU node with no network whose Python already holds CuPy, NumPy, pytest and
# hypothesis. Wheels of array-api-compat and array-api-strict, if that Python lacks them,
# can be put in .gpu-wheels/ beside the checkout: they are unpacked into a temporary
# folder, not installed. Run from the checkout's root:
#
#     bash scripts/gpu_check.sh [RESULTS_DIR]     # default: gpu-results/
#
# It writes device.txt, cupy-tests.log, cupy-tests.xml, bench-gpu.log and gpu.json (the
# benchmark's figures with the device, driver and versions) into RESULTS_DIR. The benchmark
# times eager CuPy and the training step replayed from a CUDA graph ("xgrad cupy (CUDA graph)",
# compile_step=True) beside NumPy; gpu.json's "skipped" says why a contender did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-results}}"
mkdir -p "$out"
py="${PYTHON:-python3}"
site=""
if compgen -G ".gpu-wheels/*.whl" >/dev/null; then
  site="$(mktemp -d)"
  "$py" -m pip install -q --no-index --no-deps --target "$site" .gpu-wheels/*.whl || exit 1
fi
export PYTHONPATH="${site:+$site:}$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } 2>&1 | tee "$out/device.txt"
"$py" - <<'PY' 2>&1 | tee -a "$out/device.txt"
import sys
import xgrad
try:
    print(xgrad.resolve_backend("cupy").describe())
except xgrad.BackendUnavailableError as exc:
    sys.exit(f"gpu_check: {exc}")
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
XGRAD_TEST_BACKENDS=cupy XGRAD_TEST_BACKEND_ONLY=1 "$py" -m pytest tests -q -p no:cacheprovider \
  --junitxml="$out/cupy-tests.xml" 2>&1 | tee "$out/cupy-tests.log" | tail -40
tests_status=${PIPESTATUS[0]}
"$py" scripts/bench_gpu.py --json "$out/gpu.json" 2>&1 | tee "$out/bench-gpu.log"
bench_status=${PIPESTATUS[0]}
echo "gpu_check: CuPy suite exit $tests_status, benchmark exit $bench_status; results in $out/"
exit $(( tests_status || bench_status ))
