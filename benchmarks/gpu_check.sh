#!/usr/bin/env bash
# The prepared device check of the GPU path (docstring of benchmarks/gpu_check.py):
#   benchmarks/gpu_check.sh --out DIR [--study-units U --study-benchmarks B] [--dry-run]
# Writes DIR/gpu_check.json after every section and ends within GPU_CHECK_SECONDS (default
# 480): a time-out keeps what the finished sections measured. PYTHON picks the interpreter.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python3}"
# From a checkout: the package's sources unless slmscale is installed.
"$py" -c "import slmscale" 2>/dev/null || export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=INT --kill-after=15 "${GPU_CHECK_SECONDS:-480}" "$py" "$here/gpu_check.py" "$@"
