#!/usr/bin/env bash
# The whole pipeline, data -> sample -> estimate -> solve -> train (one policy per budget) ->
# evaluate -> allocate -> run (the first policy answering the test questions on fresh samples,
# against uniform at the same cost), in one output folder.  Every setting is an environment variable; the
# Makefile's demo, smoke and reproduce targets call this script with their own.
#
#   OUT=out/run MODEL=sim/medium examples/pipeline.sh
#
# Rerunning skips what is done: sampling resumes, and a stage whose inputs and options are
# unchanged is skipped (FORCE=1 reruns every stage but sampling).  The wall time of each stage
# is printed at the end.
set -euo pipefail

TTC=${TTC:-ttcalloc}
OUT=${OUT:-out/run}
KIND=${KIND:-gsm8k}                   # gsm8k, math or jsonl
SOURCE=${SOURCE:-../shared/data/gsm8k_test.jsonl}
DATA_ARGS=${DATA_ARGS:-}              # extra flags for `ttcalloc data KIND`
LIMIT=${LIMIT:-}                      # keep the first LIMIT problems
TEST_FRAC=${TEST_FRAC:-0.3}
MODEL=${MODEL:-sim/medium}
N=${N:-8}                             # samples per problem
MAX_TOKENS=${MAX_TOKENS:-512}
TEMPERATURE=${TEMPERATURE:-0.8}
CONCURRENCY=${CONCURRENCY:-8}
SAMPLE_ARGS=${SAMPLE_ARGS:-}          # extra flags for `ttcalloc sample` (--api-base, --rpm ...)
KS=${KS:-1,2,4}
COST=${COST:-samples}
BUDGETS=${BUDGETS:-1.5,2,3}
FOLDS=${FOLDS:-3}
LEARNERS=${LEARNERS:-stop,imitate}    # one policy per learner and budget (stop: adaptive)
RUN=${RUN:-1}                          # end with `ttcalloc run` on the test questions
FORCE=${FORCE:-}

force=()
[[ -n "$FORCE" ]] && force=(--force)
limit=()
[[ -n "$LIMIT" ]] && limit=(--limit "$LIMIT")
mkdir -p "$OUT"
timings=()

stage() {  # stage NAME COMMAND...: run, and remember its wall time
    local name=$1 start tenths
    shift
    start=$(date +%s%N)
    "$@"
    tenths=$((($(date +%s%N) - start) / 100000000))
    timings+=("$(printf '%-12s %6d.%d s' "$name" $((tenths / 10)) $((tenths % 10)))")
}

# shellcheck disable=SC2086  # DATA_ARGS and SAMPLE_ARGS are lists of flags
stage data $TTC data "$KIND" --source "$SOURCE" $DATA_ARGS "${limit[@]}" \
    --test-frac "$TEST_FRAC" --out "$OUT/problems.parquet" "${force[@]}"
# shellcheck disable=SC2086
stage sample $TTC sample "$OUT/problems.parquet" --model "$MODEL" --n "$N" \
    --max-tokens "$MAX_TOKENS" --temperature "$TEMPERATURE" --concurrency "$CONCURRENCY" \
    $SAMPLE_ARGS --out "$OUT/samples.parquet"
stage estimate $TTC estimate "$OUT/samples.parquet" --problems "$OUT/problems.parquet" \
    --ks "$KS" --cost "$COST" --out "$OUT/curves.parquet" "${force[@]}"
stage solve $TTC solve "$OUT/curves.parquet" --problems "$OUT/problems.parquet" \
    --budgets "$BUDGETS" --out "$OUT/allocation.parquet" "${force[@]}"
policies=()
static=""
first=""
first_budget=""
for learner in ${LEARNERS//,/ }; do
    for b in ${BUDGETS//,/ }; do
        stage "$learner@$b" $TTC train "$OUT/allocation.parquet" \
            --problems "$OUT/problems.parquet" --learner "$learner" --budget "$b" \
            --folds "$FOLDS" --out "$OUT/$learner-$b" "${force[@]}"
        policies+=("$learner=$OUT/$learner-$b")
        [[ -z "$first" ]] && first="$OUT/$learner-$b" && first_budget=$b
        [[ "$learner" != stop && -z "$static" ]] && static="$OUT/$learner-$b"
    done
done
stage evaluate $TTC evaluate "${policies[@]}" --out "$OUT/report" "${force[@]}"
if [[ -n "$static" ]]; then  # a plan of one action per question (adaptive policies decide online)
    stage allocate $TTC allocate "$static" "$OUT/problems.parquet" \
        --out "$OUT/plan.parquet" "${force[@]}"
fi
# answers.parquet: the first policy answers the held-out questions on fresh samples (kept in
# answers-samples.parquet/, so a rerun draws nothing again), compared with uniform at its cost
if [[ -n "$RUN" && -n "$first" ]]; then
    # shellcheck disable=SC2086
    stage run $TTC run "$first" "$OUT/problems.parquet" --split test --model "$MODEL" \
        --budget "$first_budget" --max-tokens "$MAX_TOKENS" --temperature "$TEMPERATURE" \
        --concurrency "$CONCURRENCY" --seed 1 $SAMPLE_ARGS --compare uniform \
        --out "$OUT/answers.parquet"
fi

{
    echo "wall time per stage:"
    printf '  %s\n' "${timings[@]}"
    echo "artifacts in $OUT/; report: $OUT/report/report.md; plot: $OUT/report/accuracy_vs_budget.png"
} >&2
