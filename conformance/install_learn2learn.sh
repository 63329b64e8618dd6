#!/usr/bin/env bash
# Install learn2learn 0.2.0 (its last release, 2023) into the virtualenv of $1
# for the conformance table (`make conformance`).
#
# Its pip metadata would pull torchvision and a CUDA build of another torch, and
# its shipped C files (Cython 0.29.24) do not compile on Python 3.11
# ("longintrepr.h: No such file"): so the sdist's .pyx files are re-translated
# with Cython 3 and the package is built without its dependencies.  Its MAML
# needs only torch (and tqdm, which its utils import).
set -euo pipefail
PY="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"     # absolute: the build runs elsewhere
if "$PY" -c "import importlib.metadata as m; m.version('learn2learn')" 2>/dev/null; then exit 0; fi
"$PY" -m pip install -q "cython>=3,<4" wheel tqdm
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: learn2learn==0.2.0 -d "$D"
tar xzf "$D"/learn2learn-0.2.0.tar.gz -C "$D"
(cd "$D"/learn2learn-0.2.0 && "$PY" -m cython -3 learn2learn/data/*.pyx \
   && "$PY" -m pip install -q --no-deps --no-build-isolation .)
