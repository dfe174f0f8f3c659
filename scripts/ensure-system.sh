#!/usr/bin/env bash
# Make sure the system services the test suite needs exist on this machine (idempotent).
#
#  * Mosquitto 2: only the binary. Tests start private brokers on free ports from the project's
#    own configuration, so the Debian package's system service is neither needed nor used.
#  * PostgreSQL on 127.0.0.1:5432 where user `postgres` may connect over TCP without a password
#    (trust, loopback only): the `database_url` fixture creates and drops one database per test.
#
# Written for Debian 12 (CI runs it as root); uses sudo when not root. Says what it changes.
set -euo pipefail

say() { echo "ensure-system: $*"; }
die() { echo "ensure-system: ERROR: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        NEED_ROOT_MSG="not root and sudo is missing"
    fi
fi
as_root() {
    if [ -n "${NEED_ROOT_MSG:-}" ]; then die "$NEED_ROOT_MSG; cannot run: $*"; fi
    "${SUDO[@]}" "$@"
}
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        [ -z "${NEED_ROOT_MSG:-}" ] || die "$NEED_ROOT_MSG; cannot run as user postgres: $*"
        sudo -u postgres "$@"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* with your package manager"
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    # policy-rc.d is not touched: if the package starts its own service that is harmless, and
    # without an init system the start simply does not happen.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- Mosquitto --------------------------------------------------------------------------------
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    say "mosquitto present"
else
    say "installing mosquitto (apt package 'mosquitto'; tests run their own instances)"
    apt_install mosquitto
fi

# --- PostgreSQL -------------------------------------------------------------------------------
pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1; }

# tests/central/test_read_replica.py starts a primary and a streaming replica of its own
# (sharpeyes/services/postgres_cluster.py): it needs the server's binaries on this machine even
# where 127.0.0.1:5432 is served from elsewhere. As root it runs them as OS user postgres (the
# package creates that user).
pg_bin="/usr/lib/postgresql/$(pg_version)/bin"
if [ -n "${SHARPEYES_PG_BIN:-}" ] || { [ -n "$(pg_version)" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_basebackup" ]; }; then
    say "postgresql server binaries present (initdb, pg_ctl, pg_basebackup)"
else
    say "installing postgresql (apt package 'postgresql': initdb, pg_basebackup) for the tests' own primary + replica"
    apt_install postgresql
fi

if port_open 127.0.0.1 5432; then
    say "postgresql accepts connections on 127.0.0.1:5432"
else
    if [ -z "$(pg_version)" ]; then
        say "installing postgresql (apt package 'postgresql')"
        apt_install postgresql
    fi
    ver="$(pg_version)"
    [ -n "$ver" ] || die "postgresql is installed but no server version found under /usr/lib/postgresql"
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$ver main"; then
        say "creating postgresql cluster $ver/main"
        as_root pg_createcluster "$ver" main >/dev/null
    fi
    say "starting postgresql cluster $ver/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 60); do port_open 127.0.0.1 5432 && break; sleep 0.5; done
    port_open 127.0.0.1 5432 || die "postgresql $ver/main did not start; see /var/log/postgresql/postgresql-$ver-main.log"
fi

# Trust for user postgres over TCP from 127.0.0.1 only (tests connect without a password).
if command -v psql >/dev/null 2>&1; then
    if psql -h 127.0.0.1 -U postgres -w -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
        say "postgres@127.0.0.1 can connect without a password"
    else
        hba="$(as_postgres psql -tAc 'SHOW hba_file' 2>/dev/null || true)"
        [ -n "$hba" ] || die "cannot reach the local cluster as OS user postgres to read pg_hba.conf; \
set SHARPEYES_TEST_PG_URL to a server where user postgres may create databases"
        say "adding 'host all postgres 127.0.0.1/32 trust' to $hba and reloading"
        # First matching line wins in pg_hba.conf, so the rule goes on top.
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust  # added by sharpeyes scripts/ensure-system.sh' "$hba"
        as_postgres psql -tAc 'SELECT pg_reload_conf()' >/dev/null
        sleep 0.5
        psql -h 127.0.0.1 -U postgres -w -d postgres -tAc 'SELECT 1' >/dev/null \
            || die "postgres@127.0.0.1 still needs a password after editing $hba"
    fi
else
    say "psql not found; not checking authentication (the tests will say if it fails)"
fi

# --- Chromium for the web console's end-to-end tests ------------------------------------------
# Debian's browser, driven through Playwright's Python API with executable_path (Playwright's own
# browser download is never used). The CJK font makes the Chinese UI readable in screenshots.
if [ -x /usr/bin/chromium ]; then
    say "chromium present"
else
    say "installing chromium (apt packages 'chromium', 'chromium-driver') for tests/e2e"
    apt_install chromium chromium-driver
fi
if fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    say "CJK font present"
else
    say "installing fonts-noto-cjk (Chinese text in the console's screenshots)"
    apt_install fonts-noto-cjk
fi

# --- GStreamer's RTSP server for the benchmarks' stand-in cameras ------------------------------
# `sharpeyes bench edge` serves its cameras from C (sharpeyes/gst_rtsp_server.py) through the
# system Python's PyGObject; without these it falls back, loudly, to the Python server, which
# takes a large share of a 2-core box.
if /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0'); \
from gi.repository import Gst, GstRtspServer; Gst.init(None); \
assert all(Gst.ElementFactory.find(n) for n in ('filesrc', 'qtdemux', 'h264parse', 'rtph264pay'))" >/dev/null 2>&1; then
    say "gstreamer rtsp server present"
else
    say "installing GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-rtsp, plugins good/bad) for the benchmarks"
    apt_install python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
fi
