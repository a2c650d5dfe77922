#!/usr/bin/env bash
# Accuracy vs FLOPs of the embedded niah-small on a held-out generated VideoNIAH set, on the CPU.
# Usage: bash benchmarks/embedded_niah.sh [OUT]   (results in benchmarks/embedded_niah.md)
set -euo pipefail
out=${1:-results/embedded-niah}
# seeds from 3,000,000: never used in training (0..) nor in its held-out checks (1,000,000..)
adaspark-eval niah generate --out "$out/data/videoniah" --n 24 --seed 3000000 --length 8 --resolution 448x448 \
    --fps 1 --duration 2 --types ret_insert1,ret_insert2 --tries 4
adaspark-eval sweep --task videoniah --data-root "$out/data" --model niah-small --dtype float32 \
    --p 1.0,0.7,0.5,0.4,0.3,0.2,0.1 --output "$out/sweep"
# the peer baseline at about the same FLOPs: the dense model on fewer frames (the files have 8)
for budget in 0.6 0.4; do
    adaspark-eval run --task videoniah --data-root "$out/data" --model niah-small --dtype float32 --frames 8 \
        --method frames --frame-budget "$budget" --output "$out/sweep/frames-$budget"
done
adaspark-eval report table --results "$out/sweep" --out "$out/table.md"
adaspark-eval report plot --results "$out/sweep" --out "$out/plots"
