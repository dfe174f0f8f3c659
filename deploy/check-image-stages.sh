#!/usr/bin/env bash
# Run the Dockerfile's build steps without Docker: the wheel stage, then each role's virtual
# environment, in clean folders, with the interpreter given as $PYTHON (default python3.11, the
# image's Python). Then check that each environment holds only its role's libraries and that the
# image's ENTRYPOINT and HEALTHCHECK commands work. Uses PyPI; takes a few minutes.
#   deploy/check-image-stages.sh [WORK_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d /tmp/sharpeyes-stages.XXXXXX)}"
python="${PYTHON:-python3.11}"
models="${SHARPEYES_MODEL_DIR:-$repo/../shared/models}"
mkdir -p "$work/src" "$work/wheels"

echo "== wheel stage (committed sources only, as COPY would see a clean checkout)"
git -C "$repo" archive HEAD pyproject.toml README.md broker edge central models sharpeyes requirements | tar -x -C "$work/src"
"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/pip" -q install --require-hashes --no-deps -r "$work/src/requirements/build.txt"
"$work/build-venv/bin/pip" -q wheel --no-deps --no-build-isolation --wheel-dir "$work/wheels" "$work/src"
wheel="$(ls "$work"/wheels/sharpeyes-*.whl)"
echo "built $(basename "$wheel")"

for role in edge central; do
  echo "== venv-$role stage"
  "$python" -m venv "$work/venv-$role"
  "$work/venv-$role/bin/pip" -q install --require-hashes --no-deps -r "$work/src/requirements/$role.txt"
  "$work/venv-$role/bin/pip" -q install --no-deps "$wheel"
done

echo "== edge image checks"
edge="$work/venv-edge/bin"
"$edge/python" -c "import cv2, onnxruntime, av, paho.mqtt, cryptography, PIL, supervision; print('edge runtime imports ok')"
if "$edge/python" -c "import fastapi" 2>/dev/null || "$edge/python" -c "import sqlalchemy" 2>/dev/null; then
  echo "FAIL: the edge environment holds central's libraries"; exit 1
fi
"$edge/sharpeyes" edge run --help > /dev/null
SHARPEYES_MODEL_DIR="$models" "$edge/sharpeyes" models verify yolov8n > /dev/null && echo "edge HEALTHCHECK (models verify yolov8n) ok"

echo "== central image checks"
central="$work/venv-central/bin"
"$central/python" -c "import fastapi, uvicorn, sqlalchemy, alembic, psycopg, boto3, bcrypt, jwt, httpx; print('central runtime imports ok')"
if "$central/python" -c "import cv2" 2>/dev/null || "$central/python" -c "import onnxruntime" 2>/dev/null; then
  echo "FAIL: the central environment holds the edge's libraries"; exit 1
fi
"$central/sharpeyes" central serve --help > /dev/null
"$central/sharpeyes" broker config --help > /dev/null
# The image's HEALTHCHECK command against a real `central serve` (API only: no broker here).
port="$("$central/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$work" && SHARPEYES_VAR_DIR="$work/var" exec "$central/sharpeyes" central serve --config "$repo/configs/demo.yaml" \
    --no-ingest --demo --port "$port" --database-url "sqlite:///$work/central.db" --evidence-dir "$work/evidence" \
    > "$work/central.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
ok=""
for _ in $(seq 60); do
  if SHARPEYES_PORT="$port" "$central/python" -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SHARPEYES_PORT', '8080'), timeout=4)" 2>/dev/null; then
    ok=1; break
  fi
  sleep 1
done
kill $server 2>/dev/null || true
if [ -z "$ok" ]; then echo "FAIL: central HEALTHCHECK never passed"; tail -20 "$work/central.log"; exit 1; fi
echo "central HEALTHCHECK (/healthz) ok"
echo "all stages ok in $work"
