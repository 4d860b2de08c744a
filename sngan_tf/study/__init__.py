"""The normalisation study (Miyato et al., ICLR 2018, Figs. 1-3) as a part of the package.

  python -m sngan_tf.study run --output_dir=runs/study --epochs=3 --seeds=0,1,2 ...
  python -m sngan_tf.study plot --study_dir=runs/study

Modules: `runner` (configurations x seeds, each a training process), `runs` (a study folder
read through `sngan_tf.rundir`, grouped by configuration), `stats` (mean ± std over seeds,
smoothing), `figures` (one function per figure), `report` (figures and results.md).
Importing this package imports none of them (nor matplotlib).
"""
