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
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"
apt_install install-vulkan mesa-vulkan-drivers libvulkan1
echo "install-vulkan: installed mesa-vulkan-drivers ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)) and libvulkan1"
