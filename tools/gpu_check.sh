#!/usr/bin/env bash
# GPU self-check in one command; tools/gpu_check.py does the work (steps and output described there,
# the device-tool invocation in benchmarks/README.md).
#
#   tools/gpu_check.sh                     # on a GPU machine: kernels, benchmark, stage2; JSON in benchmarks/results/
#   tools/gpu_check.sh --dry-run           # on a CPU: every step at tiny shapes; JSON in a temporary folder
#   tools/gpu_check.sh --steps stage2 --copy-to "$OUT"
#
# The GPU machine has no package registry: bitsandbytes and peft, when its python lacks them, are
# installed from the wheels in tools/gpu_wheels/ (tools/gpu_prepare_wheels.sh downloads them here)
# into a private folder, never into the machine's own environment. A package with neither stays
# missing, and the check reports what it skipped for want of it.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# PYTHON overrides; else this checkout's uv environment when there is one (the GPU machine's copy of
# the tree has none: .venv is not carried), else the machine's python3.
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

src_paths=""
for src in "$root"/packages/*/src; do src_paths="$src_paths$src:"; done
export PYTHONPATH="$src_paths$root/tools${PYTHONPATH:+:$PYTHONPATH}"

wheels="$root/tools/gpu_wheels"
site="${GPU_CHECK_SITE:-${TMPDIR:-/tmp}/gpu_check_site}"
to_install=()
for pkg in bitsandbytes peft; do
  if "$python" -c "import $pkg" >/dev/null 2>&1; then continue; fi
  wheel=$(compgen -G "$wheels/$pkg-*.whl" | head -n 1)
  if [[ -n "$wheel" ]]; then
    to_install+=("$wheel")
  else
    echo "gpu_check.sh: $pkg is not importable and no wheel for it is in $wheels; it stays missing" >&2
  fi
done
if ((${#to_install[@]})); then
  echo "gpu_check.sh: installing ${to_install[*]##*/} into $site" >&2
  if "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
       --target "$site" "${to_install[@]}"; then
    # After the repository and the machine's own packages: only what was missing comes from here.
    export PYTHONPATH="$PYTHONPATH:$site"
  else
    echo "gpu_check.sh: installing the wheels failed; going on without them" >&2
  fi
fi

exec "$python" "$root/tools/gpu_check.py" "$@"
