#!/usr/bin/env bash
# Installs a software Vulkan driver from Debian's packages, so that the `wgpu` backend runs
# on a machine without a GPU: Mesa's lavapipe (mesa-vulkan-drivers) and the Vulkan loader
# (libvulkan1). CI uses it to execute the wgpu tests; a machine with a GPU and its vendor's
# driver does not need it.
# Idempotent: does nothing when the loader and lavapipe's ICD file are already there.
# Usage: bash scripts/install-vulkan.sh   (as root, or with sudo available)
set -euo pipefail

icd=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
have_all() {
  [ -f "$icd" ] && ls /usr/lib/*/libvulkan.so.1 >/dev/null 2>&1
}

if have_all; then
  echo "install-vulkan: already present: lavapipe ($icd) and libvulkan.so.1"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-vulkan: apt-get not found; install a Vulkan loader and Mesa's lavapipe yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
    echo "install-vulkan: needs root (or sudo) to run apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || { echo "install-vulkan: apt-get update failed (no network?)" >&2; exit 1; }
$sudo apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
echo "install-vulkan: installed mesa-vulkan-drivers ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)) and libvulkan1"
