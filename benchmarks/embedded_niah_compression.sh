#!/usr/bin/env bash
# VisionZip and DyCoke (docs/peers.md) on the embedded niah-small, held-out VideoNIAH, on the CPU: each over
# its main knob. Usage: bash benchmarks/embedded_niah_compression.sh [OUT] [LIMIT]
# (results in benchmarks/embedded_niah_compression.md; the data are embedded_niah.sh's)
set -euo pipefail
out=${1:-results/embedded-niah}
limit=${2:-48}
if [ ! -d "$out/data/videoniah" ]; then
    adaspark-eval niah generate --out "$out/data/videoniah" --n 24 --seed 3000000 --length 8 --resolution 448x448 \
        --fps 1 --duration 2 --types ret_insert1,ret_insert2 --tries 4
fi
common=(--task videoniah --data-root "$out/data" --model niah-small --dtype float32 --device cpu --limit "$limit")
adaspark-eval sweep "${common[@]}" --method visionzip --visionzip-keep 1.0,0.6,0.4,0.25,0.1 \
    --output "$out/sweep-visionzip"
adaspark-eval sweep "${common[@]}" --method dycoke --dycoke-merge 0.5,0.7,0.9 --output "$out/sweep-dycoke"
for method in visionzip dycoke; do
    adaspark-eval report table --results "$out/sweep-$method" --out "$out/table-$method.md"
done
