#!/usr/bin/env bash
# The GPU half of the benchmarks, on the device machine (scripts/device/pack.sh first, here;
# carry .device). One part per call, each well inside the tool's 10 minutes:
#   curve    webgpu trains the ~100M model 300 steps; wasm's first 3 steps must match (same seed)
#   train    tokens/s: ours on webgpu vs transformers + PEFT on CUDA, tiny and ~100M, 4 × 256
#   kernels  MoSLoRA / LoRA step time of one adapted layer on webgpu
#   profile  where a webgpu step of the ~100M model spends its time
#   merge    merging a ~100M model on webgpu vs reading and writing its files
#   host     a ~100M step's whole time on the GPU against its host time alone (Dawn's null device,
#            on 100m-narrow: the same dispatches on tensors that fit the null device's 512 MiB);
#            gpt2-narrow (GPT-2 small's structure) both ways
# Results are appended to bench/results/*.jsonl and copied to $OUT at the end (also when the part is
# stopped by a signal it can catch); every JSON line also goes to $OUT/session.log as it is printed.
# CURVE_STEPS sets the curve's length (300) if the device's 10 minutes a call are short for it.
# SMOKE=1 runs each part on the tiny model for a few steps, to check the script on a machine without
# a GPU (with SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json; no CUDA, so
# train is skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:?"which part: curve | train | kernels | profile | merge | host"}
out=${OUT:-/tmp/moslora-device-out}
mkdir -p "$out"
trap 'cp bench/results/*.jsonl "$out/" 2>/dev/null || true' EXIT

for deb in .device/gl/*.deb; do dpkg -x "$deb" /; done
ldconfig
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$nvidia_icd" ]; then export VK_DRIVER_FILES=$nvidia_icd; fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
mkdir -p /tmp/moslora-node
xz -dc .device/node.xz > /tmp/moslora-node/node
chmod +x /tmp/moslora-node/node
export PATH=/tmp/moslora-node:$PATH
rm -rf dist node_modules/webgpu
cp -r .device/dist dist
mkdir -p node_modules/webgpu/dist/linux-x64
cp .device/webgpu/package.json .device/webgpu/index.js node_modules/webgpu/
xz -dc .device/webgpu/dawn.node.xz > node_modules/webgpu/dist/linux-x64/dawn.node

node dist/cli.js backends
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${SMOKE:-0}" = 1 ]; then
  model=examples/tiny-model; narrow=$model; gpt2=test/fixtures/models/tiny-gpt2; steps=${CURVE_STEPS:-4}; rounds=1
else
  model=100m; narrow=100m-narrow; gpt2=gpt2-narrow; steps=${CURVE_STEPS:-300}; rounds=2
fi
bench() { node dist/bench.js "$@" 2>&1 | tee -a "$out/session.log"; }
case "$part" in
  curve) bench curve --backend webgpu --model "$model" --batch 4 --tokens 256 --checkpointing --steps "$steps" --compare wasm --compare-steps 3 ;;
  train)
    if [ "${SMOKE:-0}" = 1 ]; then echo "train: skipped (no CUDA in a smoke run)"; else
      bench train --backend webgpu --model tiny --torch peft --python python3 --torch-device cuda --rounds "$rounds"
      bench train --backend webgpu --model 100m --torch peft --python python3 --torch-device cuda --rounds "$rounds"
    fi ;;
  kernels) bench kernels --backend webgpu --rounds "$([ "${SMOKE:-0}" = 1 ] && echo 3 || echo 40)" ;;
  profile) bench profile --backend webgpu --model "$model" --batch 4 --tokens 256 --steps "$([ "${SMOKE:-0}" = 1 ] && echo 1 || echo 3)" ;;
  merge) bench merge --backend webgpu --rounds "$([ "${SMOKE:-0}" = 1 ] && echo 1 || echo 3)" ;;
  host)
    bench webgpu-host --model "$narrow" --batch 4 --tokens 256 --checkpointing
    bench webgpu-host --model "$model" --batch 4 --tokens 256 --checkpointing --on-gpu --steps "$([ "${SMOKE:-0}" = 1 ] && echo 1 || echo 20)"
    bench webgpu-host --model "$gpt2" --batch 4 --tokens 256 --checkpointing
    bench webgpu-host --model "$gpt2" --batch 4 --tokens 256 --checkpointing --on-gpu --steps "$([ "${SMOKE:-0}" = 1 ] && echo 1 || echo 20)" ;;
  *) echo "unknown part: $part" >&2; exit 2 ;;
esac
