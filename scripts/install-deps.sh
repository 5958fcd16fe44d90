#!/usr/bin/env bash
# Installs everything mexport needs to build and test on Debian 12, as root:
# Debian packages (libtorch, onnx, ... and OpenBLAS, whose BLAS is ~30x faster
# than the reference one) and onnxruntime-node from npm for the tests.
# Idempotent: does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ccache pkg-config
  # clang with libFuzzer and the sanitizer runtimes, for fuzz/ (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  libtorch-dev libonnx-dev libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libfmt-dev libboost-dev libboost-program-options-dev
  nlohmann-json3-dev libgtest-dev libopenblas0-pthread libpugixml-dev libssl-dev
  python3-torch python3-torchvision python3-onnx python3-numpy python3-yaml python3-networkx
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node's install script downloads CUDA libraries, which cannot
# work here; the CPU runtime ships inside the package.
if [ ! -d node_modules/onnxruntime-node ]; then
  echo "install-deps: npm install onnxruntime-node"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi
