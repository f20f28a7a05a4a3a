#!/usr/bin/env bash
# Download, on this machine, the wheels tools/gpu_check.sh installs on the GPU machine, which has no
# package registry and lacks bitsandbytes and peft: for its python (CPython 3.12, x86-64 Linux), at
# the versions uv.lock pins, without dependencies (everything they need is there). About 45 MB, well
# inside the device tool's 64 MiB for the tree plus carried paths. tools/gpu_wheels/ is gitignored;
# name it in the device call's carry list (benchmarks/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/tools/gpu_wheels"
python="${PIP_PYTHON:-python3}"   # any python with pip; it only downloads

locked_version() {  # the version uv.lock pins for package $1
  awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/version = |"/, ""); print; exit }' "$root/uv.lock"
}

mkdir -p "$dest"
specs=()
for pkg in bitsandbytes peft; do
  version=$(locked_version "$pkg")
  [[ -n "$version" ]] || { echo "no $pkg in uv.lock" >&2; exit 1; }
  rm -f "$dest/$pkg"-*.whl   # one version of each: pip refuses two
  specs+=("$pkg==$version")
done

"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$dest" "${specs[@]}"
ls -l "$dest"
