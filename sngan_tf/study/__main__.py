r"""The study's commands: train the configurations x seeds, draw the figures, compare two.

  python -m sngan_tf.study run --output_dir=runs/study --epochs=8 --seeds=0,1,2 \
      --dataset=image_folder --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train \
      --eval_network=classifier --classifier_path=classifiers/cifar10_classifier [-- ARGS]
  python -m sngan_tf.study plot --study_dir=runs/study [--output_dir=runs/study/figures] \
      [--metric=auto] [--smoothing=0.9] [--appendix=FILES]
  python -m sngan_tf.study compare --study_dir=runs/init --configs=A,B [--output=FILE]

`run` trains each configuration of `--configs` (flags/<config>.cfg) once per seed of
`--seeds` into <output_dir>/<config>/seed_<seed>, resuming unfinished runs, then (with
--plot, the default) writes the figures and results.md into <output_dir>/figures.
`--eval_num_sets=K` asks each evaluation for K independent generated sets (metrics.csv then
holds their mean and `<metric>_std`). Arguments after `--` go to every training run (they
may not set --seed or --logdir). `plot` writes the figures and results.md of a study
folder. `compare` sets two configurations side by side, seed by seed, with exact rank tests
(`sngan_tf.study.compare`). Each command defines only its own flags (`run` and `plot` both
have an --output_dir, with different roles).
"""
import os
import sys

# TensorFlow's C++ info and warning lines drown the program's own; TF_CPP_MIN_LOG_LEVEL=0
# brings them back. The training runs set the same default.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
from absl import logging

from sngan_tf.study import runner

_USAGE = ("usage: python -m sngan_tf.study run [--flags] [-- training flags]\n"
          "       python -m sngan_tf.study plot --study_dir=DIR [--flags]\n"
          "       python -m sngan_tf.study compare --study_dir=DIR --configs=A,B\n"
          "`python -m sngan_tf.study <command> --help` lists a command's flags.")


def _define_run_flags():
    flags.DEFINE_string("output_dir", "runs/study", "Folder of the runs and figures.")
    flags.DEFINE_float("epochs", 70, "Epochs per run (the study: 70).")
    flags.DEFINE_list("configs", list(runner.CONFIGS), "Flag files under flags/ to run; when "
                      "not given, also every other configuration already in --output_dir.")
    flags.DEFINE_list("seeds", ["0"], "Seeds: each configuration trains once per seed, into "
                      "<output_dir>/<config>/seed_<seed>.")
    flags.DEFINE_string("dataset", "cifar10", "Passed to sngan_tf.train.")
    flags.DEFINE_string("data_dir", None, "Passed to sngan_tf.train.")
    flags.DEFINE_enum("eval_network", "classifier", ["inception", "classifier", "none"],
                      "Features of the per-epoch Fréchet distance.")
    flags.DEFINE_string("classifier_path",
                        os.path.join(runner.ROOT, "classifiers", "cifar10_classifier"),
                        "With --eval_network=classifier.")
    flags.DEFINE_string("inception_path", None, "With --eval_network=inception.")
    flags.DEFINE_float("eval_every_epochs", 1.0, "Evaluation interval in epochs.")
    flags.DEFINE_integer("eval_num_sets", 1, "Independent generated sets per evaluation "
                         "(metrics.csv: mean and <metric>_std over them).", lower_bound=1)
    flags.DEFINE_float("checkpoint_every_epochs", 0.25, "Checkpoint interval: a killed run "
                       "loses at most this much training.")
    flags.DEFINE_float("generator_every_epochs", 10, "Keep the generator's weights at "
                       "multiples of this many epochs (<run>/generators/; 0: never).")
    flags.DEFINE_integer("parallel", 0, "Runs trained side by side, sharing the CPU threads "
                         "(0: all configurations of a seed).", lower_bound=0)
    flags.DEFINE_boolean("plot", True, "Draw the figures and results.md at the end.")


def _define_plot_flags():
    flags.DEFINE_string("study_dir", None, "Folder holding one folder per configuration.")
    flags.DEFINE_string("output_dir", None, "Where to write figures; default <study_dir>/figures.")
    flags.DEFINE_string("metric", "auto", "metrics.csv metric to compare; auto: fid, else fd_*.")
    flags.DEFINE_float("smoothing", 0.9, "TensorBoard-style EMA weight for loss curves, [0, 1).")
    flags.DEFINE_list("appendix", [], "Markdown files appended to results.md as they are "
                      "(context the runs do not hold, e.g. another study's seed spread).")
    flags.mark_flag_as_required("study_dir")


def _define_compare_flags():
    flags.DEFINE_string("study_dir", None, "Folder holding one folder per configuration.")
    flags.DEFINE_list("configs", None, "The two configurations (folders) to compare.")
    flags.DEFINE_string("metric", "auto", "metrics.csv metric to compare; auto: fid, else fd_*.")
    flags.DEFINE_string("output", None, "Also write the comparison (markdown) here.")
    flags.mark_flags_as_required(["study_dir", "configs"])


def _import_report():
    """`sngan_tf.study.report`, TensorFlow imported first without its start-up lines."""
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tfstart.start()
    from sngan_tf.study import report  # pylint: disable=g-import-not-at-top
    return report


def _run(argv):
    f = flags.FLAGS
    extra = argv[1:]
    configs = list(f.configs)
    if not f["configs"].present:  # the study folder's own runs go on too
        configs += [c for c in runner.existing_configs(f.output_dir) if c not in configs]
    try:
        seeds = runner.parse_seeds(f.seeds)
        runner.check_extra(extra)
        runner.check_configs(configs)
    except ValueError as e:
        raise app.UsageError(str(e))
    settings = runner.StudySettings(
        output_dir=f.output_dir, epochs=f.epochs, dataset=f.dataset, data_dir=f.data_dir,
        eval_network=f.eval_network, classifier_path=f.classifier_path,
        inception_path=f.inception_path, eval_every_epochs=f.eval_every_epochs,
        eval_num_sets=f.eval_num_sets, checkpoint_every_epochs=f.checkpoint_every_epochs,
        generator_every_epochs=f.generator_every_epochs, parallel=f.parallel)
    code = runner.run_study(settings, configs, seeds, extra)
    if code or not f.plot:
        return code
    report = _import_report()
    written = report.plot_study(f.output_dir, os.path.join(f.output_dir, "figures"))
    print("\n".join(f"{k}: {v}" for k, v in sorted(written.items())))
    return 0


def _plot(argv):
    del argv  # Unused.
    f = flags.FLAGS
    for path in f.appendix:
        if not os.path.isfile(path):
            raise app.UsageError(f"--appendix: no file {path}")
    report = _import_report()
    written = report.plot_study(f.study_dir, f.output_dir, metric=f.metric,
                                smoothing=f.smoothing, appendix=f.appendix)
    for name, path in written.items():
        logging.info("wrote %s: %s", name, path)
    with open(written["results"]) as results:
        print(results.read())


def _compare(argv):
    del argv  # Unused.
    f = flags.FLAGS
    if len(f.configs) != 2:
        raise app.UsageError(f"--configs: give two configurations, got {len(f.configs)}")
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tfstart.start()
    from sngan_tf.study import compare  # pylint: disable=g-import-not-at-top
    try:
        text, _ = compare.compare_study(f.study_dir, f.configs, f.metric)
    except ValueError as e:
        raise app.UsageError(str(e))
    if f.output:
        with open(f.output, "w") as out:
            out.write(text)
    print(text)


_COMMANDS = {"run": (_define_run_flags, _run), "plot": (_define_plot_flags, _plot),
             "compare": (_define_compare_flags, _compare)}


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in _COMMANDS:
        print(f"{'unknown command ' + repr(command) if command else 'no command'}\n{_USAGE}",
              file=sys.stderr)
        sys.exit(0 if command in ("-h", "--help", "help") else 2)
    define_flags, command_main = _COMMANDS[command]
    define_flags()
    app.run(command_main, argv=[f"python -m sngan_tf.study {command}"] + sys.argv[2:])


if __name__ == "__main__":
    main()
