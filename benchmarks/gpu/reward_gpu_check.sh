#!/usr/bin/env bash
# The clinical reward on one CUDA GPU (issue 16 items 1, 2 and 4), every figure written under $OUT:
#   1. goldens_cuda.txt: the upstream goldens on the GPU in fp32 (tests/test_scorers_cuda.py, test_radgraph's GPU test)
#   2. reward_throughput.txt: benchmarks/reward_throughput.py --device cuda (64 x 8 pairs, real-size random-weight
#      scorers): ours and the per-pair way in pairs/s, the GPU's fp32 matmul rate and our share of it, the profiler
#      table, and the agreement and speed of scorer_dtype tf32 / bfloat16 (and bfloat16+radgraph) with fp32
#   3. grpo_reward_step.json: a GRPO step of Qwen3-VL-2B shapes (random weights, bf16, 672 px images, 8 prompts x 8,
#      128-token completions) with the radcliq reward in-process on real-size scorers (benchmarks/gpu/grpo_reward_step.py):
#      the reward's share of the step time and the GPU memory the scorers add
#   summary.txt: the lines to copy into benchmarks/gpu/RESULTS.md.
#
# Run from the repository root on the GPU machine (wheels for trl/transformers/datasets... carried in .whl/):
#   set -o pipefail; BUDGET=420 bash benchmarks/gpu/reward_gpu_check.sh 2>&1 | tee "$OUT/log.txt"
# Each phase runs under `timeout`, all under BUDGET seconds (later phases are skipped when time runs short).
# DRY=1 runs the same logic on the CPU at toy sizes (tests/test_gpu_benchmarks.py does), measuring nothing.

set -u -o pipefail
START=$(date +%s)
BUDGET=${BUDGET:-420}
DRY=${DRY:-0}
OUT=${OUT:-/tmp/reward_gpu_out}
W=${WORK:-/tmp/reward_bench}
PY=${PY:-python3}
mkdir -p "$OUT" "$W"
exec 3>&1 # the console, whatever a phase's output is redirected to
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_EVALUATE_OFFLINE=1 TOKENIZERS_PARALLELISM=false

left() { echo $((BUDGET - ($(date +%s) - START))); }

# phase NAME LIMIT_S CMD...: run CMD under timeout (never past the budget); its status is the phase's.
phase() {
    local name=$1 limit=$2 l rc
    shift 2
    l=$(left)
    if ((l < 20)); then
        echo "SKIP $name: ${l}s of budget left" | tee -a "$OUT/phases.txt" >&3
        return 99
    fi
    ((limit > l)) && limit=$l
    timeout -k 10 "$limit" "$@"
    rc=$?
    echo "phase $name rc=$rc after $(($(date +%s) - START)) s" | tee -a "$OUT/phases.txt" >&3
    return $rc
}

: >"$OUT/phases.txt"
if [ "$DRY" = 0 ]; then
    nvidia-smi | tee "$OUT/nvidia-smi.txt" || true
    if ls .whl/*.whl >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
        export PYTHONPATH=/tmp/site:$PWD/src
    else
        export PYTHONPATH=$PWD/src
    fi
    DEVICE=cuda
    TINY=()
    THROUGHPUT_SIZE=()
    SHAPED=(--shape 2b)
    GRPO_SIZE=(--use_cpu false --bf16 true --dtype bfloat16 --attn_implementation sdpa --gradient_checkpointing true
        --per_device_train_batch_size 16 --gradient_accumulation_steps 4 --num_generations 8
        --max_completion_length 128 --image_max_pixels 451584 --max_steps 3)
    IMAGE=672
else
    export PYTHONPATH=$PWD/src
    DEVICE=cpu
    TINY=(--tiny)
    THROUGHPUT_SIZE=(--prompts 4 --baseline-pairs 4)
    SHAPED=()
    GRPO_SIZE=(--use_cpu true --per_device_train_batch_size 4 --gradient_accumulation_steps 2 --num_generations 4
        --max_completion_length 8 --max_steps 2)
    IMAGE=128
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')" | tee "$OUT/device.txt"

########## 1. goldens on the GPU (fp32)
phase goldens 120 $PY -m pytest tests/test_scorers_cuda.py tests/test_radgraph.py -k "cuda or gpu" -q -rs -p no:cacheprovider \
    >"$OUT/goldens_cuda.txt" 2>&1
tail -3 "$OUT/goldens_cuda.txt"

########## 2. reward throughput: ours vs the per-pair way, fp32 share, scorer_dtype agreement
phase throughput 240 $PY benchmarks/reward_throughput.py --device "$DEVICE" "${TINY[@]}" "${THROUGHPUT_SIZE[@]}" --profile \
    --dtypes float32,tf32,bfloat16,bfloat16+radgraph >"$OUT/reward_throughput.txt" 2>"$OUT/reward_throughput.err"
grep -v "^ \|^-\|^Name\|Self " "$OUT/reward_throughput.txt" | tail -12

########## 3. the reward inside a GRPO step of Qwen3-VL-2B shapes
phase build_tiny 60 $PY -m radvlm_grpo.models.tiny "$W/tiny" >/dev/null || exit 5
MODEL=$W/tiny
if [ ${#SHAPED[@]} -gt 0 ]; then
    phase build_2b 120 $PY benchmarks/gpu/build_shaped.py "$W/tiny" "$W/s2b" "${SHAPED[@]}" && MODEL=$W/s2b
fi
phase build_data 60 $PY -m radvlm_grpo.data.synthetic "$W/syn/grpo" --schema grpo --image-size "$IMAGE" \
    --train-size 64 --validation-size 4 --test-size 4 >/dev/null || exit 6
phase grpo_step 300 $PY benchmarks/gpu/grpo_reward_step.py --scorers "$W/scorers" "${TINY[@]/--tiny/--tiny-scorers}" \
    --json "$OUT/grpo_reward_step.json" recipes/demo/grpo_report.yaml --model_name_or_path "$MODEL" \
    --dataset_name "$W/syn/grpo" --output_dir "$W/out_step" --save_strategy no --logging_steps 1 --report_to none \
    "${GRPO_SIZE[@]}" >"$OUT/grpo_reward_step.log" 2>&1
grep "grpo_reward_step\]" "$OUT/grpo_reward_step.log" | tail -5

{
    echo "device: $(cat "$OUT/device.txt")"
    echo "goldens on $DEVICE: $(tail -1 "$OUT/goldens_cuda.txt")"
    grep -E "^(ours|authors|max \||ours' time|device|ceiling|ours reaches|scorer_dtype|speedup)" "$OUT/reward_throughput.txt"
    grep "grpo_reward_step\] summary" "$OUT/grpo_reward_step.log"
    echo "total $(($(date +%s) - START)) s"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
