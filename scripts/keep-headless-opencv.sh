#!/usr/bin/env bash
# Some dependencies (Roboflow `trackers`, `ultralytics`) require the GUI build `opencv-python`,
# which installs into the same `cv2/` folder as `opencv-python-headless` and needs libGL at import
# time. Servers and edge boxes run headless: remove the GUI build and restore the headless one.
set -euo pipefail
python="${1:-python3}"
if "$python" -m pip show opencv-python >/dev/null 2>&1; then
    echo "keep-headless-opencv: replacing opencv-python (GUI build) with opencv-python-headless"
    "$python" -m pip uninstall -y opencv-python
    "$python" -m pip install --force-reinstall --no-deps "$("$python" -m pip show opencv-python-headless | sed -n 's/^Version: /opencv-python-headless==/p')"
fi
"$python" -c "import cv2; cv2.imencode('.jpg', __import__('numpy').zeros((2, 2, 3), 'uint8'))"
