#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv with the pinned stack (once; a second call
# reuses it unless the requirements or the Python changed, then makes it anew), then runs the
# named job. Python: $PYTHON when set, else the first of python3, python3.13 ... python3.10 on
# PATH that is 3.10-3.13.
#   bash scripts/run.sh test            # the whole test suite (what CI runs)
#   bash scripts/run.sh demo [STEPS]    # a short SN-GAN training run on CIFAR-10
#   bash scripts/run.sh setup           # only create/refresh the environment
#   bash scripts/run.sh setup gpu       # also the CUDA build of TensorFlow (pip's .[gpu])
#   bash scripts/run.sh bench [ARGS]    # also PyTorch (benchmarks/requirements-bench.txt),
#                                       # then benchmarks/benchmark.py --peer=torch ARGS
#                                       # (JSON in runs/benchmark.json unless --output)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${SNGAN_VENV:-$root/.venv}"

# Whether "$1" runs and is Python 3.10-3.13, the versions TensorFlow 2.21 has wheels for.
# (A pyenv shim such as python3.13 may exist on PATH and still fail to run.)
supported() {
  "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1
}

# $PYTHON when set, else the first supported one of python3, python3.13 ... python3.10.
pick_python() {
  local p
  if [ -n "${PYTHON:-}" ]; then
    supported "$PYTHON" && { echo "$PYTHON"; return; }
    echo "[run.sh] PYTHON=$PYTHON is not a working Python 3.10-3.13" >&2
    return 1
  fi
  for p in python3 python3.13 python3.12 python3.11 python3.10; do
    command -v "$p" >/dev/null 2>&1 && supported "$p" && { echo "$p"; return; }
  done
  echo "[run.sh] needs Python 3.10, 3.11, 3.12 or 3.13 (TensorFlow 2.21): install one (3.13 is newest) or set PYTHON=/path/to/python3.X" >&2
  return 1
}

# The stamp names the stack and the Python version; when it differs the venv is deleted and
# made anew (an old .venv with another Python or TensorFlow is replaced, never upgraded in
# place).
setup() {
  local want have="" py version
  py=$(pick_python) || exit 1
  version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  want=$( (cat requirements.txt requirements-test.txt setup.py; echo "python $version") \
    | sha256sum | cut -c1-16)
  [ -f "$venv/.stamp" ] && "$venv/bin/python" -c '' 2>/dev/null && have=$(cat "$venv/.stamp")
  if [ "$want" != "$have" ]; then
    if [ -e "$venv" ]; then
      if [ ! -f "$venv/pyvenv.cfg" ]; then
        echo "[run.sh] $venv exists and is not a venv: move it away or set SNGAN_VENV" >&2
        exit 1
      fi
      echo "[run.sh] replacing $venv (its stack or Python differs)" >&2
      rm -rf "$venv"
    fi
    echo "[run.sh] installing the pinned stack into $venv with $py (Python $version)" >&2
    "$py" -m venv "$venv"
    # The pip that Python 3.10's venv brings (23.0) backtracked for over 10 minutes over this
    # stack without finishing; a current one resolves it in seconds.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=25" \
      2> >(grep -v "is ignored: it is neither" >&2)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      -r requirements.txt -r requirements-test.txt 2> >(grep -v "is ignored: it is neither" >&2)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$want" > "$venv/.stamp"
  fi
}

# An optional layer on top of the stack, with its own stamp: gpu or bench.
setup_extra() {
  local name="$1" want have=""
  want=$(cat requirements.txt setup.py benchmarks/requirements-bench.txt | sha256sum | cut -c1-16)
  [ -f "$venv/.stamp-$name" ] && have=$(cat "$venv/.stamp-$name")
  if [ "$want" != "$have" ]; then
    echo "[run.sh] installing the $name extra into $venv" >&2
    if [ "$name" = gpu ]; then
      "$venv/bin/python" -m pip install -q --disable-pip-version-check "tensorflow[and-cuda]==2.21.0"
    else
      "$venv/bin/python" -m pip install -q --disable-pip-version-check -r benchmarks/requirements-bench.txt
      # The CUDA build of torch brings triton, whose import aborts a process that has loaded
      # TensorFlow 2.21 (seen in tests/torch_peer_test.py); the CPU peer never needs it.
      "$venv/bin/python" -m pip uninstall -y -q triton 2>/dev/null || true
    fi
    echo "$want" > "$venv/.stamp-$name"
  fi
}

job="${1:-test}"; shift || true
setup
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
case "$job" in
  setup) [ "${1:-}" = gpu ] && setup_extra gpu; true ;;
  test) exec "$venv/bin/python" -m pytest tests "$@" ;;
  demo) exec bash scripts/demo.sh "$@" ;;
  bench) setup_extra bench; exec "$venv/bin/python" benchmarks/benchmark.py --peer=torch "$@" ;;
  *) echo "usage: bash scripts/run.sh [setup [gpu]|test|demo|bench] [args]" >&2; exit 2 ;;
esac
