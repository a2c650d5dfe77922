#!/usr/bin/env bash
# Every method of the harness over its main knob on the embedded niah-small's offline VideoNIAH demo
# (12 questions x 4 tries, generated once into ~/.cache/adaspark-eval/), CPU, float32; then one
# accuracy-vs-FLOPs figure of all methods (docs/figures/peers_demo.png) and the table (benchmarks/peers_demo.md).
# Usage: bash benchmarks/peers_demo.sh [OUT]
set -euo pipefail
out=${1:-results/peers-demo}
common=(--task videoniah --dtype float32)
adaspark-eval sweep "${common[@]}" --p 1.0,0.7,0.5,0.3 --output "$out/adaspark"
adaspark-eval run "${common[@]}" --method dense --output "$out/dense"
adaspark-eval sweep "${common[@]}" --method xattention --xattn-threshold 0.3,0.6,0.9 --output "$out/xattention"
# the default minimum budget (1,024 lines) keeps every block of a ~1,100-token prompt: one block's worth here
adaspark-eval sweep "${common[@]}" --method flexprefill --flex-gamma 0.3,0.7 --flex-min-budget 128 \
    --output "$out/flexprefill"
adaspark-eval sweep "${common[@]}" --method visionzip --visionzip-keep 0.6,0.4,0.25 --output "$out/visionzip"
adaspark-eval sweep "${common[@]}" --method dycoke --dycoke-merge 0.5,0.7,0.9 --output "$out/dycoke"
adaspark-eval run "${common[@]}" --method fastv --fastv-keep 0.5 --output "$out/fastv-0.5"
adaspark-eval run "${common[@]}" --method fastv --fastv-keep 0.25 --output "$out/fastv-0.25"
adaspark-eval run "${common[@]}" --method frames --frame-budget 0.5 --frames 8 --output "$out/frames-0.5"
adaspark-eval report table --results "$out" --out "$out/table.md"
adaspark-eval report plot --results "$out" --out "$out/plots"
