#!/bin/sh
# Operating indicatord as a service, checked the way an operator or a
# packager would (ctest runs each part as its own test):
#
#   service.sh units   SRC BUILD BINDIR  the units pass `systemd-analyze
#                                         verify`, rate 1.5 or lower on
#                                         `systemd-analyze security`, and the
#                                         sysusers.d/tmpfiles.d files make
#                                         the users and the drop directory
#   service.sh man     SRC BUILD BINDIR  the man pages (as configured into
#                                         BUILD/man) render without a
#                                         warning, carry the version the
#                                         binaries print, and document every
#                                         option, command and configuration
#                                         key
#   service.sh debs    SRC BUILD BINDIR  builds both .deb files (cpack -G
#                                         DEB) in BUILD/deb, a build with the
#                                         default prefix
#   service.sh package SRC BUILD BINDIR  `cmake --install` of that build with
#                                         three prefixes, and its packages:
#                                         under /usr and /etc whatever the
#                                         prefix; the files, conffiles,
#                                         maintainer scripts, dependencies
#
# No part reads or changes this machine's installed state (/etc, /var/lib, a
# running daemon): whatever is installed goes into scratch roots.
#
# BINDIR is the configured CMAKE_INSTALL_FULL_BINDIR, which the generated
# units name; the units check swaps it for BUILD so the binaries exist.
set -eu

what=$1
src=$2
build=$3
bindir=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-service.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "service.sh $what: FAIL: $*" >&2
	exit 1
}

need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			fail "$c not found (tools/setup.sh installs it)"
	done
}

# The man pages as a man tree, so that `man indicatord.8` resolves: those
# configure_file() made in the build tree, with the version filled in.
man_tree() {
	mkdir -p "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8"
	cp "$build"/man/*.1 "$tmp/man/man1/"
	cp "$build"/man/*.8 "$tmp/man/man8/"
	cp "$build"/man/*.5 "$tmp/man/man5/"
}

# The project's version, as CMake has it.
project_version() {
	v=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$1/CMakeCache.txt")
	[ -n "$v" ] || fail "no CMAKE_PROJECT_VERSION in $1/CMakeCache.txt"
	echo "$v"
}

units() {
	need systemd-analyze systemd-sysusers systemd-tmpfiles
	man_tree
	mkdir "$tmp/units"
	for u in indicatord indicator-agent indicator-web; do
		f="$build/systemd/$u.service"
		[ -f "$f" ] || fail "$f not generated"
		sed "s|$bindir/|$build/|g" "$f" >"$tmp/units/$u.service"
		grep -q "^ExecStart=$build/$u " "$tmp/units/$u.service" ||
			fail "$u.service: ExecStart does not name $bindir/$u"

		# verify also runs `man` on each Documentation= page.
		MANPATH="$tmp/man" systemd-analyze verify \
			"$tmp/units/$u.service" >"$tmp/verify" 2>&1 ||
			fail "systemd-analyze verify $u.service: $(cat "$tmp/verify")"
		[ -s "$tmp/verify" ] &&
			fail "systemd-analyze verify $u.service: $(cat "$tmp/verify")"

		systemd-analyze security --offline=true \
			"$tmp/units/$u.service" >"$tmp/security" 2>&1 ||
			fail "systemd-analyze security $u.service: $(cat "$tmp/security")"
		score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
			"$tmp/security")
		[ -n "$score" ] || fail "no exposure level in: $(cat "$tmp/security")"
		awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' ||
			fail "$u.service exposure $score is above 1.5: $(grep '✗' "$tmp/security")"
		echo "service.sh: $u.service: verify clean, exposure $score"
	done

	# The service users, made in a scratch root as the packages make them.
	mkdir -p "$tmp/root/etc"
	systemd-sysusers --root="$tmp/root" "$src/systemd/indicatord.sysusers" \
		"$src/systemd/indicator-agent.sysusers" >/dev/null 2>&1 ||
		fail "systemd-sysusers refused the sysusers.d files"
	for u in indicatord indicator-agent; do
		grep -q "^$u:x:[0-9]*:[0-9]*:.*:/var/lib/$u:/usr/sbin/nologin\$" \
			"$tmp/root/etc/passwd" || fail "no system user $u"
		grep -q "^$u:x:" "$tmp/root/etc/group" || fail "no group $u"
	done
	systemd-tmpfiles --root="$tmp/root" --create \
		"$src/systemd/indicator-agent.tmpfiles" ||
		fail "systemd-tmpfiles refused indicator-agent.tmpfiles"
	drop="$tmp/root/var/lib/indicator-agent/drop"
	[ "$(stat -c %a "$drop")" = 2770 ] ||
		fail "drop directory mode $(stat -c %a "$drop"), not 2770"
	[ "$(stat -c %a "${drop%/drop}")" = 750 ] ||
		fail "state directory mode $(stat -c %a "${drop%/drop}"), not 750"
	if [ "$(id -u)" -eq 0 ]; then
		gid=$(sed -n 's/^indicator-agent:x:\([0-9]*\):.*/\1/p' \
			"$tmp/root/etc/group")
		[ "$(stat -c %g "$drop")" = "$gid" ] ||
			fail "drop directory not in group indicator-agent"
	fi
}

# A configuration key is documented by a paragraph tagged with it and its
# default: .BR key " (default...)".
documented_key() {
	page=$1
	shift
	for key in "$@"; do
		grep -q "^\.BR $key \" (" "$src/man/$page" ||
			fail "$page has no paragraph for the key '$key'"
	done
}

# The long options of a getopt_long table in a source file, as --name.
long_options() {
	sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*_argument,.*/--\1/p' \
		"$src/$1"
}

# Every option, command and key in the sources appears in its man page.
documented() {
	page=$1
	shift
	for word in "$@"; do
		# roff escapes the minus: -n is \-n, indicator-agent is
		# indicator\-agent.
		pat=$(printf '%s' "$word" | sed 's/-/\\-/g')
		grep -qF -- "$pat" "$src/man/$page" ||
			fail "$page does not document '$word'"
	done
}

man_pages() {
	need groff
	version=$(project_version "$build")
	for p in "$src"/man/*.[158]; do
		[ -f "$build/man/$(basename "$p")" ] ||
			fail "$p is not configured into $build/man (CMakeLists.txt)"
	done
	for p in "$build"/man/*.[158]; do
		# One version: CMake's, in every page and every binary.
		grep -q "^\.TH .* \"indicatord $version\" " "$p" ||
			fail "$p: .TH does not say indicatord $version: $(head -1 "$p")"
		out=$(groff -man -Tutf8 -ww -z "$p" 2>&1) ||
			fail "groff failed on $p: $out"
		[ -z "$out" ] || fail "groff warns on $p: $out"
		grep -q '^\.SH EXIT STATUS' "$p" || grep -q '^\.SH FILES' "$p" ||
			fail "$p has neither EXIT STATUS nor FILES"
		for s in NAME SYNOPSIS DESCRIPTION 'SEE ALSO'; do
			grep -q "^\.SH \"*$s" "$p" || fail "$p has no $s section"
		done
	done
	for b in indicatord indicatorctl indicator-agent indicator-sub \
		indicator-gen-sample indicator-web; do
		[ "$("$build/$b" --version)" = "$b $version" ] ||
			fail "$b --version: $("$build/$b" --version), not $b $version"
	done
	if command -v mandoc >/dev/null 2>&1; then
		for p in "$build"/man/*.[158]; do
			mandoc -Tlint -Wwarning "$p" >"$tmp/lint" 2>&1 ||
				fail "mandoc -Tlint $p: $(cat "$tmp/lint")"
		done
	fi

	# Configuration keys: the rows of the tables in core/config.c.
	keys=$(sed -n 's/^[[:space:]]*{ "\(daemon\|limits\|registry\)", "\([a-z_]*\)".*/\2/p' \
		"$src/core/config.c")
	[ -n "$keys" ] || fail "no daemon keys found in core/config.c"
	# shellcheck disable=SC2086
	documented_key indicatord.conf.5 $keys
	keys=$(sed -n 's/^[[:space:]]*{ "agent", "\([a-z_]*\)".*/\1/p' \
		"$src/core/config.c")
	[ -n "$keys" ] || fail "no agent keys found in core/config.c"
	# shellcheck disable=SC2086
	documented_key indicator-agent.8 $keys
	documented indicatord.conf.5 '[daemon]' '[limits]' '[registry]' \
		'[district' '[industry' '[metric' '[target]' '[unit' \
		'[columns]' '[status]' aliases

	# indicatord's options: its getopt_long string and long options.
	opts=$(sed -n 's/.*getopt_long(argc, argv, "+*\([a-z:]*\)".*/\1/p' \
		"$src/daemon/indicatord.c" | tr -d ':' | sed 's/./-& /g')
	[ -n "$opts" ] || fail "no getopt_long string in daemon/indicatord.c"
	# shellcheck disable=SC2046,SC2086
	documented indicatord.8 $opts $(long_options daemon/indicatord.c) \
		SIGHUP SIGTERM READY=1 STATUS= RELOADING=1 STOPPING=1 \
		WATCHDOG=1 conf.d

	# The agent's long options and commands.
	opts=$(long_options agents/agent.c)
	[ -n "$opts" ] || fail "no long options in agents/agent.c"
	# shellcheck disable=SC2086
	documented indicator-agent.8 $opts -n send status run help conf.d \
		check template dead-letters

	# indicator-web's long options.
	opts=$(long_options web/indicator-web.c)
	[ -n "$opts" ] || fail "no long options in web/indicator-web.c"
	# shellcheck disable=SC2086
	documented indicator-web.8 $opts /plan /path /matrix /history \
		/reporting /events

	# indicator-sub's long options.
	opts=$(long_options tools/indicator-sub.c)
	[ -n "$opts" ] || fail "no long options in tools/indicator-sub.c"
	# shellcheck disable=SC2086
	documented indicator-sub.1 $opts -c

	# indicatorctl's options and commands, from its tables (a row may
	# carry its arguments and help after the function).
	# shellcheck disable=SC2046
	documented indicatorctl.8 $(long_options tools/indicatorctl.c) help
	cmds=$(sed -n 's/^[[:space:]]*{ "\([a-z]*\)", cmd_[a-z]*\(,\| }\).*/\1/p' \
		"$src/tools/indicatorctl.c")
	[ -n "$cmds" ] || fail "no command table in tools/indicatorctl.c"
	for c in $cmds; do
		grep -q "^\.B[IR]* $c\( \|\$\)" "$src/man/indicatorctl.8" ||
			fail "indicatorctl.8 does not document the command '$c'"
	done
}

# In a list from dpkg-deb -c: the path (a ./ before it).
has() {
	grep -q " \./${2#/}\$" "$1" || fail "$(basename "$1" .list) lacks $2"
}

# The packages' build: a build tree of its own under BUILD, configured with
# the default prefix (/usr/local), which the packages must not follow. Run
# once, before the package and systemd tests (a ctest fixture); rebuilt
# incrementally on the next run.
debs() {
	need cmake cpack dpkg-deb dpkg-shlibdeps
	b="$build/deb"
	cmake -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSANITIZE=OFF -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON \
		>"$tmp/log" 2>&1 || fail "cmake: $(tail -20 "$tmp/log")"
	cmake --build "$b" -j 2 --target indicatord indicatorctl \
		indicator-sub indicator-agent indicator-web catalogues \
		>"$tmp/log" 2>&1 ||
		fail "build: $(tail -20 "$tmp/log")"
	rm -f "$b"/*.deb
	(cd "$b" && cpack -G DEB) >"$tmp/log" 2>&1 ||
		fail "cpack: $(tail -30 "$tmp/log")"
	for pkg in indicatord indicator-agent; do
		ls "$b/${pkg}_"*.deb >/dev/null 2>&1 ||
			fail "no ${pkg}_*.deb: $(ls "$b")"
	done
	echo "service.sh: $(cd "$b" && ls ./*.deb | tr '\n' ' ')built"
}

# Every Exec line of unit $1 runs a binary in $2 with a configuration file
# in $3.
unit_paths() {
	grep -q '^Exec' "$1" || fail "$(basename "$1") has no Exec line"
	grep '^Exec' "$1" | while read -r line; do
		case $line in
		"Exec"*"=$2/indicator"*" -c $3/indicator"*) ;;
		*) fail "$(basename "$1") does not name $2 and $3: $line" ;;
		esac
	done
}

# cmake --install into a scratch root with prefix $1 (empty: the build's,
# /usr/local): every file in its place, the units naming the binaries and
# the configuration of that prefix, which is in $2.
install_prefix() {
	prefix=$1
	etc=$2
	p=${prefix:-/usr/local}
	d="$tmp/dest$p"
	if [ -n "$prefix" ]; then
		DESTDIR="$d" cmake --install "$b" --prefix "$prefix" \
			>"$tmp/log" 2>&1
	else
		DESTDIR="$d" cmake --install "$b" >"$tmp/log" 2>&1
	fi || fail "cmake --install $prefix: $(tail -20 "$tmp/log")"
	for f in "$p/bin/indicatord" "$p/bin/indicatorctl" \
		"$p/bin/indicator-sub" "$p/bin/indicator-agent" \
		"$p/bin/indicator-web" "$unitdir/indicator-web.service" \
		"$p/share/man/man8/indicator-web.8" \
		"$etc/indicatord/indicatord.conf" \
		"$etc/indicator-agent/indicator-agent.conf" \
		"$unitdir/indicatord.service" \
		"$unitdir/indicator-agent.service" \
		/usr/lib/sysusers.d/indicatord.conf \
		/usr/lib/sysusers.d/indicator-agent.conf \
		/usr/lib/tmpfiles.d/indicator-agent.conf \
		"$p/share/man/man8/indicatord.8" \
		"$p/share/man/man8/indicatorctl.8" \
		"$p/share/man/man8/indicator-agent.8" \
		"$p/share/man/man5/indicatord.conf.5" \
		"$p/share/man/man1/indicator-sub.1"; do
		[ -f "$d$f" ] || fail "cmake --install $prefix did not install $f"
	done
	for f in "$etc/indicatord/conf.d" "$etc/indicator-agent/conf.d"; do
		[ -d "$d$f" ] || fail "cmake --install $prefix did not make $f"
	done
	grep -q "^\.TH .* \"indicatord $version\" " \
		"$d$p/share/man/man8/indicatord.8" ||
		fail "cmake --install $prefix: indicatord.8 is not version $version"
	unit_paths "$d$unitdir/indicatord.service" "$p/bin" "$etc"
	unit_paths "$d$unitdir/indicator-agent.service" "$p/bin" "$etc"
	unit_paths "$d$unitdir/indicator-web.service" "$p/bin" "$etc"
	[ ! -e "$d$etc/indicator-web" ] ||
		fail "cmake --install made $etc/indicator-web (it has no file)"
}

package() {
	need cmake dpkg-deb
	b="$build/deb"
	[ -f "$b/CMakeCache.txt" ] || fail "no $b: run service.sh debs first"
	unitdir=$(sed -n 's/^SYSTEMD_UNITDIR:PATH=//p' "$b/CMakeCache.txt")
	[ -n "$unitdir" ] || fail "no SYSTEMD_UNITDIR in $b/CMakeCache.txt"
	version=$(project_version "$b")

	# cmake --install: the build's prefix, /usr and one in /opt.
	install_prefix "" /usr/local/etc
	install_prefix /usr /etc
	install_prefix /opt/indicatord /etc/opt/indicatord

	# The installed configuration: the default one, naming the unit's
	# store so that indicatorctl -c finds it.
	conf="$tmp/dest/usr/etc/indicatord/indicatord.conf"
	head -c "$(wc -c <"$src/conf/indicatord.conf")" "$conf" |
		cmp -s - "$src/conf/indicatord.conf" ||
		fail "installed indicatord.conf does not start with the default"
	[ "$(tail -1 "$conf")" = "data_dir = /var/lib/indicatord" ] ||
		fail "installed indicatord.conf does not name /var/lib/indicatord"
	# Checked and read with the store moved into the scratch directory:
	# no test looks at this machine's /var/lib/indicatord.
	mkdir -m 0700 "$tmp/store"
	sed "s|^data_dir = /var/lib/indicatord\$|data_dir = $tmp/store/indicatord|" \
		"$conf" >"$tmp/moved.conf"
	"$tmp/dest/usr/usr/bin/indicatord" -n -c "$tmp/moved.conf" \
		>"$tmp/log" 2>&1 ||
		fail "indicatord -n refuses the installed file: $(cat "$tmp/log")"
	"$tmp/dest/usr/usr/bin/indicatorctl" -c "$tmp/moved.conf" agents \
		>"$tmp/log" 2>&1 &&
		fail "indicatorctl found a store that should not exist"
	grep -q "no store at $tmp/store/indicatord\$" "$tmp/log" ||
		fail "indicatorctl -c does not read data_dir: $(cat "$tmp/log")"

	for pkg in indicatord indicator-agent; do
		deb=$(ls "$b/${pkg}_"*.deb 2>/dev/null | head -1)
		[ -n "$deb" ] || fail "no ${pkg}_*.deb: $(ls "$b")"
		dpkg-deb -c "$deb" >"$tmp/$pkg.list"
		dpkg-deb -I "$deb" >"$tmp/$pkg.info"
		dpkg-deb -e "$deb" "$tmp/$pkg.ctl"
		dpkg-deb -x "$deb" "$tmp/$pkg.root"
		grep -q "^ Package: $pkg\$" "$tmp/$pkg.info" ||
			fail "$deb is not package $pkg"
		grep -q "^ Version: $version\$" "$tmp/$pkg.info" ||
			fail "$pkg: not version $version: $(grep Version "$tmp/$pkg.info")"
		has "$tmp/$pkg.list" "/etc/$pkg/conf.d/"
		# shlibdeps found the libraries.
		grep -q '^ Depends:.*libzmq5' "$tmp/$pkg.info" ||
			fail "$pkg: no libzmq5 in Depends: $(grep Depends "$tmp/$pkg.info")"
		grep -q '^ Depends:.*liblmdb0' "$tmp/$pkg.info" ||
			fail "$pkg: no liblmdb0 in Depends"
		# Under /usr and /etc, although the build's prefix is /usr/local.
		if grep -q ' \./usr/local' "$tmp/$pkg.list"; then
			fail "$pkg installs under /usr/local"
		fi
		has "$tmp/$pkg.list" "$unitdir/$pkg.service"
		has "$tmp/$pkg.list" "/usr/lib/sysusers.d/$pkg.conf"
		has "$tmp/$pkg.list" "/usr/share/man/man8/$pkg.8"
		has "$tmp/$pkg.list" "/etc/$pkg/$pkg.conf"
		has "$tmp/$pkg.list" "/usr/bin/$pkg"
		unit_paths "$tmp/$pkg.root$unitdir/$pkg.service" /usr/bin /etc
		[ "$(cat "$tmp/$pkg.ctl/conffiles")" = "/etc/$pkg/$pkg.conf" ] ||
			fail "$pkg conffiles: $(cat "$tmp/$pkg.ctl/conffiles")"
		for s in postinst prerm postrm; do
			[ -x "$tmp/$pkg.ctl/$s" ] || fail "$pkg: no executable $s"
			sh -n "$tmp/$pkg.ctl/$s" || fail "$pkg: $s: syntax error"
		done
		grep -q "systemd-sysusers /usr/lib/sysusers.d/$pkg.conf" \
			"$tmp/$pkg.ctl/postinst" || fail "$pkg postinst makes no user"
		grep -q "daemon-reload" "$tmp/$pkg.ctl/postinst" ||
			fail "$pkg postinst does not reload systemd"
		# Installed, never started: enabling is the operator's step.
		if grep -Eq 'systemctl (--system )?(start|enable)' \
			"$tmp/$pkg.ctl/postinst"; then
			fail "$pkg postinst starts or enables the service"
		fi
		# Purge takes the configuration, keys included, never the data
		# (service_systemd purges for real).
		grep -q "rm -rf /etc/$pkg\$" "$tmp/$pkg.ctl/postrm" ||
			fail "$pkg postrm does not remove /etc/$pkg on purge"
		if grep -v '^#' "$tmp/$pkg.ctl/postrm" | grep -q /var/lib; then
			fail "$pkg postrm touches /var/lib"
		fi
		# The unit's binaries are where the package puts them.
		for x in $(sed -n 's/^Exec[A-Za-z]*=\([^ ]*\).*/\1/p' \
			"$tmp/$pkg.root$unitdir/$pkg.service"); do
			[ -x "$tmp/$pkg.root$x" ] ||
				fail "$pkg.service runs $x, not in the package"
		done
	done
	has "$tmp/indicatord.list" /usr/bin/indicatorctl
	has "$tmp/indicatord.list" /usr/bin/indicator-sub
	has "$tmp/indicatord.list" /usr/bin/indicator-web
	has "$tmp/indicatord.list" "$unitdir/indicator-web.service"
	has "$tmp/indicatord.list" /usr/share/man/man8/indicator-web.8
	unit_paths "$tmp/indicatord.root$unitdir/indicator-web.service" \
		/usr/bin /etc
	grep -q '^ Recommends:.*libjs-chart.js' "$tmp/indicatord.info" ||
		fail "indicatord does not recommend libjs-chart.js"
	has "$tmp/indicatord.list" /usr/share/man/man8/indicatorctl.8
	has "$tmp/indicatord.list" /usr/share/man/man5/indicatord.conf.5
	has "$tmp/indicatord.list" /usr/share/man/man1/indicator-sub.1
	# The daemon refuses an unknown time zone: tzdata must be there.
	grep -q '^ Depends:.*tzdata' "$tmp/indicatord.info" ||
		fail "indicatord: no tzdata in Depends: $(grep Depends "$tmp/indicatord.info")"
	has "$tmp/indicator-agent.list" /usr/lib/tmpfiles.d/indicator-agent.conf
	# Each package its catalogue (text domain) and the contract.
	for pkg in indicatord indicator-agent; do
		has "$tmp/$pkg.list" /usr/share/locale/zh_CN/LC_MESSAGES/$pkg.mo
		has "$tmp/$pkg.list" /usr/share/doc/$pkg/protocol.md
		has "$tmp/$pkg.list" /usr/share/doc/$pkg/domain.md
	done
	grep -q '^ Depends:.*tzdata' "$tmp/indicator-agent.info" ||
		fail "indicator-agent: no tzdata in Depends"
	grep -q "systemd-tmpfiles --create /usr/lib/tmpfiles.d/indicator-agent.conf" \
		"$tmp/indicator-agent.ctl/postinst" ||
		fail "indicator-agent postinst does not make the drop directory"
	if grep -q 'indicator-agent' "$tmp/indicatord.list"; then
		fail "indicatord package holds agent files"
	fi
	if grep -Eq 'indicatord|indicatorctl' "$tmp/indicator-agent.list"; then
		fail "indicator-agent package holds daemon files"
	fi
	echo "service.sh: $(cd "$b" && ls ./*.deb | tr '\n' ' ')checked"
}

case $what in
units) units ;;
man) man_pages ;;
debs) debs ;;
package) package ;;
*) fail "unknown part '$what'" ;;
esac
echo "service.sh $what: ok"
