#!/bin/sh
# `make dist`: the installer archive for hosts without a package index (issue 22.1).
#
#   deploy/installer/build.sh [OUTDIR]     (default: dist/)
#
# Run it on a machine with a package index and the same Debian release and Python as the hosts
# (wheels are built for this machine's Python and CPU). The archive holds:
#   wheels/               maildiode and every wheel it needs (pip wheel, nothing else)
#   install.sh            the installer (see its header)
#   debian-packages.txt   the Debian packages the hosts need, and how to carry them in
#   deploy/               systemd units, logrotate, example configs
#   docs/                 the documentation
#   VERSION, SHA256SUMS   what this is, and every file's hash (check after carrying it in)
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$SRC/dist}
PYTHON=${PYTHON:-python3}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/pyproject.toml" | head -n 1)
NAME=maildiode-$VERSION-offline
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

STAGE=$WORK/$NAME
mkdir -p "$STAGE/wheels" "$STAGE/deploy"
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$STAGE/wheels" "$SRC"
cp "$SRC/deploy/installer/install.sh" "$SRC/deploy/installer/debian-packages.txt" "$STAGE/"
cp -r "$SRC/deploy/systemd" "$SRC/deploy/logrotate" "$SRC/deploy/examples" "$STAGE/deploy/"
cp -r "$SRC/docs" "$STAGE/docs"
cp "$SRC/LICENSE" "$SRC/README.md" "$STAGE/"
echo "$VERSION" > "$STAGE/VERSION"
(cd "$STAGE" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)

mkdir -p "$OUT"
tar -C "$WORK" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "$OUT/$NAME.tar.gz: $(ls "$STAGE/wheels" | wc -l) wheels; install with: tar xzf $NAME.tar.gz && sh $NAME/install.sh"
