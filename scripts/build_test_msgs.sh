#!/usr/bin/env bash
# Build the test fixture interface packages (test/fixtures/msgs) with the PyPI rosidl wheels,
# one install prefix each under .test_msgs/:
#   ros_drivers  audio_common_msgs as released by ros-drivers/audio_common 0.4
#   mgonzs13     audio_common_msgs as shipped by mgonzs13/audio_common (same name, other messages)
#   vision       vision_msgs 4.x (Detection2DArray and what it needs)
# Both audio variants are called audio_common_msgs, so a process selects one through its
# environment (test/msg_fixtures.py). Skips a prefix whose sources and Python are unchanged.
# On a machine with a sourced apt ROS 2 the same sources build with colcon; this script needs
# only the venv (requirements-ros.txt) and Debian cmake/g++.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-$PWD/.venv}"
SRC="$PWD/test/fixtures/msgs"
OUT="$PWD/.test_msgs"
PY="$VENV/bin/python"

export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# The code generators run as plain CMake commands; they need the venv's Python and scripts.
export PATH="$VENV/bin:$PATH"

build() {  # variant package
  local variant=$1 pkg=$2 prefix="$OUT/$1"
  local want
  want=$( (cd "$SRC" && find "$variant/$pkg" fix_ros_wheels.cmake -type f | sort | xargs sha256sum; "$PY" -VV; "$PY" -m pip freeze 2>/dev/null | grep -i rosidl) | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$prefix/.stamp" 2>/dev/null)" = "$want" ]; then
    echo "build_test_msgs: $variant/$pkg up to date"
    return
  fi
  echo "build_test_msgs: building $variant/$pkg into $prefix"
  rm -rf "$OUT/build/$variant" "$prefix"
  cmake -S "$SRC/$variant/$pkg" -B "$OUT/build/$variant" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_RPATH="$prefix/lib" -DBUILD_TESTING=OFF \
    -DPython3_EXECUTABLE="$PY" -DCMAKE_PROJECT_INCLUDE="$SRC/fix_ros_wheels.cmake" >"$OUT/build/$variant.log" 2>&1 \
    && cmake --build "$OUT/build/$variant" -j"${JOBS:-2}" >>"$OUT/build/$variant.log" 2>&1 \
    && cmake --install "$OUT/build/$variant" >>"$OUT/build/$variant.log" 2>&1 \
    || { tail -40 "$OUT/build/$variant.log" >&2; echo "build_test_msgs: $variant/$pkg FAILED (log: $OUT/build/$variant.log)" >&2; exit 1; }
  echo "$want" > "$prefix/.stamp"
}

mkdir -p "$OUT/build"
build ros_drivers audio_common_msgs
build mgonzs13 audio_common_msgs
build vision vision_msgs
