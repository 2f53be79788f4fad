#!/bin/bash
# One lent-GPU call (see README, "Training on a lent GPU"): unzip the carried CelebA pack, train
# edit-aware fine-tunes of the default side by side on the one GPU for a wall-clock budget, then measure GPU
# throughput (cached augmentation and HDF5 expansion). Everything that comes back is in $OUT:
# run_<v>.tgz (bundle/, chosen snapshots/, log.jsonl, last sample grids, train_config.json, stdout), speed_default.json,
# expand_default.json, job.log.
#
#   OUT=/tmp/out bash training/gpu_job.sh [MINUTES]     # from the repository root
#
# Carried paths: .gpu/celeba_train_64_q85.zip and, where the GPU image lacks them, wheels in .whl/.
# GPUJOB_EXTRA (arguments appended to every training command) and GPUJOB_VARIANTS ("a b c") make a
# small CPU dry run possible (GPUJOB_NO_WHEELS=1 where the wheels do not fit this machine's Python).
set -u
MIN=${1:-6.0}
OUT=${OUT:-/tmp/genaug_gpu_out}
W=${GPUJOB_WORK:-/tmp/genaug_gpu_work}
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
exec > >(tee -a "$OUT/job.log") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
if [ -z "${GPUJOB_NO_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
python3 -c "import torch, albumentations, pytorch_msssim; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
[ -d "$W/celeba_train_64" ] || unzip -q .gpu/celeba_train_64_q85.zip -d "$W" || exit 1
DATA=$W/celeba_train_64
COMMON="--batch-size 128 --e-width 32 --g-width 32 --d-width 64 --content-channels 32 --detail-channels 16 --edit-space generated
        --threads 4 --log-every 100 --eval-every ${GPUJOB_EVAL_EVERY:-750} --checkpoint-every 2000 --minutes $MIN --snapshots --half"
# fine-tunes of the shipped default with a fresh, DiffAugment-ed D (the CPU fine-tune's recipe, 4x the batch)
FT="--init-from default --d-warmup 300 --d-augment --lr 1e-4 --lambda-cls 6 --balance 0.5"
declare -A VARIANT=(
    [a]="$FT"
    [b]="$FT --lambda-rec 20"
    [c]="$FT --lambda-identity ${GPUJOB_LAMBDA_ID:-1}"
)
PIDS=()
LIMIT=$(python3 -c "print(int(float('$MIN') * 60 + 150))")
for v in ${GPUJOB_VARIANTS:-a b c}; do
    # SIGTERM at the limit: the trainer finishes its step, checkpoints, evaluates and exports
    timeout -k 60 "$LIMIT" python3 -m genaug.training.edit_loop "$DATA" "$W/run_$v" $COMMON ${VARIANT[$v]} \
        --name "edit64-gpu-ft-$v" ${GPUJOB_EXTRA:-} > "$W/run_$v.log" 2>&1 &
    PIDS+=($!)
done
wait "${PIDS[@]}"  # not a bare wait: that would also wait for the tee above
date
for v in ${GPUJOB_VARIANTS:-a b c}; do
    tail -c 400 "$W/run_$v.log"; echo
    grep '"eval"' "$W/run_$v/log.jsonl" | cut -c 1-200
    # what comes back (16 MiB a file): the final bundle, the latest snapshots with held-out MS-SSIM >= 0.90
    # and >= 0.89 (the trade-off points a selection rule may pick), the log and the last two sample grids
    KEEP=$(python3 - "$W/run_$v" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
ev = {r["step"]: r["eval"]["msssim"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "eval" in r}
snaps = sorted(int(p.name) for p in (run / "snapshots").iterdir()) if (run / "snapshots").exists() else []
keep = {max([s for s in snaps if ev.get(s, 0) >= t], default=None) for t in (0.90, 0.89)} - {None}
print(" ".join(f"run_{run.name[4:]}/snapshots/{s:06d}" for s in sorted(keep)))
PY
)
    GRIDS=$(cd "$W" && ls run_$v/samples/*.png | tail -2)
    tar czf "$OUT/run_$v.tgz" -C "$W" "run_$v/bundle" $KEEP "run_$v/log.jsonl" $GRIDS "run_$v/train_config.json" "run_$v.log"
done
DEV=${GPUJOB_DEVICE:-cuda}
timeout 70 python3 benchmarks/speed.py --bundle default --device "$DEV" --batch-size 256 --no-inversion --data "$DATA" \
    --photos 20 --out "$OUT/speed_default.json" ${GPUJOB_BENCH_EXTRA:-} | tail -25
timeout 90 python3 benchmarks/expand.py --bundle default --source "$DATA/images" --sizes ${GPUJOB_EXPAND_SIZES:-256,2560} \
    --variants 8 --batch-size 256 --device "$DEV" --json "$OUT/expand_default.json" | tail -15
date
ls -la "$OUT"
