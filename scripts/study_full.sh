#!/usr/bin/env bash
# The 70-epoch study (issue 23), advanced one piece at a time:
#
#   bash scripts/study_full.sh EPOCHS [STUDY_DIR [CONFIGS]]  # seed 0 of each configuration
#                                                          # to epoch EPOCHS (resuming), then publish
#   bash scripts/study_full.sh publish [STUDY_DIR]         # only publish what exists
#
# CONFIGS (comma-separated flag files under flags/) defaults to the study's four runs:
# spectral, batchnorm and nonorm (the original study's three) and spectral_torch (SN with
# PyTorch's initialisation, added by the --init comparison); a subset lets one run catch up.
# STUDY_DIR defaults to ../study_full, outside the repository (checkpoints are never committed).
# The runs train side by side (one CPU thread each when several), niced, evaluating every 2
# epochs with K = 3 generated sets of 10,000 images (classifier features, against the 50,000
# training images), checkpointing every 0.25 epoch and keeping G every 10 epochs.
# Publishing copies each run's metrics.csv to docs/study_full/<config>_seed0_metrics.csv and
# redraws the figures and results.md there, ending with docs/study_full/seed_spread.md (how far
# one seed can be trusted, from the multi-seed short studies; written by hand).
# Run it in the background, e.g.
#   nohup bash scripts/study_full.sh 20 > ../study_full.log 2>&1 &
# A stopped piece (SIGTERM, a session's end) loses at most 0.25 epoch per run.
# A piece runs the committed code (HEAD) from its own worktree, STUDY_DIR_code
# (scripts/snapshot.sh says why), so the checkout can be edited while it runs.
set -euo pipefail
dir=$(realpath -m "${2:-$(dirname "$0")/../../study_full}")  # relative to the caller's folder
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/snapshot.sh
what=${1:?usage: bash scripts/study_full.sh EPOCHS|publish [STUDY_DIR [CONFIGS]]}
configs=${3:-spectral,batchnorm,nonorm,spectral_torch}
data=${DATA_DIR:-$repo/../shared/data/cifar10_jpg.zip/cifar10/train}
python=$repo/.venv/bin/python
if [ "$what" != publish ]; then
  code="${dir}_code"
  snapshot_code "$code"
  (cd "$code" && nice -n 10 "$python" -m sngan_tf.study run --output_dir="$dir" \
    --epochs="$what" --configs="$configs" --seeds=0 --eval_every_epochs=2 \
    --eval_num_sets=3 --dataset=image_folder --data_dir="$data")
fi
for metrics in "$dir"/*/seed_0/metrics.csv; do
  [ -f "$metrics" ] || continue
  config=$(basename "$(dirname "$(dirname "$metrics")")")
  cp "$metrics" "docs/study_full/${config}_seed0_metrics.csv"
done
"$python" -m sngan_tf.study plot --study_dir="$dir" --output_dir=docs/study_full \
  --appendix=docs/study_full/seed_spread.md
echo "published into docs/study_full/ (commit it; the runs stay in $dir)"
