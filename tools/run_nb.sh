#!/usr/bin/env bash
# Execute notebooks top to bottom in place (heavy `#| slow` cells included), then clean and export,
# so committed notebooks carry the outputs of a real run. Usage: tools/run_nb.sh nbs/01_forward_process.ipynb [...]
set -euo pipefail
cd "$(dirname "$0")/.."
for nb in "$@"; do
  jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=3600 "$nb"
  nbdev_clean --fname "$nb"
  python tools/export.py
done
python tools/make_readme.py
