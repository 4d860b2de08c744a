r"""Writes images from a trained generator, or exports the generator as a SavedModel.

  python -m sngan_tf.sample --logdir=runs/sn --num_images=50000 --output=sn.npz
  python -m sngan_tf.sample --logdir=runs/sn --num_images=64 --output=sn.png
  python -m sngan_tf.sample --logdir=runs/sn --export_dir=export/sn

The generator comes from the run's latest checkpoint (or --checkpoint) and runs in
inference mode (batch-norm moving averages), as in the trainer's sample grids. An .npz
holds `images`, uint8 NHWC; a .png is one grid. Image i comes from a code drawn with the
seed (--seed, i // 250), so the first images do not depend on --num_images. The
SavedModel's `serving_default` signature maps `z` (float32 [batch, latent_dim]) to
`images` (float32 NHWC in [-1, 1]), for use without this package.
"""
import io
import os
import sys
from typing import NamedTuple, Optional

# TensorFlow's C++ info and warning lines drown the program's own; TF_CPP_MIN_LOG_LEVEL=0
# brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags

from sngan_tf import cli
import numpy as np

FLAGS = flags.FLAGS
_BATCH = 250
_FORMATS = (".npz", ".png")


def define_flags():
    """This binary's flags; called once, by `run`."""
    flags.DEFINE_string("logdir", None, "Run directory (of sngan_tf.train).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (e.g. RUN/checkpoints/ckpt-1000) "
                        "or folder; default: the run's latest.")
    flags.DEFINE_integer("num_images", 64, "Images to generate.")
    flags.DEFINE_string("output", None, "Where to write them: FILE.npz (key images, uint8 "
                        "NHWC) or FILE.png (one grid).")
    flags.DEFINE_integer("seed", 0, "Seed of the latent codes.")
    flags.DEFINE_string("export_dir", None, "Also write the generator here as a SavedModel "
                        "(signature serving_default: z -> images).")


class Sampled(NamedTuple):
    """What `sample` produced."""
    images: Optional[np.ndarray]  # uint8 NHWC, None without an output file
    checkpoint: str
    step: int
    signature: Optional[str]  # description of the exported signature, None without export


def check_outputs(num_images: int, output: Optional[str], export_dir: Optional[str]):
    """Raises ValueError naming the flag when the requested outputs make no sense."""
    if not output and not export_dir:
        raise ValueError("nothing to do: give --output=FILE.npz|FILE.png and/or "
                         "--export_dir=DIR")
    if output and os.path.splitext(output)[1].lower() not in _FORMATS:
        raise ValueError(f"--output={output} must end in .npz or .png")
    if output and num_images < 1:
        raise ValueError(f"--num_images must be positive, got {num_images}")


def load_generator(logdir: str, checkpoint: Optional[str] = None):
    """Rebuilds a run's GAN from its config.json and restores the generator.

    Args:
      logdir: the run directory.
      checkpoint: a checkpoint prefix or folder; None: the run's latest checkpoint.

    Returns:
      (gan, checkpoint path, step).

    Raises:
      sngan_tf.rundir.RunNotFoundError: no run, or no such checkpoint.
    """
    from sngan_tf import rundir, training  # pylint: disable=g-import-not-at-top

    run_dir = rundir.RunDir(logdir)
    config = training.TrainConfig.from_dict(run_dir.read_config())
    path = run_dir.resolve_checkpoint(checkpoint)
    gan = training.GAN(config)
    step = run_dir.restore_generator(gan.generator, gan.step, path)
    return gan, path, step


def generate_images(gan, num_images: int, seed: int = 0, batch_size: int = _BATCH) -> np.ndarray:
    """`num_images` uint8 NHWC images from `gan.generate`.

    Batch b takes the first codes of a full batch seeded (seed, b), so image i is the same
    whatever `num_images` is.
    """
    from sngan_tf import models, rundir  # pylint: disable=g-import-not-at-top
    batches = []
    for b, start in enumerate(range(0, num_images, batch_size)):
        n = min(batch_size, num_images - start)
        z = models.sample_z(gan.config.model, batch_size, [seed, b])[:n]
        batches.append(rundir.to_uint8(gan.generate(z).numpy()))
    return np.concatenate(batches)


def write_images(images: np.ndarray, path: str):
    """Writes uint8 NHWC images as an .npz (key `images`) or a .png grid, by extension."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from sngan_tf import rundir  # pylint: disable=g-import-not-at-top
    if os.path.dirname(path):
        tf.io.gfile.makedirs(os.path.dirname(path))
    if path.lower().endswith(".png"):
        tf.io.write_file(path, tf.io.encode_png(rundir.image_grid(images)))
    else:
        buffer = io.BytesIO()  # np.savez seeks back into its file: not GFile's way
        np.savez(buffer, images=images)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())


def export_generator(gan, export_dir: str) -> str:
    """Saves the generator as a SavedModel with signature `serving_default`: z -> images.

    Returns:
      A description of the signature, read back from the saved files.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    generator = gan.generator

    def serve(z):
        return {"images": tf.cast(generator(z, training=False), tf.float32)}

    module = tf.Module(name="sngan_generator")
    module.generator = generator  # tracked, so its variables are saved
    module.serve = tf.function(serve, input_signature=[
        tf.TensorSpec([None, gan.config.model.latent_dim], tf.float32, name="z")])
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    describe = lambda spec: f"{spec.dtype.name} {spec.shape.as_list()}"
    lines = [f"SavedModel {export_dir}, signature 'serving_default':"]
    lines += [f"  input  {k}: {describe(v)}"
              for k, v in signature.structured_input_signature[1].items()]
    lines += [f"  output {k}: {describe(v)} in [-1, 1]"
              for k, v in signature.structured_outputs.items()]
    return "\n".join(lines)


def sample(logdir: str, *, num_images: int = 64, output: Optional[str] = None,
           checkpoint: Optional[str] = None, seed: int = 0,
           export_dir: Optional[str] = None) -> Sampled:
    """Writes generated images to `output` and/or exports the generator to `export_dir`.

    Returns:
      `Sampled`: the images (if `output`), checkpoint, step and signature (if `export_dir`).

    Raises:
      ValueError: bad outputs (`check_outputs`).
      sngan_tf.rundir.RunNotFoundError: a missing run or checkpoint.
    """
    check_outputs(num_images, output, export_dir)
    gan, path, step = load_generator(logdir, checkpoint)
    images = signature = None
    if output:
        images = generate_images(gan, num_images, seed)
        write_images(images, output)
    if export_dir:
        signature = export_generator(gan, export_dir)
    return Sampled(images, path, step, signature)


def main(argv):
    cli.check_args(argv, FLAGS.logdir)
    try:
        check_outputs(FLAGS.num_images, FLAGS.output, FLAGS.export_dir)
    except ValueError as e:
        cli.fail(str(e))
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tfstart.start()  # before rundir, which imports TensorFlow: its start-up lines, filtered
    from sngan_tf import rundir  # pylint: disable=g-import-not-at-top
    try:
        result = sample(FLAGS.logdir, num_images=FLAGS.num_images, output=FLAGS.output,
                        checkpoint=FLAGS.checkpoint, seed=FLAGS.seed,
                        export_dir=FLAGS.export_dir)
    except rundir.RunNotFoundError as e:
        cli.fail(str(e))
    source = f"{result.checkpoint} (step {result.step})"
    if result.images is not None:
        print(f"Wrote {len(result.images)} images of {result.images.shape[1:]} from {source} "
              f"to {FLAGS.output}")
    if result.signature:
        print(f"Exported the generator of {source}.\n{result.signature}")


def run():
    """Console entry point (`sngan-sample`)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
