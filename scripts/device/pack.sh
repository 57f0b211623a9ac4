#!/usr/bin/env bash
# Packs into .device/ (git-ignored) what the GPU machine lacks for the GPU benchmarks: Node (its
# image has Python, torch, transformers and peft, but no Node), the built bundles, Dawn for
# linux-x64 (the webgpu package's dawn.node) and the Vulkan loader (libvulkan1, as the device
# README says). About 40 MB, under the tool's 64 MiB with the working tree. Then, with the device tool:
#   run  carry [".device"]  command "bash scripts/device/gpu-session.sh curve"   (and train, kernels, profile, merge)
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build >/dev/null
rm -rf .device
mkdir -p .device/dist .device/webgpu .device/gl
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .device/node.xz
cp dist/cli.js dist/bench.js dist/*.wasm .device/dist/
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .device/webgpu/
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .device/webgpu/dawn.node.xz
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/moslora-apt-amd64)
mkdir -p /tmp/moslora-apt-amd64/partial
apt-get "${apt_options[@]}" update -qq
(cd .device/gl && apt-get "${apt_options[@]}" download libvulkan1 >/dev/null)
du -sh .device
