#!/bin/bash
# The packages under a real systemd, as an operator runs them: boots
# systemd 252 as PID 1 of a box with its own root (tests/sdbox.sh), installs
# both .deb files there with apt-get, and checks every step of the README's
# "Operating it as a service" for real:
#
#   enable --now reaches active once READY=1 is sent (Type=notify), with a
#   STATUS= line; indicatorctl status answers; the agent, configured, takes
#   a file dropped in its drop directory and the daemon stores its values;
#   systemctl reload with a changed target (the daemon takes it) and with a
#   broken file (refused: systemctl reload fails, the old configuration
#   serves on); kill -9 of the daemon while the agent streams: restarted,
#   nothing acknowledged lost, verify clean; SIGSTOP: killed by the watchdog
#   and restarted; stop; reinstall of the same .deb while running (the
#   upgrade path: restarted, store and edited conffile kept); the dashboard
#   (indicator-web) enabled, serving the stored value from its sandbox; the
#   three units rate 1.5 or lower on `systemd-analyze security`, online; the daemon's warnings
#   reach the journal as warnings; purge removes /etc/indicatord (keys and
#   drop-ins included) and /etc/indicator-agent, and keeps the store and the
#   outbox. Then, the box gone: this machine's dpkg database, users, /etc and
#   /var/lib are as they were.
#
#   service_systemd.sh SRC BUILD   the .deb files are BUILD/deb/*.deb
#                                  (service.sh debs)
#
# Exit 77 (ctest's SKIP_RETURN_CODE) with the reason when the box cannot be
# made here (not root, no unshare, nsenter, overlayfs or systemd); with
# SDBOX_REQUIRED=1 (CI) that is a failure instead. Every wait has a
# deadline; the whole test takes about a minute.
set -eu

src=$1
build=$2
sdbox="$src/tests/sdbox.sh"
debdir="$build/deb"
started=$(date +%s)


fail() {
	echo "service_systemd: FAIL: $*" >&2
	exit 1
}

skip() {
	if [ "${SDBOX_REQUIRED:-0}" = 1 ]; then
		fail "cannot run, and SDBOX_REQUIRED=1: $*"
	fi
	echo "service_systemd: SKIP: $*" >&2
	exit 77
}

say() {
	echo "service_systemd: [$(($(date +%s) - started)) s] $*"
}

[ "$(id -u)" -eq 0 ] || skip "needs root (it boots systemd in namespaces)"
for c in unshare nsenter pivot_root timeout dpkg-query; do
	command -v "$c" >/dev/null 2>&1 || skip "$c not found"
done
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
	skip "no overlayfs"
unshare --pid --fork --mount --net true 2>/dev/null ||
	skip "unshare cannot make namespaces here"
deb_daemon=$(ls "$debdir"/indicatord_*.deb 2>/dev/null | head -1)
deb_agent=$(ls "$debdir"/indicator-agent_*.deb 2>/dev/null | head -1)
[ -n "$deb_daemon" ] && [ -n "$deb_agent" ] ||
	fail "no .deb files in $debdir (service.sh debs)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-systemd.XXXXXX")
box="$tmp/box"
mkdir -p "$box/share"
cp "$deb_daemon" "$deb_agent" "$box/share/"
deb_daemon=/sdbox/$(basename "$deb_daemon")
deb_agent=/sdbox/$(basename "$deb_agent")

# This machine's state that the box must leave alone.
host_state() {
	dpkg-query -W -f '${binary:Package} ${db:Status-Abbrev} ${Version}\n' \
		indicatord indicator-agent 2>&1 || true
	getent passwd indicatord indicator-agent || true
	for p in /etc/indicatord /etc/indicator-agent /var/lib/indicatord \
		/var/lib/indicator-agent; do
		if [ -e "$p" ]; then
			echo "$p: $(stat -c '%i %Y' "$p")"
		else
			echo "$p: absent"
		fi
	done
}
host_state >"$tmp/host.before"

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -f "$box/pid" ]; then
		echo "service_systemd: the box's journal, last lines:" >&2
		in_box journalctl --no-pager -n 60 -o short-monotonic >&2 ||
			true
	fi
	bash "$sdbox" stop "$box" || rc=1
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A command in the box, with a clean environment, within $T seconds
# (default 60).
in_box() {
	timeout "${T:-60}" bash "$sdbox" exec "$box" env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# wait_for SECONDS WHAT CMD...: runs CMD in the box until it succeeds.
wait_for() {
	secs=$1
	what=$2
	shift 2
	deadline=$(($(date +%s) + secs))
	until T=20 in_box "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] ||
			fail "$what: not within $secs s"
		sleep 0.2
	done
}

prop() { # prop UNIT PROPERTY: its value
	in_box systemctl show -P "$2" "$1"
}

CONF=/etc/indicatord/indicatord.conf
ACONF=/etc/indicator-agent/indicator-agent.conf
DROP=/var/lib/indicator-agent/drop
ctl() {
	in_box indicatorctl -c "$CONF" "$@"
}

# drop NAME ROWS...: a CSV written under a temporary name and renamed into
# the drop directory, as the README tells the export job to.
drop() {
	name=$1
	shift
	{
		echo "industry,metric,period,value,unit"
		for r in "$@"; do echo "$r"; done
	} >"$box/share/$name"
	in_box sh -c "cp /sdbox/$name $DROP/.$name.tmp &&
		chmod 0644 $DROP/.$name.tmp && mv $DROP/.$name.tmp $DROP/$name"
}

# The number of observations indicatorctl query finds (0 when none).
nobs() {
	ctl query --json "$@" | grep -c '^{' || true
}

say "booting systemd in a box"
bash "$sdbox" boot "$box" >/dev/null ||
	fail "the box did not boot: $(cat "$box/boot.log" 2>/dev/null)"
[ "$(in_box readlink /proc/1/exe)" = /usr/lib/systemd/systemd ] ||
	[ "$(in_box readlink /proc/1/exe)" = /lib/systemd/systemd ] ||
	fail "PID 1 in the box is not systemd"

# Skip man-db's trigger in the box: seconds per dpkg run, for nothing.
in_box rm -f /var/lib/man-db/auto-update
say "installing $deb_daemon $deb_agent"
T=180 in_box env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	--no-install-recommends "$deb_daemon" "$deb_agent" \
	>"$tmp/apt.log" 2>&1 ||
	fail "apt-get install in the box: $(tail -20 "$tmp/apt.log")"
for pkg in indicatord indicator-agent; do
	in_box dpkg-query -W -f '${db:Status-Abbrev}' "$pkg" | grep -q '^ii' ||
		fail "$pkg is not installed in the box"
	in_box getent passwd "$pkg" >/dev/null || fail "no user $pkg in the box"
done
in_box test -d "$DROP" || fail "no $DROP after install"
[ "$(in_box stat -c %a "$DROP")" = 2770 ] || fail "$DROP is not mode 2770"

# Test drop-ins, in the box's /run: a short watchdog, and no core dump
# handed to this machine's handler when it fires.
wdsig=""
case $(cat /proc/sys/kernel/core_pattern) in
"|"*) wdsig="WatchdogSignal=SIGKILL" ;;
esac
in_box sh -c "mkdir -p /run/systemd/system/indicatord.service.d &&
	printf '[Service]\nWatchdogSec=5\n$wdsig\n' \
	>/run/systemd/system/indicatord.service.d/50-test.conf &&
	systemctl daemon-reload"

# No checkpoint but those asked for (indicatorctl, reload, stop), so that
# acknowledged reports wait in the log for the kill -9 below.
in_box sh -c "printf '[daemon]\ncheckpoint_idle_ms = 0\ncheckpoint_ms = 3600000\n' >>$CONF"

say "systemctl enable --now indicatord"
in_box systemctl enable --now indicatord >"$tmp/out" 2>&1 ||
	fail "enable --now indicatord: $(cat "$tmp/out")"
[ "$(prop indicatord ActiveState)" = active ] || fail "indicatord not active"
[ "$(prop indicatord Type)" = notify ] || fail "indicatord is not Type=notify"
# Type=notify: the start job ends only on READY=1; STATUS= follows it.
in_box journalctl -u indicatord --no-pager -o cat |
	grep -q 'indicatord: ready: ' || fail "no ready line in the journal"
wait_for 10 "STATUS= line" sh -c \
	"systemctl show -P StatusText indicatord | grep -q '^accepted 0, '"
pid1=$(prop indicatord MainPID)
ctl status >"$tmp/status" 2>&1 || fail "indicatorctl status: $(cat "$tmp/status")"
grep -q '^reports accepted  *0$' "$tmp/status" ||
	fail "indicatorctl status: $(cat "$tmp/status")"

say "the agent: configured, enabled, delivering a dropped file"
# One observation a report, two in flight: a file of a few hundred rows
# streams long enough for the kill -9 below to land in the middle.
in_box sed -i -e 's/^id =.*/id = kunshan-01/' \
	-e 's/^district =.*/district = 320583/' \
	-e 's|^endpoint =.*|endpoint = tcp://127.0.0.1:7401|' \
	-e 's/^report_size =.*/report_size = 1/' \
	-e 's/^window =.*/window = 2/' "$ACONF"
in_box systemctl enable --now indicator-agent >"$tmp/out" 2>&1 ||
	fail "enable --now indicator-agent: $(cat "$tmp/out")"
wait_for 10 "indicator-agent active" systemctl is-active -q indicator-agent
drop a.csv "photonics,output_value,2024,12.5,CNY_100M"
wait_for 30 "a.csv taken into drop/done" test -f "$DROP/done/a.csv"
in_box test ! -e "$DROP/a.csv" || fail "a.csv still in the drop directory"
wait_for 30 "a.csv's value stored" sh -c "indicatorctl -c $CONF query \
	--district 320583 --json | grep -q '\"value\":12.5,'"

say "the dashboard: enabled, serving the stored value under its sandbox"
# libzmq aborts under a system call or address family filter it trips on:
# the unit must stay active and answer.
in_box systemctl enable --now indicator-web >"$tmp/out" 2>&1 ||
	fail "enable --now indicator-web: $(cat "$tmp/out")"
wait_for 20 "the dashboard serving a.csv's value" sh -c "python3 -c \
	'import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:7480/api/matrix?period=2024\").read().decode())' |
	grep -q '\"values\":\[null,null,null,null,null,null,null,null,12.5,null\]'"
in_box systemctl is-active -q indicator-web ||
	fail "indicator-web not active: $(in_box journalctl -u indicator-web --no-pager -o cat | tail -20)"

for u in indicatord indicator-agent indicator-web; do
	in_box systemd-analyze security "$u" >"$tmp/security" 2>&1 ||
		fail "systemd-analyze security $u: $(cat "$tmp/security")"
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
		"$tmp/security")
	[ -n "$score" ] || fail "no exposure level: $(cat "$tmp/security")"
	awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' ||
		fail "$u exposure $score, above 1.5: $(grep '✗' "$tmp/security")"
	say "systemd-analyze security $u (online): $score"
done

say "systemctl reload with a changed target"
in_box cp "$CONF" /root/indicatord.conf.good
in_box sh -c "printf '[target]\noutput_value/*/city/2030 = 6000\n' >>$CONF"
in_box systemctl reload indicatord >"$tmp/out" 2>&1 ||
	fail "systemctl reload (good file): $(cat "$tmp/out")"
in_box cp "$CONF" /root/indicatord.conf.6000
# The daemon's registry changed: a new report's city aggregate carries the
# new target, and progress shows it.
drop b.csv "photonics,output_value,2024,20,CNY_100M"
wait_for 30 "b.csv taken" test -f "$DROP/done/b.csv"
wait_for 30 "the aggregate with the new target" sh -c "indicatorctl -c $CONF \
	aggregates --prefix 'agg/output_value/*/city/2024' --json |
	grep -Eq '\"value\":20,.*\"target\":\"?6000\"?,'"
ctl progress --json | grep '"metric":"output_value"' |
	grep -Eq '"target":"?6000"?,' || fail "progress: $(ctl progress --json)"

say "systemctl reload with a broken file"
in_box sh -c "printf '[daemon\nthis is not ini\n' >>$CONF"
if in_box systemctl reload indicatord >"$tmp/out" 2>&1; then
	fail "systemctl reload exited 0 for a broken file"
fi
[ "$(prop indicatord ActiveState)" = active ] ||
	fail "indicatord not active after a refused reload"
[ "$(prop indicatord MainPID)" = "$pid1" ] ||
	fail "indicatord restarted on a refused reload"
in_box journalctl -u indicatord --no-pager -o cat >"$tmp/journal"
grep -q 'indicatord: reload refused, old configuration kept: .*syntax error' \
	"$tmp/journal" || fail "no refusal in the journal: $(tail "$tmp/journal")"
grep -q 'indicatorctl: reload refused, the daemon keeps its configuration' \
	"$tmp/journal" || fail "ExecReload= did not say why: $(tail "$tmp/journal")"
# The old configuration (target 6000) serves on.
drop c.csv "photonics,output_value,2024,21,CNY_100M"
wait_for 30 "c.csv taken" test -f "$DROP/done/c.csv"
wait_for 30 "c.csv stored under the old configuration" sh -c "indicatorctl \
	-c /root/indicatord.conf.6000 aggregates \
	--prefix 'agg/output_value/*/city/2024' --json |
	grep -Eq '\"value\":21,.*\"target\":\"?6000\"?,'"
in_box cp /root/indicatord.conf.6000 "$CONF"
in_box systemctl reload indicatord >"$tmp/out" 2>&1 ||
	fail "systemctl reload (mended file): $(cat "$tmp/out")"

say "kill -9 of the daemon: acknowledged reports not yet checkpointed"
# Monthly figures for 2015-2024: d1.csv 2015-2019, d2.csv 2020-2024, 480
# observations (and reports) each.
rows() {
	for y in $(seq "$1" "$2"); do
		for m in 01 02 03 04 05 06 07 08 09 10 11 12; do
			for i in materials photonics metaverse hydrogen digifin \
				cellgene aerospace quantum; do
				echo "$i,output_value,$y-$m,${m#0}.25,CNY_100M"
			done
		done
	done
}
# (The status's 64-bit counters are JSON strings.)
accepted() {
	ctl status --json | sed -n 's/.*"accepted":"\{0,1\}\([0-9]*\).*/\1/p'
}
monthly() {
	ctl query --json | grep -c '"period":"20[12][0-9]-' || true
}
a0=$(accepted)
# shellcheck disable=SC2046
drop d1.csv $(rows 2015 2019)
# Every report of d1.csv acknowledged (status asks no checkpoint, and with
# checkpoint_idle_ms = 0 none is made: they are in the log only).
wait_for 60 "d1.csv's 480 reports accepted" sh -c \
	"indicatorctl -c $CONF status --json |
	grep -Eq '\"accepted\":\"?$((a0 + 480))\"?,'"
# Then a second file, killed in the middle of it (or just after): stored
# whole once the agent has resent what was not acknowledged.
restarts=$(prop indicatord NRestarts)
# shellcheck disable=SC2046
drop d2.csv $(rows 2020 2024)
# Taken: in sending/ while its parts are staged, in done/ once stored
# whole (file transactions).
wait_for 30 "d2.csv taken" sh -c \
	"test -f $DROP/sending/d2.csv || test -f $DROP/done/d2.csv"
in_box kill -9 "$pid1"
wait_for 30 "indicatord restarted after kill -9" sh -c \
	"[ \"\$(systemctl show -P MainPID indicatord)\" != $pid1 ] &&
	[ \"\$(systemctl show -P MainPID indicatord)\" != 0 ] &&
	systemctl is-active -q indicatord"
pid2=$(prop indicatord MainPID)
[ "$(prop indicatord NRestarts)" -gt "$restarts" ] ||
	fail "NRestarts did not grow after kill -9"
replayed=$(in_box journalctl -u indicatord --no-pager -o cat |
	sed -n 's/.*ledger: replayed \([0-9]*\) logged observations.*/\1/p' |
	tail -1)
[ -n "$replayed" ] && [ "$replayed" -ge 480 ] ||
	fail "the restart replayed ${replayed:-no} logged observations, not >= 480"
say "restarted; replayed $replayed acknowledged observations from the log"
# The agent resends what was not acknowledged; each key is stored once.
wait_for 60 "all 960 observations of d1.csv and d2.csv stored" sh -c \
	"[ \$(indicatorctl -c $CONF query --json |
	grep -c '\"period\":\"20[12][0-9]-') -eq 960 ]"
ctl verify >"$tmp/out" 2>&1 || fail "verify after kill -9: $(cat "$tmp/out")"

say "SIGSTOP: the watchdog kills and systemd restarts"
restarts=$(prop indicatord NRestarts)
in_box kill -STOP "$pid2"
wait_for 40 "indicatord restarted by the watchdog" sh -c \
	"[ \"\$(systemctl show -P MainPID indicatord)\" != $pid2 ] &&
	[ \"\$(systemctl show -P MainPID indicatord)\" != 0 ] &&
	systemctl is-active -q indicatord"
[ "$(prop indicatord NRestarts)" -gt "$restarts" ] ||
	fail "NRestarts did not grow after the watchdog"
in_box journalctl -u indicatord --no-pager -o cat |
	grep -q 'Watchdog timeout' || fail "no watchdog timeout in the journal"
ctl status >/dev/null 2>&1 || fail "indicatorctl status after the watchdog"

say "stop"
in_box systemctl stop indicatord >"$tmp/out" 2>&1 ||
	fail "systemctl stop: $(cat "$tmp/out")"
[ "$(prop indicatord ActiveState)" = inactive ] || fail "not inactive after stop"
[ "$(prop indicatord ExecMainStatus)" = 0 ] ||
	fail "indicatord exited $(prop indicatord ExecMainStatus) on stop"
in_box journalctl -u indicatord --no-pager -o cat | grep -q 'indicatord: stopping: ' ||
	fail "no stopping line in the journal"

say "reinstall while running (the upgrade path)"
in_box systemctl start indicatord || fail "systemctl start after stop"
pid3=$(prop indicatord MainPID)
before=$(nobs)
T=180 in_box env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	--reinstall "$deb_daemon" >"$tmp/apt.log" 2>&1 ||
	fail "apt-get install --reinstall: $(tail -20 "$tmp/apt.log")"
wait_for 30 "indicatord restarted by the postinst" sh -c \
	"[ \"\$(systemctl show -P MainPID indicatord)\" != $pid3 ] &&
	systemctl is-active -q indicatord"
in_box grep -q '^output_value/\*/city/2030 = 6000$' "$CONF" ||
	fail "the reinstall replaced the edited conffile"
[ "$(nobs)" = "$before" ] || fail "the store lost observations on reinstall"

say "journald priorities"
jwarn=$(in_box journalctl _SYSTEMD_UNIT=indicatord.service \
	SYSLOG_IDENTIFIER=indicatord -p warning --no-pager -o cat || true)
printf '%s\n' "$jwarn" | grep -q 'reload refused' ||
	fail "journalctl -u indicatord -p warning does not show 'reload refused'"
say "journalctl -u indicatord -p warning shows the refused reload"

say "keys and drop-ins, then purge"
in_box indicatorctl keygen /etc/indicatord/server >/dev/null ||
	fail "indicatorctl keygen"
in_box indicatorctl keygen /etc/indicator-agent/kunshan-01 >/dev/null ||
	fail "indicatorctl keygen (agent)"
ctl authorise /etc/indicator-agent/kunshan-01.pub kunshan-01 320583 \
	--file /etc/indicatord/authorised_agents >/dev/null ||
	fail "indicatorctl authorise"
in_box sh -c 'mkdir -p /etc/indicatord/conf.d &&
	echo "[daemon]" >/etc/indicatord/conf.d/10-site.conf'
in_box test -f /etc/indicatord/server.key || fail "no server.key"
T=180 in_box env DEBIAN_FRONTEND=noninteractive apt-get purge -y \
	indicatord indicator-agent >"$tmp/apt.log" 2>&1 ||
	fail "apt-get purge: $(tail -20 "$tmp/apt.log")"
for p in /etc/indicatord /etc/indicator-agent \
	/lib/systemd/system/indicatord.service; do
	in_box test ! -e "$p" || fail "$p is still there after purge: $(in_box ls -la "$p")"
done
in_box test -f /var/lib/indicatord/data.mdb ||
	fail "purge removed the store"
in_box test -f /var/lib/indicator-agent/outbox/data.mdb ||
	fail "purge removed the outbox"
[ "$(in_box systemctl is-active indicatord indicator-agent || true)" = \
	"$(printf 'inactive\ninactive')" ] || fail "services still running after purge"

say "stopping the box"
bash "$sdbox" stop "$box" || fail "sdbox.sh stop"
host_state >"$tmp/host.after"
cmp -s "$tmp/host.before" "$tmp/host.after" ||
	fail "this machine's state changed: $(diff "$tmp/host.before" "$tmp/host.after")"
say "ok: this machine's dpkg database, users, /etc and /var/lib untouched"
