#!/usr/bin/env bash
# A short SN-GAN training on CIFAR-10 (the study's DCGAN with spectral normalization), then
# where to look. Usage: bash scripts/run.sh demo [STEPS] (default 600 generator steps; the
# first grid after 43 s on 2 cores of an AMD EPYC limited to AVX2 with TensorFlow 2.21; see
# the README). A sample grid every 50 steps, progress and ETA every 25. Its score uses
# a lighter protocol than docs/evaluation.md's (5,000 generated against 10,000 real images), so it
# starts and ends sooner; its real statistics are cached for the next demo.
# Data: $SNGAN_DATA_DIR (an image folder or .zip[/inner/dir]) if set; else the JPEG CIFAR-10
# at ../shared/data/cifar10_jpg.zip if present; else TFDS cifar10 (needs network once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
steps="${1:-600}"
logdir="${SNGAN_LOGDIR:-runs/demo}"
py="${SNGAN_VENV:-.venv}/bin/python"
shared="../shared/data/cifar10_jpg.zip"
if [ -n "${SNGAN_DATA_DIR:-}" ]; then
  data=(--dataset=image_folder "--data_dir=$SNGAN_DATA_DIR")
elif [ -f "$shared" ]; then
  data=(--dataset=image_folder "--data_dir=$shared/cifar10/train")
else
  data=(--dataset=cifar10)
fi
"$py" -m sngan_tf.train --flagfile=flags/spectral.cfg "${data[@]}" --logdir="$logdir" \
  --train_steps="$steps" --sample_every=50 --log_every=25 --checkpoint_every=200 \
  --eval_network=classifier --classifier_path=classifiers/cifar10_classifier \
  --eval_num_samples=5000 --eval_real_samples=10000
echo "Latest sample grid: $(ls "$logdir"/samples/*.png | tail -n 1)"
echo "Scores (Fréchet distance of the CIFAR-10 classifier's features, 5,000 generated vs 10,000 real images; not FID): $logdir/metrics.csv"
echo "TensorBoard: $py -m tensorboard.main --logdir $logdir  (then open http://localhost:6006)"
