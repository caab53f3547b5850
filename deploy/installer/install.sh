#!/bin/sh
# Install maildiode from this archive on a host without a package index (issue 22.1).
#
#   sh install.sh                 # as root: the service user, folders, units, logrotate
#   sh install.sh --root DIR      # everything under DIR instead of / (a trial, or a test);
#                                 # no user is made, no owner changed, systemd is not called
#
# What it does, in order (docs/operations.md §2):
#   1. checks Python (3.11 or later, with venv) and the Debian packages in debian-packages.txt;
#   2. makes the virtualenv /opt/maildiode/.venv and installs maildiode and every wheel from
#      wheels/ with --no-index: nothing is fetched from any network;
#   3. makes the service user `maildiode` (system account, no shell, no home login);
#   4. makes /etc/maildiode (0755) and /etc/maildiode/keys, /var/lib/maildiode (0700, owned by
#      the service user), /var/log/maildiode (0750);
#   5. installs the systemd units (hardened, not enabled) and /etc/logrotate.d/maildiode;
#   6. copies the example configs to /etc/maildiode/examples/ — never over an existing
#      outer.toml or inner.toml: the configuration is the administrator's.
# Run it again to upgrade (agents stopped): the virtualenv is replaced, state and configuration
# are kept.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=""
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2%/}; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

PREFIX=$ROOT/opt/maildiode
ETC=$ROOT/etc/maildiode
STATE=$ROOT/var/lib/maildiode
LOGS=$ROOT/var/log/maildiode
UNITS=$ROOT/etc/systemd/system
LOGROTATE=$ROOT/etc/logrotate.d
SYSTEM=yes
[ -n "$ROOT" ] && SYSTEM=no
if [ "$SYSTEM" = yes ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root, or give --root DIR for an install under DIR" >&2
    exit 2
fi

say() { echo "install.sh: $*"; }

# 1. prerequisites
if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: $PYTHON is missing, older than 3.11, or lacks venv/ensurepip;" \
         "install python3 and python3-venv from debian-packages.txt" >&2
    exit 2
fi
missing=""
if command -v dpkg >/dev/null 2>&1; then
    for package in $(grep -v '^#' "$HERE/debian-packages.txt" | sed '/^$/d'); do
        dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
    done
fi
[ -n "$missing" ] && say "warning: Debian packages not installed:$missing (see debian-packages.txt; outer or inner host may not need all)"

# 2. the virtualenv, offline
# A virtualenv names its own path in its scripts, so it is made where it stays: an upgrade
# (agents stopped) replaces it; state and configuration are elsewhere and kept.
rm -rf "$PREFIX/.venv"
mkdir -p "$PREFIX"
"$PYTHON" -m venv "$PREFIX/.venv"
"$PREFIX/.venv/bin/pip" install --quiet --no-index --find-links "$HERE/wheels" \
    --disable-pip-version-check maildiode
rm -rf "$PREFIX/docs" && cp -r "$HERE/docs" "$PREFIX/docs"
say "installed maildiode $(cat "$HERE/VERSION") in $PREFIX/.venv"

# 3. the service user
if [ "$SYSTEM" = yes ] && ! id maildiode >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/maildiode --shell /usr/sbin/nologin maildiode
    say "made the service user maildiode"
fi

# 4. folders, owners, modes
install -d -m 0755 "$ETC" "$ETC/examples"
install -d -m 0700 "$ETC/keys" "$STATE"
install -d -m 0750 "$LOGS"
if [ "$SYSTEM" = yes ]; then
    chown maildiode:maildiode "$ETC/keys" "$STATE" "$LOGS"
fi

# 5. units and logrotate (not enabled: the administrator writes the config first)
install -d -m 0755 "$UNITS" "$LOGROTATE"
for unit in "$HERE"/deploy/systemd/*.service; do
    install -m 0644 "$unit" "$UNITS/$(basename "$unit")"
done
install -m 0644 "$HERE/deploy/logrotate/maildiode" "$LOGROTATE/maildiode"
[ "$SYSTEM" = yes ] && command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload || true

# 6. example configs, never over the administrator's
for example in "$HERE"/deploy/examples/*.toml; do
    install -m 0644 "$example" "$ETC/examples/$(basename "$example")"
done
say "done. Next: write $ETC/outer.toml or $ETC/inner.toml from $ETC/examples/,"
say "make keys (maildiode keygen $ETC/keys --name outer|inner), check, then"
say "systemctl enable --now maildiode-outer (or maildiode-inner). docs/operations.md §2."
