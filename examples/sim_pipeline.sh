#!/usr/bin/env bash
# The whole pipeline on the SIMULATED backend (no network, seconds): a template for real runs.
# Usage: examples/sim_pipeline.sh [GSM8K_JSONL] [OUT_DIR]
set -euo pipefail
SOURCE=${1:-../shared/data/gsm8k_test.jsonl}
OUT=${2:-out/sim}
TTC=${TTC:-ttcalloc}
mkdir -p "$OUT"
$TTC data gsm8k --source "$SOURCE" --limit 400 --out "$OUT/problems.parquet"
$TTC sample "$OUT/problems.parquet" --model sim/medium --n 16 --out "$OUT/samples.parquet" --no-progress
$TTC estimate "$OUT/samples.parquet" --problems "$OUT/problems.parquet" --ks 1,2,4,8 --cost samples \
    --out "$OUT/curves.parquet"
$TTC solve "$OUT/curves.parquet" --problems "$OUT/problems.parquet" --budgets 1.5,2,4 \
    --out "$OUT/allocation.parquet"
$TTC train "$OUT/allocation.parquet" --problems "$OUT/problems.parquet" --budget 2 \
    --out "$OUT/policy"
$TTC allocate "$OUT/policy" "$OUT/problems.parquet" --out "$OUT/plan.parquet"
