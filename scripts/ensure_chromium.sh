#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the report's browser test. Installed as root or with
# passwordless sudo; otherwise say so, and the test skips (under CI=true it fails instead).
set -u
command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "note: chromium is not installed and there is no root; the report's browser test will skip"
  exit 0
fi
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }
install || { $SUDO apt-get update -q >/dev/null && install; } ||
  echo "note: could not install chromium; the report's browser test will skip"
