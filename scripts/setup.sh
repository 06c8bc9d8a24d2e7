#!/usr/bin/env bash
# Idempotent set-up from nothing: Debian packages for the tests, .venv with pinned
# Python dependencies (torch 2.9.1 + torchaudio, ROS 2 Kilted wheels), avs installed editable.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="sox espeak-ng pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins libsndfile1 cmake g++"
PYTHON="${PYTHON:-python3.11}"   # the ROS 2 Kilted PyPI wheels are built for CPython 3.11
VENV=.venv

missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# pip's exit status is kept; only the noise about absent local wheel folders is dropped.
pipq() { "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt requirements-ros.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies into $VENV (first run: a few minutes)"
  pipq -r requirements.txt -r requirements-ros.txt
  pipq --no-deps -e .
  "$VENV/bin/python" -c "import torch, torchaudio, segment_anything, transformers, rclpy, avs_core" 
  echo "$want" > "$stamp"
fi
# Test fixture message packages (audio_common_msgs x2, vision_msgs) built with the rosidl wheels.
scripts/build_test_msgs.sh
echo "setup: ready ($VENV)"
