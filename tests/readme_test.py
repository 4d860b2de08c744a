"""The README and docs/ as written: their commands, example and links against the code.

- Every fenced block marked `<!-- test: run -->` (the line before its opening fence) runs:
  a bash block command by command in a sandbox (below), the README's Keras example
  in-process with checks on what it trained, saved and restored.
- Every command of the README, CHANGELOG and docs/*.md that starts one of the project's
  programs names only flags that program defines (from its `--helpfull`), with a value
  among an enum flag's values, so a renamed flag fails here even where the command itself
  takes hours.
- Every relative link and image resolves, anchors included.
- The README stays a front page: at most 300 lines, the two commands, a link to each page.
- The 70-epoch study's numbers, copied by hand after each piece into the README, docs/study.md
  and docs/study_full/seed_spread.md, are what the committed *_seed0_metrics.csv files hold,
  and reach the epoch those files reach.

The sandbox is a temporary folder with the repository's `flags/`, `classifiers/`,
`sngan_tf/`, `scripts/` and `benchmarks/` linked in, `../shared/data/cifar10_jpg.zip` a
stand-in zip of 128 random 32x32 PNGs, `$HOME` (hence the data cache) inside it, and
`.venv/bin/python` replaced by the Python running the tests.
"""
import functools
import glob
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, List, NamedTuple, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from sngan_tf import rundir

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_README = os.path.join(_ROOT, "README.md")
_DOCS = sorted(glob.glob(os.path.join(_ROOT, "docs", "*.md")))
_PAGES = [_README, os.path.join(_ROOT, "CHANGELOG.md")] + _DOCS
_MARKER = "<!-- test: run -->"
_FENCE = re.compile(r"^```(\w*)\s*$")
_VENV_PYTHON = ".venv/bin/python"
_HELP_FLAGS = ("--help", "--helpshort", "--helpfull")
# The pages the README's table of documentation must link to (issue 21).
_REQUIRED_PAGES = ("docs/training.md", "docs/distributed.md", "docs/evaluation.md",
                   "docs/study.md", "docs/performance.md", "docs/architecture.md",
                   "CHANGELOG.md")
_SANDBOX_LINKS = ("flags", "classifiers", "sngan_tf", "scripts", "benchmarks")


class Block(NamedTuple):
    """One fenced code block of a page."""
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marked: bool  # preceded by _MARKER: run by this test


class Command(NamedTuple):
    """One command of a bash block: its text as written (continuations kept) and its words."""
    line: int
    text: str
    words: List[str]


def _relative(page: str) -> str:
    return os.path.relpath(page, _ROOT)


def read_blocks(page: str) -> List[Block]:
    """The fenced blocks of a Markdown page, in order."""
    blocks, lines = [], open(page, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        previous = next((l.strip() for l in reversed(lines[:start]) if l.strip()), "")
        blocks.append(Block(page, start + 1, match.group(1), "\n".join(lines[start + 1:i]) + "\n",
                            previous == _MARKER))
        i += 1
    return blocks


def split_commands(block: Block) -> List[Command]:
    """The commands of a bash block: backslash continuations joined, a quoted string may
    span lines, comments dropped."""
    commands, pending, first = [], [], 0
    for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if not pending:
            first = number
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        text = "\n".join(pending)
        try:
            words = shlex.split(text.replace("\\\n", " "), comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if words:
            commands.append(Command(first, text, words))
        pending = []
    assert not pending, f"{_relative(block.page)}:{block.line}: unterminated command"
    return commands


def program_of(words: List[str]) -> Optional[Tuple[Tuple[str, ...], List[str], List[str]]]:
    """(the program's argv prefix, its arguments, the training flags it passes on) for a
    command starting one of the project's programs, else None (pip, tensorboard, ...)."""
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # VAR=value cmd
        words = words[1:]
    if len(words) >= 3 and words[:2] == ["bash", "scripts/run.sh"]:
        if words[2] != "bench":
            return None  # demo, test, setup: no flags of ours
        return ("benchmarks/benchmark.py",), words[3:], []
    if len(words) < 2 or os.path.basename(words[0]) not in ("python", "python3"):
        return None
    if words[1] == "-m" and len(words) > 2 and words[2].startswith("sngan_tf"):
        prefix, args = ("-m", words[2]), words[3:]
        if words[2] == "sngan_tf.study" and args:
            prefix, args = prefix + (args[0],), args[1:]
    elif words[1].endswith(".py"):
        prefix, args = (words[1],), words[2:]
    else:
        return None
    passed_on = []
    if "--" in args:  # launch_workers.py and the study pass these to sngan_tf.train
        args, passed_on = args[:args.index("--")], args[args.index("--") + 1:]
    return prefix, args, passed_on


@functools.lru_cache(maxsize=None)
def defined_flags(prefix: Tuple[str, ...]) -> Dict[str, Optional[Tuple[str, ...]]]:
    """{flag name: enum values or None} of a program, from its `--helpfull`; booleans also
    as `no<name>`."""
    result = subprocess.run([sys.executable, *prefix, "--helpfull"], cwd=_ROOT, text=True,
                            capture_output=True, timeout=300, check=False)
    found = {}
    line = re.compile(r"^  (?:-\S+,)?--(\[no\])?(\w+):(?: <([^>\n]*)>:)?", re.M)  # -?,--[no]help:
    for match in line.finditer(result.stdout):
        negatable, name, values = match.groups()
        found[name] = tuple(values.split("|")) if values else None
        if negatable:
            found["no" + name] = None
    assert "flagfile" in found, f"{' '.join(prefix)} --helpfull: {result.stdout[-2000:]}"
    return found


def _flag_problems(prefix: Tuple[str, ...], args: List[str]) -> List[str]:
    flags = defined_flags(prefix)
    problems = []
    for arg in args:
        if not arg.startswith("--") or arg == "--":
            continue
        name, has_value, value = arg[2:].partition("=")
        if name not in flags:
            problems.append(f"--{name} is not a flag of {' '.join(prefix)}")
        elif has_value and flags[name] and value not in flags[name]:
            problems.append(f"--{name}={value}: not one of {'|'.join(flags[name])}")
    return problems


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    heading = re.sub(r"`|\*\*|\*", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


@functools.lru_cache(maxsize=None)
def anchors(page: str) -> Tuple[str, ...]:
    """The heading anchors of a page (a repeated heading gets -1, -2, ...)."""
    seen, result = {}, []
    text = re.sub(r"^```.*?^```", "", open(page, encoding="utf-8").read(), flags=re.M | re.S)
    for match in re.finditer(r"^#+ (.+)$", text, re.M):
        slug = _slug(match.group(1))
        result.append(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return tuple(result)


def links(page: str) -> List[str]:
    """The targets of the links and images of a page, outside code."""
    text = re.sub(r"^```.*?^```", "", open(page, encoding="utf-8").read(), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)", text)


def readme_example() -> str:
    """The README's Keras example: its one marked python block."""
    marked = [b for b in read_blocks(_README) if b.marked and b.lang == "python"]
    assert len(marked) == 1, f"README.md: {len(marked)} marked python blocks, expected 1"
    return marked[0].text


def _make_sandbox() -> str:
    """A working folder where the docs' commands run as written (see the module docstring)."""
    top = tempfile.mkdtemp()
    repo = os.path.join(top, "repo")
    os.makedirs(repo)
    for name in _SANDBOX_LINKS:
        os.symlink(os.path.join(_ROOT, name), os.path.join(repo, name))
    data = os.path.join(top, "shared", "data")
    os.makedirs(data)
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(os.path.join(data, "cifar10_jpg.zip"), "w") as archive:
        for i in range(128):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
            archive.writestr(f"cifar10/train/{i:03d}.png", png.getvalue())
    os.makedirs(os.path.join(top, "home"))
    return repo


def _pages_with_marked_bash():
    pages = [p for p in _PAGES if any(b.marked and b.lang == "bash" for b in read_blocks(p))]
    return [(os.path.splitext(os.path.basename(p))[0], p) for p in pages]


class MarkedCommandsTest(tf.test.TestCase, parameterized.TestCase):
    """The marked bash blocks of each page, run as written in the sandbox."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = _make_sandbox()

    def test_the_pages_mark_their_quick_commands(self):
        marked = {_relative(p): [b for b in read_blocks(p) if b.marked] for p in _PAGES}
        self.assertNotEmpty(marked["docs/training.md"])  # the 2-step train and --helpfull
        self.assertTrue(any("--train_steps=2" in b.text for b in marked["docs/training.md"]))
        self.assertNotEmpty(marked["docs/performance.md"])  # benchmark.py --help
        for page, blocks in marked.items():
            for block in blocks:
                self.assertIn(block.lang, ("bash", "python"), f"{page}:{block.line}")
                if block.lang == "python":  # run in-process by ReadmeExampleTest
                    self.assertEqual(page, "README.md", f"{page}:{block.line}")

    @parameterized.named_parameters(*_pages_with_marked_bash())
    def test_marked_commands_run(self, page):
        env = dict(os.environ, HOME=os.path.join(os.path.dirname(self.sandbox), "home"),
                   TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_CONFIG", None)
        for block in read_blocks(page):
            if not (block.marked and block.lang == "bash"):
                continue
            for command in split_commands(block):
                where = f"{_relative(page)}:{command.line}"
                text = command.text.replace(_VENV_PYTHON, shlex.quote(sys.executable))
                result = subprocess.run(["bash", "-c", text], cwd=self.sandbox, env=env,
                                        text=True, capture_output=True, timeout=900,
                                        check=False)
                output = result.stdout + result.stderr
                if any(w in _HELP_FLAGS for w in command.words):
                    self.assertIn(result.returncode, (0, 1), f"{where}: {output[-3000:]}")
                    self.assertIn("flags:", result.stdout, where)  # absl's help exits 1
                else:
                    self.assertEqual(result.returncode, 0, f"{where}: {output[-3000:]}")
                self.assertNotIn("Traceback", output, where)
                self.assertNotIn("failed call to cuInit", output, where)  # tfstart's filter
                self._check_outputs(where, command.words)

    def _check_outputs(self, where, words):
        """What a training or sampling command leaves behind."""
        args = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        if "sngan_tf.train" in words and "logdir" in args:
            checkpoints = os.path.join(self.sandbox, args["logdir"], "checkpoints")
            self.assertNotEmpty(glob.glob(os.path.join(checkpoints, "ckpt-*.index")), where)
        if "sngan_tf.sample" in words and "output" in args:
            self.assertTrue(os.path.exists(os.path.join(self.sandbox, args["output"])), where)


class DocsTest(tf.test.TestCase):
    """The commands' flags and the links of every page."""

    def test_commands_name_only_defined_flags(self):
        problems, checked = [], set()
        for page in _PAGES:
            for block in read_blocks(page):
                if block.lang != "bash":
                    continue
                for command in split_commands(block):
                    found = program_of(command.words)
                    if found is None:
                        continue
                    prefix, args, passed_on = found
                    where = f"{_relative(page)}:{command.line}"
                    problems += [f"{where}: {p}" for p in _flag_problems(prefix, args)]
                    problems += [f"{where}: {p}" for p in
                                 _flag_problems(("-m", "sngan_tf.train"), passed_on)]
                    checked.add(prefix)
        self.assertEqual(problems, [])
        # The parser found the programs the pages document (a parser that finds nothing
        # would check nothing).
        for prefix in [("-m", "sngan_tf.train"), ("-m", "sngan_tf.sample"),
                       ("-m", "sngan_tf.evaluate"), ("-m", "sngan_tf.study", "run"),
                       ("benchmarks/benchmark.py",), ("scripts/launch_workers.py",)]:
            self.assertIn(prefix, checked)

    def test_flag_check_catches_a_renamed_flag(self):
        self.assertEqual(_flag_problems(("-m", "sngan_tf.train"),
                                        ["--norm=spectral", "--nog_batchnorm", "--logdir=x"]), [])
        self.assertLen(_flag_problems(("-m", "sngan_tf.train"), ["--normalisation=spectral"]), 1)
        self.assertLen(_flag_problems(("-m", "sngan_tf.train"), ["--norm=layer"]), 1)

    def test_links_and_images_resolve(self):
        broken = []
        for page in _PAGES:
            for target in links(page):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) \
                    if path else page
                if not os.path.exists(resolved):
                    broken.append(f"{_relative(page)}: {target} (no {_relative(resolved)})")
                elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                    broken.append(f"{_relative(page)}: {target} (no heading #{anchor})")
        self.assertEqual(broken, [])

    def test_slugs_follow_github(self):
        self.assertEqual(_slug("TensorFlow 2.15 / Keras 2 (2026-12-02)"),
                         "tensorflow-215--keras-2-2026-12-02")
        self.assertEqual(_slug("FID, Inception score and KID"), "fid-inception-score-and-kid")
        self.assertEqual(_slug("SN layers in your own Keras 3 model"),
                         "sn-layers-in-your-own-keras-3-model")

    def test_readme_is_a_front_page(self):
        text = open(_README, encoding="utf-8").read()
        self.assertLessEqual(len(text.splitlines()), 300)
        self.assertIn("bash scripts/run.sh demo", text)
        self.assertIn("bash scripts/run.sh test", text)
        targets = links(_README)
        for page in _REQUIRED_PAGES:
            self.assertIn(page, targets)
            self.assertTrue(os.path.exists(os.path.join(_ROOT, page)), page)
        for page in _DOCS:  # each page starts by saying what it answers
            first = [l for l in open(page, encoding="utf-8").read().splitlines() if l.strip()]
            self.assertTrue(first[0].startswith("# ") and not first[1].startswith("#"), page)


class ReadmeExampleTest(tf.test.TestCase):
    """The README's "SN layers in your own Keras 3 model" example, executed as written."""

    def test_example_trains_saves_and_restores_u(self):
        self.addCleanup(os.chdir, os.getcwd())  # later tests use paths relative to the root
        os.chdir(self.get_temp_dir())  # the example writes d.keras where it runs
        namespace = {}
        exec(compile(readme_example(), _README, "exec"), namespace)  # pylint: disable=exec-used
        model, restored = namespace["discriminator"], namespace["restored"]
        self.assertTrue(os.path.exists("d.keras"))
        sn = [l for l in model.layers if hasattr(l, "u")]
        self.assertLen(sn, 3)
        self.assertEqual([w.name for w in restored.weights], [w.name for w in model.weights])
        for got, want in zip(restored.weights, model.weights):  # u and sigma among them
            self.assertAllEqual(got.numpy(), want.numpy())
        # fit ran the power iteration: each sigma (1 before training) is an estimate
        # uᵀWv (from below, of the kernel one update ago) of the largest singular value.
        for layer in sn:
            w = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
            top = np.linalg.svd(w, compute_uv=False)[0]
            self.assertBetween(float(layer.sigma), 0.8 * top, 1.02 * top)  # W moved since
        x = keras.random.uniform((4, 32, 32, 3), -1, 1, seed=0)
        self.assertAllEqual(restored(x), model(x))


def _study_full_csv(folder, config):
    """The committed metrics.csv of one run of the 70-epoch study."""
    return os.path.join(_ROOT, "docs", folder, f"{config}_seed0_metrics.csv")


@functools.lru_cache(maxsize=None)
def _study_full_metrics(folder, config):
    """That csv read once (the table tests look up every cell in it); do not modify."""
    return rundir.read_metrics_file(_study_full_csv(folder, config))


def table_under(path: str, heading: str, first_cell: str) -> List[List[str]]:
    """The first markdown table after the line `heading` of `path` whose header starts with
    `first_cell`: its header's cells, then each row's (the |---| line left out); [] if none."""
    lines = open(path, encoding="utf-8").read().splitlines()
    if heading not in lines:
        return []
    table = []
    for line in lines[lines.index(heading) + 1:]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                table.append(cells)
        elif table and table[0][0] == first_cell:
            return table
        else:
            table = []
    return table if table and table[0][0] == first_cell else []


class StudyFullTableTest(tf.test.TestCase):
    """The README's 70-epoch table states what the *_seed0_metrics.csv files of the run it
    shows hold, and the restart's stated epoch is where docs/study_full/'s files end (both
    are updated by hand after each piece of the study; this catches one without the other)."""

    _CONFIGS = ("batchnorm", "spectral", "nonorm", "spectral_torch")
    # | `spectral.cfg` | ... | 15.79 (15.79, 20) | (the leading value may be in bold)
    _ROW = re.compile(r"^\| `(\w+)\.cfg` \|[^|]*\| (?:\*\*)?([\d.]+)(?:\*\*)? "
                      r"\(([\d.]+), (\d+)\) \|")

    def setUp(self):
        super().setUp()
        self.text = open(_README, encoding="utf-8").read()

    def _curve_to(self, folder, config, epoch):
        """The run's (epoch, fd_cifar10_classifier) by step, checked to end at `epoch` (None:
        wherever it ends), finite, evaluated every 2 epochs."""
        path = _study_full_csv(folder, config)
        metrics = _study_full_metrics(folder, config)
        self.assertIn("fd_cifar10_classifier", metrics, f"{path}: no curve (or no file)")
        _, epochs, values = metrics["fd_cifar10_classifier"]
        curve = list(zip(epochs.tolist(), values.tolist()))
        if epoch is not None:
            self.assertEqual(curve[-1][0], epoch, f"{folder}/{config}: the csv ends at another epoch")
        self.assertTrue(all(np.isfinite(v) for _, v in curve), f"{folder}/{config}")
        self.assertContainsSubset(range(2, int(curve[-1][0]) + 1, 2), [e for e, _ in curve],
                                  f"{folder}/{config}: an evaluation every 2 epochs")
        return curve

    def test_table_matches_the_committed_curves(self):
        # The run the table describes is the one whose figure heads it.
        folder = re.search(r"\]\(docs/(study_full\w*)/metric_per_epoch\.png\)", self.text)
        self.assertIsNotNone(folder, "README: no docs/study_full*/metric_per_epoch.png figure")
        folder = folder.group(1)
        epoch = re.search(r"seed 0, at epoch (\d+) \(best, epoch\)", self.text)
        self.assertIsNotNone(epoch, "README: the table's header 'at epoch N (best, epoch)'")
        epoch = int(epoch.group(1))
        self.assertIn(f"**epoch {epoch} of 70**", self.text,
                      f"README: the text names another epoch than the table's {epoch}")
        rows = {m.group(1): m.groups()[1:]
                for m in map(self._ROW.match, self.text.splitlines()) if m}
        self.assertCountEqual(rows, self._CONFIGS)
        for config, (final, best, best_epoch) in rows.items():
            curve = self._curve_to(folder, config, epoch)
            best_at = min(curve, key=lambda point: point[1])
            self.assertEqual((final, best, best_epoch),
                             (f"{curve[-1][1]:.2f}", f"{best_at[1]:.2f}", f"{best_at[0]:.0f}"),
                             config)

    def _metric_at(self, folder, config, metric, epoch):
        """`metric` in the run's committed csv at `epoch`."""
        metrics = _study_full_metrics(folder, config)
        self.assertIn(metric, metrics, f"{folder}/{config}: no {metric} (or no file)")
        _, epochs, values = metrics[metric]
        at = dict(zip(epochs.tolist(), values.tolist()))
        self.assertIn(float(epoch), at, f"{folder}/{config}: no {metric} at epoch {epoch}")
        return at[float(epoch)]

    def assertRoundsTo(self, stated, value, msg):
        """`stated` is `value` to the decimals it is written with."""
        decimals = len(stated.partition(".")[2])
        self.assertAlmostEqual(float(stated), value, delta=0.5 * 10.0 ** -decimals + 1e-9,
                               msg=f"{msg}: {stated} against {value}")

    def _last_epoch(self, folder):
        """The last evaluated epoch of the run in docs/`folder`, checked equal across configs."""
        ends = {self._curve_to(folder, config, None)[-1][0] for config in self._CONFIGS}
        self.assertLen(ends, 1, f"{folder}: the runs end at different epochs")
        return int(ends.pop())

    def test_two_cpu_table_matches_both_runs(self):
        # docs/study_full/seed_spread.md: "first run / restart" per epoch, to the last epoch both
        # have evaluated.
        path = os.path.join(_ROOT, "docs", "study_full", "seed_spread.md")
        table = table_under(path, "### The same seed on two CPUs", "epoch")
        self.assertNotEmpty(table, f"{path}: no epoch table under 'The same seed on two CPUs'")
        header, rows = table[0], table[1:]
        self.assertCountEqual(header[1:], self._CONFIGS)
        last = min(self._last_epoch("study_full_run1"), self._last_epoch("study_full"))
        self.assertEqual([int(row[0]) for row in rows], list(range(2, last + 1, 2)),
                         f"{path}: a row for every evaluated epoch both runs have")
        for row in rows:
            for config, cell in zip(header[1:], row[1:]):
                first, restart = cell.split(" / ")
                where = f"{path}: epoch {row[0]}, {config}"
                for folder, stated in (("study_full_run1", first), ("study_full", restart)):
                    self.assertRoundsTo(stated, self._metric_at(
                        folder, config, "fd_cifar10_classifier", row[0]), f"{where}, {folder}")

    def test_restart_table_matches_its_curves(self):
        # docs/study.md: "fd (class entropy, recall)" of the restart at every evaluated epoch.
        path = os.path.join(_ROOT, "docs", "study.md")
        table = table_under(path, "### The restart (seed 0 again, on an AMD EPYC Zen 4)", "epoch")
        self.assertNotEmpty(table, f"{path}: no epoch table under 'The restart'")
        header, rows = table[0], table[1:]
        self.assertCountEqual(header[1:], self._CONFIGS)
        self.assertEqual([int(row[0]) for row in rows],
                         list(range(2, self._last_epoch("study_full") + 1, 2)),
                         f"{path}: a row for every evaluated epoch of the restart")
        cell_format = re.compile(r"^([\d.]+) \(([\d.]+), ([\d.]+)\)$")
        for row in rows:
            for config, cell in zip(header[1:], row[1:]):
                where = f"{path}: epoch {row[0]}, {config}"
                match = cell_format.match(cell)
                self.assertIsNotNone(match, f"{where}: '{cell}' is not 'fd (entropy, recall)'")
                for stated, metric in zip(match.groups(), (
                        "fd_cifar10_classifier", "class_entropy_cifar10_classifier",
                        "recall_cifar10_classifier")):
                    self.assertRoundsTo(stated, self._metric_at("study_full", config, metric,
                                                                row[0]), f"{where}, {metric}")

    def test_restart_epoch_matches_its_curves(self):
        stated = re.search(r"the restart stands at \*\*epoch (\d+) of 70\*\*", self.text)
        if stated is None:  # no restart (or it has become the table's run)
            self.skipTest("README names no restart")
        stated = int(stated.group(1))
        for config in self._CONFIGS:
            if stated or os.path.exists(_study_full_csv("study_full", config)):  # before epoch 2 there may be no file yet
                self._curve_to("study_full", config, stated)


if __name__ == "__main__":
    tf.test.main()
