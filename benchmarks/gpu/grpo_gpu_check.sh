#!/usr/bin/env bash
# GRPO on one CUDA GPU: does scripts/grpo.py run end to end in bf16, and what do Qwen3-VL-2B/8B shapes cost per step?
#
# Run from the repository root on the GPU machine (wheels for trl/transformers/datasets... in .whl/):
#   bash benchmarks/gpu/grpo_gpu_check.sh 2>&1 | tee "$OUT/log.txt"
# Phases, each under `timeout` and all under BUDGET seconds (later phases are skipped when time runs short):
#   1. tiny model + synthetic data, the demo grounding recipe on CUDA (bf16 autocast), 5 steps
#   2. random weights with Qwen3-VL-2B-Instruct's shapes, full fine-tuning in bf16, 3 steps
#   3. random weights with Qwen3-VL-8B-Instruct's shapes, LoRA r16 on q/k/v/o, 3 steps
#   4. (if time is left) phase 2 again with 672 px images (the recipes' 451,584-pixel cap) instead of 128 px
# Figures: benchmarks/gpu/grpo_timed.py records per-step wall time, TRL's profiled sections and torch's CUDA peaks;
# nvidia-smi samples memory.used every 500 ms. benchmarks/gpu/summarize.py writes $OUT/summary.{json,md}.
# DRY=1 runs the same logic on CPU with 2-layer stand-ins (to check the script where there is no GPU).

set -u -o pipefail
set -x
START=$(date +%s)
BUDGET=${BUDGET:-400}
DRY=${DRY:-0}
OUT=${OUT:-/tmp/grpo_gpu_out}
W=${WORK:-/tmp/bench}
PY=${PY:-python3}
mkdir -p "$OUT" "$W"
: > "$W/phases.txt"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_EVALUATE_OFFLINE=1 TOKENIZERS_PARALLELISM=false

left() { echo $((BUDGET - ($(date +%s) - START))); }

# phase NAME LIMIT_S CMD...: run CMD under timeout (never past the budget) and note start/end in phases.txt.
phase() {
    local name=$1 limit=$2 l rc
    shift 2
    l=$(left)
    if ((l < 25)); then
        echo "SKIP $name: ${l}s of budget left"
        echo "$(date +%s.%N) skip $name" >>"$W/phases.txt"
        return 99
    fi
    ((limit > l)) && limit=$l
    echo "$(date +%s.%N) start $name" >>"$W/phases.txt"
    timeout -k 10 "$limit" "$@"
    rc=$?
    echo "$(date +%s.%N) end $name rc=$rc" >>"$W/phases.txt"
    echo "=== phase $name rc=$rc after $(($(date +%s) - START)) s"
    return $rc
}

summarize() {
    if [ -n "${SMI_PID:-}" ]; then kill "$SMI_PID" 2>/dev/null; fi
    $PY benchmarks/gpu/summarize.py "$W" "$OUT" || true
    cp "$W/smi.txt" "$OUT/smi.txt" 2>/dev/null || true
}
trap summarize EXIT

########## setup
if [ "$DRY" = 0 ]; then
    nvidia-smi || true
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site:$PWD/src
    nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 500 >"$W/smi.txt" &
    SMI_PID=$!
    CPU_FLAG=false
    SHAPE_OVERRIDE=()
else
    CPU_FLAG=true
    SHAPE_OVERRIDE=(--text-layers 2 --vision-depth 4 --device cpu)
fi
$PY - <<'EOF' || exit 4
import importlib.metadata as md, sys
names = ["torch", "torchvision", "transformers", "trl", "datasets", "accelerate", "peft", "huggingface-hub", "tokenizers",
         "safetensors", "pyarrow", "pandas", "fsspec", "regex", "click", "numpy", "dill", "multiprocess", "nltk"]
print("python", sys.version.split()[0], {n: md.version(n) for n in names})
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
import trl, datasets, transformers, radvlm_grpo.rewards  # the import chain of scripts/grpo.py
print("imports ok")
EOF

########## phase 1: tiny model on CUDA
phase build_tiny 60 $PY -m radvlm_grpo.models.tiny "$W/tiny" || exit 5
phase build_data 60 $PY -m radvlm_grpo.data.synthetic "$W/syn/grpo" --schema grpo --train-size 256 --validation-size 16 --test-size 16 || exit 6
GRPO=($PY benchmarks/gpu/grpo_timed.py recipes/demo/grpo_grounding.yaml --use_cpu "$CPU_FLAG" --bf16 true
    --save_strategy no --logging_steps 1 --report_to none --dataset_name "$W/syn/grpo")
BIG=(--dtype bfloat16 --attn_implementation sdpa --gradient_checkpointing true --per_device_train_batch_size 8
    --num_generations 8 --max_completion_length 128 --image_max_pixels 451584 --max_steps 3)
if [ "$DRY" = 1 ]; then BIG+=(--max_completion_length 8 --max_steps 1); fi
GRPO_TIMED_JSON=$W/run_tiny.json phase grpo_tiny 120 "${GRPO[@]}" --model_name_or_path "$W/tiny" \
    --output_dir "$W/out_tiny" --max_steps 5

########## phase 2: Qwen3-VL-2B shapes, full fine-tuning
if phase build_2b 90 $PY benchmarks/gpu/build_shaped.py "$W/tiny" "$W/s2b" --shape 2b "${SHAPE_OVERRIDE[@]}"; then
    GRPO_TIMED_JSON=$W/run_2b.json phase grpo_2b 180 "${GRPO[@]}" --model_name_or_path "$W/s2b" \
        --output_dir "$W/out_2b" "${BIG[@]}"
    rm -f "$W/out_2b"/*.safetensors  # 4 GB of random weights (trainer_state.json stays for the summary)
fi

########## phase 3: Qwen3-VL-8B shapes, LoRA (full AdamW of 8.8 B bf16 params + a reference copy is over 80 GB)
if (($(left) > 150)) || [ "$DRY" = 1 ]; then
    if phase build_8b 150 $PY benchmarks/gpu/build_shaped.py "$W/tiny" "$W/s8b" --shape 8b "${SHAPE_OVERRIDE[@]}"; then
        GRPO_TIMED_JSON=$W/run_8b_lora.json phase grpo_8b_lora 200 "${GRPO[@]}" --model_name_or_path "$W/s8b" \
            --output_dir "$W/out_8b_lora" "${BIG[@]}" --use_peft true --lora_r 16 \
            --lora_target_modules q_proj k_proj v_proj o_proj
    fi
    rm -f "$W/s8b"/*.safetensors  # 17.5 GB (shaped_info.json stays for the summary)
else
    echo "SKIP 8B: $(left) s left" | tee -a "$W/phases.txt"
fi

########## phase 4: 2B shapes with 672 px images (441 visual tokens per image instead of 16)
if (($(left) > 90)) || [ "$DRY" = 1 ]; then
    if phase build_data_672 40 $PY -m radvlm_grpo.data.synthetic "$W/syn672/grpo" --schema grpo --image-size 672 \
        --train-size 32 --validation-size 4 --test-size 4; then
        GRPO_TIMED_JSON=$W/run_2b_672px.json phase grpo_2b_672px 150 "${GRPO[@]}" --model_name_or_path "$W/s2b" \
            --output_dir "$W/out_2b_672" "${BIG[@]}" --dataset_name "$W/syn672/grpo"
    fi
fi
echo "=== done after $(($(date +%s) - START)) s"
