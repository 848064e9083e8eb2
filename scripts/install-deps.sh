#!/usr/bin/env bash
# Installs the system packages Magnetar's tests need when they are missing:
# a real ZooKeeper server (Debian's zookeeper package; Java comes with it).
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

need=()
dpkg -s zookeeper >/dev/null 2>&1 || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "install-deps: need root to install: ${need[*]} (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
