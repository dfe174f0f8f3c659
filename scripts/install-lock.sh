#!/usr/bin/env bash
# Install one lock file into a venv (`make setup`, `make demo`; the Makefile then installs the
# project itself from the checkout):
#
#   scripts/install-lock.sh PYTHON LOCK LOG
#
# The lock is installed with `pip install --require-hashes --no-deps -r LOCK`; pip's chatter goes to
# LOG (appended), which is shown only when the install fails.
#
# PyTorch's CPU build (the pins of requirements/torch-cpu.in) is not on PyPI. The install first uses
# the machine's own package sources (pip's configuration and PIP_* variables: a mirror, a folder of
# local wheels), so where they carry the build nothing is added and nothing is slower. Only when pip
# reports that one of those pins is missing there are they fetched alone from PyTorch's CPU index
# ($SHARPEYES_TORCH_INDEX, default https://download.pytorch.org/whl/cpu), and then the lock is
# installed again (what the first try downloaded comes from pip's cache). Every other package still
# comes from the configured sources, and the lock's hashes check every file wherever it came from.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -eq 3 ] || { echo "usage: $0 PYTHON LOCK LOG" >&2; exit 2; }
python=$1 lock=$2 log=$3
torch_index=${SHARPEYES_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

pip_install() { "$python" -m pip install --require-hashes --no-deps "$@" >>"$log" 2>&1; }

fail() {  # fail MESSAGE-LINES...
    tail -n 40 "$log" >&2
    printf 'setup: %s\n' "$1" >&2
    shift
    [ $# -eq 0 ] || printf '  %s\n' "$@" >&2
    echo "  (the whole pip log: $log)" >&2
    exit 1
}

if ! pip_install -r "$lock"; then
    # Which of the CPU-build pins did pip not find on the configured sources?
    missing=()
    for name in $(sed -n 's/^\([A-Za-z0-9._-]*\)==.*/\1/p' requirements/torch-cpu.in); do
        grep -q "No matching distribution found for $name==" "$log" && missing+=("$name")
    done
    [ ${#missing[@]} -gt 0 ] || fail "pip could not install $lock (its messages are above)."
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Each missing pin's block from the lock (the "name==version \" line and its --hash lines).
    "$python" - "$lock" "$tmp/from-pytorch.txt" "${missing[@]}" <<'PY'
import re, sys
lock, out, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", open(lock, encoding="utf-8").read())
keep = [b for b in blocks if re.match(r"([A-Za-z0-9._-]+)==", b) and b.split("==", 1)[0] in names]
open(out, "w", encoding="utf-8").write("".join(keep))
PY
    pins=$(sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' "$tmp/from-pytorch.txt" | paste -sd' ')
    echo "setup: $pins (PyTorch's CPU build) is not on this machine's package sources; fetching it from $torch_index (hash-checked against $lock)"
    echo "--- fetching $pins from $torch_index" >>"$log"
    if ! pip_install --extra-index-url "$torch_index" -r "$tmp/from-pytorch.txt"; then
        if grep -q "DO NOT MATCH THE HASHES" "$log"; then
            here=$("$python" -c 'import platform; print("CPython", platform.python_version(), "on", platform.machine())')
            fail "the file of $pins that $torch_index offers for this machine ($here) does not match the hashes in $lock (above)." \
                "The lock hashes the CPU wheels its resolver saw (scripts/lock.sh: all of them where PyTorch's index" \
                "answered, else only the local wheel for CPython 3.11 on x86_64). Use that Python" \
                "(make distclean && make PYTHON=python3.11 setup), or re-resolve the locks where PyTorch's index answers."
        fi
        fail "$pins, PyTorch's CPU build, is neither on this machine's package sources (PyPI carries only" \
            "the CUDA build) nor could it be fetched from $torch_index (pip's messages are above)." \
            "Fix: let this machine reach download.pytorch.org, or point pip at a mirror or a folder that" \
            "carries the build: PIP_EXTRA_INDEX_URL=URL make setup, PIP_FIND_LINKS=DIR make setup," \
            "or SHARPEYES_TORCH_INDEX=URL make setup (a mirror of PyTorch's CPU index)."
    fi
    echo "--- the lock again, $pins in place" >>"$log"
    pip_install -r "$lock" || fail "pip could not install $lock (its messages are above)."
fi
