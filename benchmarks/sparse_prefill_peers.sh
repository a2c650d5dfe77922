#!/usr/bin/env bash
# XAttention and FlexPrefill on the embedded niah-small's offline VideoNIAH demo (12 questions x 4 tries), CPU.
# Usage: bash benchmarks/sparse_prefill_peers.sh [OUT]   (results in benchmarks/sparse_prefill_peers.md)
set -euo pipefail
out=${1:-results/sparse-prefill-peers}
adaspark-eval sweep --task videoniah --dtype float32 --method xattention --xattn-threshold 0.3,0.6,0.9 \
    --output "$out/xattention"
# the default minimum budget (1,024 lines) keeps every block of a ~1,100-token prompt: one block's worth here
adaspark-eval sweep --task videoniah --dtype float32 --method flexprefill --flex-gamma 0.5,0.7,0.9 \
    --flex-min-budget 128 --output "$out/flexprefill"
adaspark-eval run --task videoniah --dtype float32 --method dense --output "$out/dense"
adaspark-eval report table --results "$out" --out "$out/table.md"
adaspark-eval report plot --results "$out" --out "$out/plots"
