#!/usr/bin/env bash
# Install what the optional native backend (native/) needs to build and run on Debian/Ubuntu:
# OpenBLAS (headers + the pthreads build of the library) and a C toolchain for node-gyp.
# Run as root before `npm ci`; the install then builds native/ (see scripts/build-native.mjs).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Skip apt entirely when everything is present: keeps CI fast and offline-safe.
if dpkg -s libopenblas-dev libopenblas0-pthread build-essential python3 >/dev/null 2>&1; then
  echo "install-native-deps: OpenBLAS and build tools already installed"
  exit 0
fi
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends libopenblas-dev libopenblas0-pthread build-essential python3
