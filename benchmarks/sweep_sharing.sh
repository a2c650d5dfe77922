#!/usr/bin/env bash
# What a sweep saves by decoding and encoding each video once for all its points: the same 3-point sweep
# with and without sharing, on the CPU; compare answer_seconds in the two sweep.json files.
# Usage: bash benchmarks/sweep_sharing.sh [OUT]   (results in benchmarks/sweep_sharing.md)
set -euo pipefail
out=${1:-results/sweep-sharing}
for mode in share no-share; do
    adaspark-eval sweep --task videoniah --model niah-small --dtype float32 --p 1.0,0.7,0.5 --limit 8 \
        --output "$out/$mode" "--$mode"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], d['answer_seconds'], 's', d['shared_work'])" \
        "$out/$mode/sweep.json" "$mode"
done
