#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv with the pinned stack (once; a second call
# reuses it unless the requirements changed), then runs the named job.
#   bash scripts/run.sh test            # the whole test suite (what CI runs)
#   bash scripts/run.sh demo [STEPS]    # a short SN-GAN training run on CIFAR-10
#   bash scripts/run.sh setup           # only create/refresh the environment
#   bash scripts/run.sh setup gpu       # also the CUDA build of TensorFlow (pip's .[gpu])
#   bash scripts/run.sh bench [ARGS]    # also PyTorch (requirements-bench.txt), then
#                                       # scripts/benchmark.py --peer=torch ARGS
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${SNGAN_VENV:-$root/.venv}"
py="${PYTHON:-python3}"

setup() {
  local want have=""
  want=$(cat requirements.txt requirements-test.txt setup.py | sha256sum | cut -c1-16)
  [ -f "$venv/.stamp" ] && have=$(cat "$venv/.stamp")
  if [ "$want" != "$have" ]; then
    echo "[run.sh] installing the pinned stack into $venv" >&2
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      -r requirements.txt -r requirements-test.txt 2> >(grep -v "is ignored: it is neither" >&2)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$want" > "$venv/.stamp"
  fi
}

# An optional layer on top of the stack, with its own stamp: gpu or bench.
setup_extra() {
  local name="$1" want have=""
  want=$(cat requirements.txt setup.py requirements-bench.txt | sha256sum | cut -c1-16)
  [ -f "$venv/.stamp-$name" ] && have=$(cat "$venv/.stamp-$name")
  if [ "$want" != "$have" ]; then
    echo "[run.sh] installing the $name extra into $venv" >&2
    if [ "$name" = gpu ]; then
      "$venv/bin/python" -m pip install -q --disable-pip-version-check "tensorflow[and-cuda]==2.15.1"
    else
      "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-bench.txt
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
  bench) setup_extra bench; exec "$venv/bin/python" scripts/benchmark.py --peer=torch "$@" ;;
  *) echo "usage: bash scripts/run.sh [setup [gpu]|test|demo|bench] [args]" >&2; exit 2 ;;
esac
