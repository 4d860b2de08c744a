#!/usr/bin/env bash
# Short runs forked from one checkpoint of a long run (issue 23: why SN-GAN's curve went flat):
#
#   bash scripts/fork_runs.sh CHECKPOINT OUT_DIR EPOCHS CONFIGS SEEDS
#
# Every <OUT_DIR>/<config>/seed_<S> (CONFIGS: flag files under flags/, comma-separated;
# SEEDS: comma-separated) starts from CHECKPOINT (a prefix such as
# ../study_full/spectral/seed_0/checkpoints/ckpt-15620: G, D, both Adams, the step) and trains
# on to EPOCHS with its own flag file and seed; a seed sets the data order and the codes from
# that step on, so the configurations of one seed see the same batches and are compared seed
# by seed. One evaluation at the end (K = 3 sets of 10,000, classifier features, against the
# 50,000 training images), then `study compare` of the first two configurations into
# <OUT_DIR>/compare.md and `study plot` into <OUT_DIR>/figures (results.md, with D over
# training). Re-running resumes; like scripts/study_full.sh it runs the committed code from
# a worktree, OUT_DIR_code. E.g. the learning-rate arm:
#   nohup bash scripts/fork_runs.sh ../fork20/spectral/ckpt-15620 ../lr_fork 21 \
#     spectral,spectral_authors_lr 1,2,3 > ../lr_fork.log 2>&1 &
set -euo pipefail
usage="usage: bash scripts/fork_runs.sh CHECKPOINT OUT_DIR EPOCHS CONFIGS SEEDS"
ckpt=$(realpath -m "${1:?$usage}")
out=$(realpath -m "${2:?$usage}")
epochs=${3:?$usage}; configs=${4:?$usage}; seeds=${5:?$usage}
[ -f "$ckpt.index" ] || { echo "CHECKPOINT: no $ckpt.index (give the prefix, e.g. .../ckpt-15620)" >&2; exit 2; }
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/snapshot.sh
data=${DATA_DIR:-$repo/../shared/data/cifar10_jpg.zip/cifar10/train}
python=$repo/.venv/bin/python
name=$(basename "$ckpt")
for config in ${configs//,/ }; do
  for seed in ${seeds//,/ }; do
    dest="$out/$config/seed_$seed/checkpoints"
    [ -e "$dest/checkpoint" ] && continue  # started before: it resumes from its own
    mkdir -p "$dest"
    cp "$ckpt".* "$dest/"
    printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' "$name" "$name" \
      > "$dest/checkpoint"
  done
done
code="${out}_code"
snapshot_code "$code"
(cd "$code" && nice -n 10 "$python" -m sngan_tf.study run --output_dir="$out" \
  --epochs="$epochs" --configs="$configs" --seeds="$seeds" --eval_every_epochs="$epochs" \
  --eval_num_sets=3 --dataset=image_folder --data_dir="$data" --noplot)
first_two=$(echo "$configs" | cut -d, -f1,2)
"$python" -m sngan_tf.study compare --study_dir="$out" --configs="$first_two" \
  --output="$out/compare.md"
"$python" -m sngan_tf.study plot --study_dir="$out"  # figures and results.md: OUT_DIR/figures
