#!/usr/bin/env bash
# --init=normal against --init=torch for one configuration, seed by seed (issue 23, point 0):
#
#   bash scripts/init_comparison.sh CONFIG OUTPUT_DIR [SEEDS] [STEPS]
#   e.g. bash scripts/init_comparison.sh nonorm runs/init "0 1 2 3 4" 2000
#
# Trains flags/CONFIG.cfg with each initialisation for STEPS generator steps (default 2000)
# per seed of SEEDS (default "0 1 2 3 4"), into OUTPUT_DIR/CONFIG_{normal,torch}/seed_S, both
# runs of a seed side by side with one CPU thread each; each run evaluates at its last step
# (10,000 generated images, the offline classifier's features, against the training set);
# then compares the two seed by seed with exact rank tests into OUTPUT_DIR/CONFIG_compare.md.
# Runs checkpoint every 0.25 epoch (a checkpoint does not change training: resumes are
# bitwise identical, tests/reliability_test.py); finished runs are skipped (train resumes
# and stops at once), so a stopped comparison continues where it was.
# Needs the venv (bash scripts/run.sh setup) and the shared CIFAR-10 zip. Runs the committed
# code (HEAD) from its own worktree, OUTPUT_DIR_code (scripts/snapshot.sh says why).
set -euo pipefail
[ -n "${2:-}" ] && out=$(realpath -m "$2")  # relative to the caller's folder
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/snapshot.sh
config=${1:?usage: bash scripts/init_comparison.sh CONFIG OUTPUT_DIR [SEEDS] [STEPS]}
out=${out:?usage: bash scripts/init_comparison.sh CONFIG OUTPUT_DIR [SEEDS] [STEPS]}
seeds=${3:-0 1 2 3 4}
steps=${4:-2000}
data=${DATA_DIR:-$repo/../shared/data/cifar10_jpg.zip/cifar10/train}
[ -f "flags/$config.cfg" ] || { echo "error: no flags/$config.cfg" >&2; exit 2; }
python=$repo/.venv/bin/python
snapshot_code "${out}_code"
cd "${out}_code"
for seed in $seeds; do
  for init in normal torch; do
    logdir="$out/${config}_$init/seed_$seed"
    mkdir -p "$logdir"
    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 \
      "$python" -m sngan_tf.train --flagfile="flags/$config.cfg" --init="$init" --seed="$seed" \
        --train_steps="$steps" --checkpoint_every_epochs=0.25 \
        --dataset=image_folder --data_dir="$data" \
        --eval_network=classifier --classifier_path="$repo/classifiers/cifar10_classifier" \
        --logdir="$logdir" >> "$logdir/train.log" 2>&1 &
  done
  wait
done
"$python" -m sngan_tf.study compare --study_dir="$out" \
  --configs="${config}_normal,${config}_torch" --output="$out/${config}_compare.md"
cat "$out/${config}_compare.md"
