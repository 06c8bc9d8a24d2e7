#!/usr/bin/env bash
# Idempotent set-up from nothing, then the assets. Two modes:
#
#   development / CI (no ROS 2 sourced): Debian packages for the tests, .venv on Python 3.11 with
#     every dependency from PyPI (torch 2.9.1, ROS 2 Kilted wheels, colcon), avs installed editable,
#     test message packages built.
#   robot (ROS_DISTRO set and the system python3 imports rclpy, i.e. `source /opt/ros/$ROS_DISTRO/setup.bash`
#     was run): .venv with --system-site-packages on that python3, so rclpy, the messages, cv_bridge and
#     colcon come from /opt/ros and apt; only the non-ROS requirements (requirements.txt) are installed.
#     Build with `.venv/bin/python -m colcon build` (README, "Robot install").
#
# Finally `avs assets fetch --all` into the user cache ($AVS_ASSETS_DIR, else ~/.cache/avs/assets):
# from ../shared/assets when that mirror exists beside the checkout (offline, same copy -> verify ->
# rename path), else from the pinned origin URLs. AVS_ASSETS_FROM=DIR_OR_URL picks another mirror.
# `scripts/setup.sh --plan` prints the mode and sources it would use, and changes nothing.
# Re-running with nothing changed only re-checks hashes (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv

MODE=dev
if [ -n "${ROS_DISTRO:-}" ] && python3 -c "import rclpy" >/dev/null 2>&1; then MODE=robot; fi

if [ "$MODE" = dev ]; then
  APT_PACKAGES="sox espeak-ng pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins libsndfile1 cmake g++"
  PYTHON="${PYTHON:-python3.11}"   # the ROS 2 Kilted PyPI wheels are built for CPython 3.11
  VENV_FLAGS=""
  REQUIREMENTS="requirements.txt requirements-ros.txt"
else
  # rosdep installs the runtime keys of package.xml; these are what the tests and mic_node need on top.
  APT_PACKAGES="sox espeak-ng libportaudio2 libsndfile1 python3-venv"
  PYTHON=python3                   # the interpreter /opt/ros/$ROS_DISTRO was built for
  VENV_FLAGS="--system-site-packages"
  REQUIREMENTS="requirements.txt"
fi
mirror="${AVS_ASSETS_FROM:-}"
[ -z "$mirror" ] && [ -d ../shared/assets ] && mirror=../shared/assets
if [ "${1:-}" = "--plan" ]; then  # what would be done, nothing done (tested by test_packaging)
  echo "mode=$MODE python=$PYTHON venv_flags=$VENV_FLAGS requirements=$REQUIREMENTS assets_from=${mirror:-origin}"
  exit 0
fi
echo "setup: $MODE mode${ROS_DISTRO:+ (ROS_DISTRO=$ROS_DISTRO)}"

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

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv $VENV_FLAGS "$VENV"
stamp="$VENV/.requirements.sha256"
want=$( (echo "$MODE"; cat $REQUIREMENTS setup.py) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies into $VENV (first run: a few minutes)"
  reqs=""; for r in $REQUIREMENTS; do reqs="$reqs -r $r"; done
  pipq $reqs
  if [ "$MODE" = dev ]; then
    # PEP 660 editable install: its import hook maps config/ to avs_config (setup.py develop cannot).
    pipq --no-deps --no-build-isolation --use-pep517 -e .
    "$VENV/bin/python" -c "import torch, torchaudio, segment_anything, transformers, rclpy, colcon_core, avs_core, avs_config"
  else
    "$VENV/bin/python" -c "import torch, torchaudio, segment_anything, transformers, rclpy"
  fi
  echo "$want" > "$stamp"
fi
if [ "$MODE" = dev ]; then
  # Test fixture message packages (audio_common_msgs x2, vision_msgs) built with the rosidl wheels.
  scripts/build_test_msgs.sh
fi

# Assets. `python -m` from the checkout needs no install (robot mode builds avs with colcon instead).
"$VENV/bin/python" -m avs_core.cli assets fetch --all ${mirror:+--from "$mirror"}
echo "setup: ready ($VENV)"
