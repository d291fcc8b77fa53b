#!/usr/bin/env bash
# The WebGPU benchmark on a machine with a GPU and no Node (docs/performance.md#the-webgpu-backend).
#
#   scripts/gpu-bench.sh pack   here, after npm ci: .gpu/ (ignored) with a compressed Node, the
#                               webgpu package's linux-x64 binary, the benchmark bundled into one
#                               file (scripts/gpu-bundle.mjs), the four data files and Debian's
#                               Vulkan loader; about 60 MiB
#   scripts/gpu-bench.sh run    there, in the repository's root with .gpu/ and build/ carried:
#                               unpacks them, names the GPU, runs the benchmark (bench/webgpu.ts:
#                               training steps on webgpu, native and PyTorch on CUDA, inference,
#                               then the whole pipeline on webgpu) and writes $OUT/webgpu.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  pack)
    rm -rf .gpu
    mkdir -p .gpu/a/b .gpu/node_modules/webgpu/dist/linux-x64 .gpu/data .gpu/debs /tmp/fmnist-apt/partial
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    xz -9 -T2 -c "$(command -v node)" > .gpu/node.xz
    cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
    xz -9 -T2 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/node_modules/webgpu/dist/linux-x64/dawn.node.xz
    cp "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"/*.gz .gpu/data/
    # The bundle lies three folders down, so that the native backend's path (../../../build/) is the repository's build/.
    node scripts/gpu-bundle.mjs .gpu/a/b/bench.mjs
    apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/fmnist-apt)
    apt-get "${apt[@]}" update >/dev/null
    (cd .gpu/debs && apt-get "${apt[@]}" download libvulkan1 >/dev/null)
    du -sh .gpu
    ;;
  run)
    for deb in .gpu/debs/*.deb; do dpkg -x "$deb" /; done
    ldconfig
    [ -e .gpu/node ] || { xz -dc .gpu/node.xz > .gpu/node; chmod +x .gpu/node; }
    dawn=.gpu/node_modules/webgpu/dist/linux-x64/dawn.node
    [ -e "$dawn" ] || xz -dc "$dawn.xz" > "$dawn"
    nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -z "${VK_DRIVER_FILES:-}" ] && [ -e "$nvidia_icd" ]; then export VK_DRIVER_FILES=$nvidia_icd; fi
    export FASHION_MNIST_DIR=$PWD/.gpu/data
    out=${OUT:-.}
    nvidia-smi -L || true
    .gpu/node --version
    .gpu/node .gpu/a/b/bench.mjs 2>&1 | tee "$out/webgpu.jsonl"
    ;;
  *)
    echo "usage: scripts/gpu-bench.sh pack|run" >&2
    exit 2
    ;;
esac
