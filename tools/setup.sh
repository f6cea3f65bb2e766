#!/bin/sh
# Installs the Debian packages indicatord needs to build, test and run its
# demo, when they are not installed yet (systemd for systemd-analyze,
# systemd-sysusers and systemd-tmpfiles, dpkg-dev for cpack's shlibdeps,
# groff-base for the man pages' check, libjansson-dev for check_log's JSON
# parser and indicator-web, libxlsxwriter-dev for export --format xlsx and
# python3-openpyxl for the test that reads it back; Chart.js for
# indicator-web's charts, Chromium, its driver and selenium for its browser
# test, and a CJK font so that its screenshots show the Chinese rather
# than boxes: fonts-wqy-microhei, 1.6 MB to download (5 MB installed)
# against 56.5 MB (91 MB) for fonts-noto-cjk, which only adds weights and
# the other CJK scripts); gettext for the translations' catalogues, locales
# for the zh_CN locale the tests build with localedef into a temporary
# directory. Idempotent; uses sudo when not root.
set -eu

PKGS="build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev
protobuf-c-compiler protobuf-compiler liblmdb-dev lmdb-utils libxxhash-dev check
libinih-dev libsystemd-dev libmicrohttpd-dev tzdata python3 python3-zmq python3-protobuf
libjansson-dev libxlsxwriter-dev python3-openpyxl gettext locales
clang libclang-rt-14-dev
systemd dpkg-dev groff-base
libjs-chart.js chromium chromium-driver python3-selenium fonts-wqy-microhei"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ -n "$missing" ]; then
	echo "setup: installing:$missing" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing \
		>/dev/null
fi

# promtool, which the metrics tests run (check_metrics), ships in Debian's
# prometheus package; installing that package would start a Prometheus
# service, so only its .deb is downloaded and promtool alone extracted, to
# ${INDICATOR_CACHE:-$HOME/.cache/indicatord}/promtool (CMake passes that
# path to the tests). No root needed.
CACHE=${INDICATOR_CACHE:-${HOME:-/root}/.cache/indicatord}
if [ ! -x "$CACHE/promtool" ]; then
	echo "setup: extracting promtool from Debian's prometheus package" \
		"into $CACHE" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# apt-get download writes as the _apt user when it can.
	chmod 0777 "$tmp"
	if ! (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1); then
		$SUDO apt-get update -qq
		(cd "$tmp" && apt-get download -q prometheus >/dev/null)
	fi
	dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
	mkdir -p "$CACHE"
	install -m 0755 "$tmp/root/usr/bin/promtool" "$CACHE/promtool.new"
	mv "$CACHE/promtool.new" "$CACHE/promtool"
fi
