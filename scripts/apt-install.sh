#!/usr/bin/env bash
# Shared by the install scripts: `apt_install TOOL PACKAGE…` installs Debian packages with
# apt-get, as root or through sudo, and stops with a line naming TOOL when it cannot
# (no apt-get, no root and no sudo, or no network). Source it; it defines the function only.

apt_install() {
  local tool="$1"
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tool: apt-get not found; install $* yourself" >&2
    exit 1
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "$tool: needs root (or sudo) to run apt-get" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || { echo "$tool: apt-get update failed (no network?)" >&2; exit 1; }
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
