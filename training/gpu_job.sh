#!/bin/bash
# One lent-GPU call (see README, "Train your own bundle"): measure the batch path and the expansion on
# the idle GPU, then fine-tune the default side by side for a wall-clock budget on CelebA alone and on
# CelebA + aligned utkface_128 faces (no labels: an empty attributes.csv cell is an unknown label).
# Everything that comes back is in $OUT: run_<v>.tgz (bundle/, two snapshots, log.jsonl, the last
# sample grid, train_config.json, stdout), speed_batch_gpu.json, expand_default.json, job.log.
#
#   OUT=/tmp/out bash training/gpu_job.sh [MINUTES]     # from the repository root
#
# Carried paths: .gpu/mixed64.zip (celeba/{images,attributes.csv}, utk/images, mixed_attributes.csv:
# made by the README's "Train your own bundle" recipe) and, where the GPU image lacks them, wheels in
# .whl/. GPUJOB_EXTRA (arguments appended to every training command), GPUJOB_VARIANTS ("a b c"),
# GPUJOB_DEVICE, GPUJOB_BENCH_EXTRA and GPUJOB_EXPAND_SIZES make a small CPU dry run possible
# (GPUJOB_NO_WHEELS=1 where the wheels do not fit this machine's Python).
set -u
MIN=${1:-4.5}
OUT=${OUT:-/tmp/genaug_gpu_out}
W=${GPUJOB_WORK:-/tmp/genaug_gpu_work}
DEV=${GPUJOB_DEVICE:-cuda}
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4 NO_ALBUMENTATIONS_UPDATE=1
exec > >(tee -a "$OUT/job.log") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
if [ -z "${GPUJOB_NO_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
python3 -c "import torch, albumentations, pytorch_msssim, genaug; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
[ -d "$W/celeba" ] || python3 -m zipfile -e .gpu/mixed64.zip "$W" || exit 1
if [ ! -f "$W/mixed/attributes.csv" ]; then
    mkdir -p "$W/mixed/images"
    find "$W/celeba/images" "$W/utk/images" -name '*.jpg' -exec cp -l -t "$W/mixed/images/" {} + || exit 1
    cp "$W/mixed_attributes.csv" "$W/mixed/attributes.csv"
fi
echo "faces: celeba $(ls "$W/celeba/images" | wc -l), mixed $(ls "$W/mixed/images" | wc -l)"

# 1. the batch path and the expansion on the idle device (issue 32)
timeout 100 python3 benchmarks/speed.py --batch-only --bundle default --device "$DEV" --batch-sizes 64 256 --threads 1 \
    --data "$W/celeba" --out "$OUT/speed_batch_gpu.json" ${GPUJOB_BENCH_EXTRA:-} | tail -40
# (2026-12-04 its 45 s cap ended it with nothing written: each size runs in a fresh subprocess that loads
# torch, CUDA and the model first; now 120 s, and its output kept whole in the log)
timeout 120 python3 benchmarks/expand.py --bundle default --source "$W/celeba/images" --sizes ${GPUJOB_EXPAND_SIZES:-256,2560} \
    --variants 8 --batch-size 256 --device "$DEV" --json "$OUT/expand_default.json" 2>&1 | tee "$OUT/expand_default.log" | tail -15
date

# 2. fine-tunes of the shipped default, side by side (a fresh DiffAugment-ed D; a lower lr than the
#    2026-11 GPU fine-tune, whose lr 1e-4 lost reconstruction from the first evaluation on)
COMMON="--batch-size 128 --e-width 32 --g-width 32 --d-width 64 --content-channels 32 --detail-channels 16 --edit-space generated
        --threads 4 --log-every 100 --eval-every ${GPUJOB_EVAL_EVERY:-750} --checkpoint-every 2000 --minutes $MIN --snapshots --half
        --init-from default --d-warmup 300 --d-augment --lambda-cls 6 --balance 0.5 --lambda-rec 20"
declare -A VARIANT=(
    [a]="$W/mixed --lr 5e-5"
    [b]="$W/celeba --lr 5e-5"
    [c]="$W/mixed --lr 2e-5"
)
PIDS=()
LIMIT=$(python3 -c "print(int(float('$MIN') * 60 + 120))")
for v in ${GPUJOB_VARIANTS:-a b c}; do
    set -- ${VARIANT[$v]}
    # SIGTERM at the limit: the trainer finishes its step, checkpoints, evaluates and exports
    timeout -k 30 "$LIMIT" python3 -m genaug.training.edit_loop "$1" "$W/run_$v" $COMMON "${@:2}" \
        --name "edit64-gpu-ft-$v" ${GPUJOB_EXTRA:-} > "$W/run_$v.log" 2>&1 &
    PIDS+=($!)
done
wait "${PIDS[@]}"  # not a bare wait: that would also wait for the tee above
date
for v in ${GPUJOB_VARIANTS:-a b c}; do
    tail -c 400 "$W/run_$v.log"; echo
    grep '"eval"' "$W/run_$v/log.jsonl" | cut -c 1-240
    # what comes back (16 MiB a file): the final bundle, the 2nd and 4th evaluations' snapshots, the log, the last grid
    KEEP=$(cd "$W" && ls -d run_$v/snapshots/* 2>/dev/null | sed -n '2p;4p')
    GRIDS=$(cd "$W" && ls run_$v/samples/*.png 2>/dev/null | tail -1)
    tar czf "$OUT/run_$v.tgz" -C "$W" "run_$v/bundle" $KEEP "run_$v/log.jsonl" $GRIDS "run_$v/train_config.json" "run_$v.log"
done
date
ls -la "$OUT"
