#!/bin/bash
# sdbox.sh: a real systemd as PID 1 of a box of its own, to test the units
# and the Debian packages as an operator runs them, without touching this
# machine's installed state.
#
#   sdbox.sh boot DIR        boots a box kept in DIR (a new, empty directory
#                            of the caller's); prints the host PID of the
#                            box's systemd once it is up (running or
#                            degraded), or fails after killing what it started
#   sdbox.sh exec DIR CMD... runs CMD inside the box; its exit status
#   sdbox.sh stop DIR        kills the box's PID 1 (SIGKILL, by its PID, after
#                            checking it is this box's), waits for the box to
#                            end and removes the cgroups it made
#
# What the box is:
#   - private PID, mount, network, UTS, IPC and cgroup namespaces (unshare):
#     its daemons see only each other, bind the default ports on a loopback
#     of their own, and cannot signal a process of this machine;
#   - its own root: an overlayfs whose lower layer is this machine's / (read
#     only) and whose upper layer is a tmpfs that exists only in the box's
#     mount namespace. apt and dpkg in the box write the overlay; this
#     machine's /etc, /var/lib, dpkg database and /tmp are never written,
#     and everything the box wrote is gone when it ends;
#   - fresh /proc, a read-only /sys, cgroup hierarchies rooted at a cgroup
#     made for the box (so its systemd manages its own tree only), a minimal
#     /dev (null, zero, full, random, urandom, tty, its own pts, shm and
#     mqueue: no disk, no console), fresh tmpfs on /run, /tmp, /var/tmp and
#     /var/log/journal;
#   - DIR/share bind-mounted at /sdbox: files handed in and out;
#   - units that would act on the kernel or the hardware for nothing the
#     tests need (sysctl, binfmt, modules, clock, fstrim, gettys) or start
#     services of this machine's (PostgreSQL, cron, apt timers) are masked in
#     the box's /run/systemd/system.
# A box lives at most SDBOX_LIFETIME seconds (default 600): a reaper started
# at boot kills it then, should its caller die without calling stop.
#
# Needs root, bash, unshare and nsenter (util-linux), overlayfs and systemd.
set -eu

SYSTEMD=/lib/systemd/systemd
LIFETIME=${SDBOX_LIFETIME:-600}
BOOT_S=${SDBOX_BOOT_S:-90}

MASK="postgresql.service postgresql@.service redis-server.service
redis-server@.service cron.service anacron.service anacron.timer
getty@.service serial-getty@.service console-getty.service
getty-static.service getty.target apt-daily.timer apt-daily-upgrade.timer
apt-daily.service apt-daily-upgrade.service man-db.timer man-db.service
dpkg-db-backup.timer dpkg-db-backup.service e2scrub_all.timer
e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service
logrotate.timer systemd-tmpfiles-clean.timer systemd-timesyncd.service
systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.mount
proc-sys-fs-binfmt_misc.automount systemd-modules-load.service
kmod-static-nodes.service systemd-pstore.service systemd-firstboot.service
systemd-repart.service systemd-remount-fs.service systemd-fsck-root.service
hwclock.service systemd-hwdb-update.service systemd-udevd.service
systemd-udev-trigger.service systemd-udev-settle.service
systemd-random-seed.service swap.target remote-fs.target
sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount
ssh.service avahi-daemon.service avahi-daemon.socket"

die() {
	echo "sdbox: $*" >&2
	exit 1
}

# A cgroup hierarchy of this machine: "DIR OPTIONS" per line (OPTIONS as
# mount -o wants them; cgroup2 has none), from /proc/self/mounts.
hierarchies() {
	awk '$3 == "cgroup" || $3 == "cgroup2" {
		n = split($4, o, ","); opts = ""
		for (i = 1; i <= n; i++)
			if (o[i] != "rw" && o[i] != "relatime" && o[i] != "ro")
				opts = opts (opts == "" ? "" : ",") o[i]
		if ($3 == "cgroup" && opts ~ /^name=/)
			opts = "none," opts
		print $2, $3, (opts == "" ? "-" : opts)
	}' /proc/self/mounts
}

# This process's cgroup in the hierarchy mounted at $1.
cgroup_of() {
	mnt=$1
	type=$2
	opts=$3
	while IFS=: read -r _ ctrls path; do
		if [ "$type" = cgroup2 ]; then
			[ -z "$ctrls" ] && echo "$path" && return
		else
			case ",$opts," in
			*",$ctrls,"* | *",name=$ctrls,"*) echo "$path" && return ;;
			esac
			[ "$ctrls" = "name=${opts#none,name=}" ] && echo "$path" && return
		fi
	done </proc/self/cgroup
	echo /
}

# Makes a cgroup NAME for the box under this process's own in every
# hierarchy, moves process PID into it, and records the paths in
# DIR/cgroups.
cgroups_enter() {
	dir=$1
	name=$2
	pid=$3
	: >"$dir/cgroups"
	hierarchies | while read -r mnt type opts; do
		cg="$mnt$(cgroup_of "$mnt" "$type" "$opts")"
		cg="${cg%/}/$name"
		mkdir "$cg" || continue
		echo "$cg" >>"$dir/cgroups"
		# A cpuset cgroup takes no task until it has CPUs and nodes.
		for f in cpuset.cpus cpuset.mems; do
			[ -f "$cg/$f" ] && cat "$cg/../$f" >"$cg/$f"
		done
		echo "$pid" >"$cg/cgroup.procs" || die "cannot enter $cg"
	done
}

# Removes the box's cgroups, deepest first, once their processes are gone.
cgroups_remove() {
	dir=$1
	[ -f "$dir/cgroups" ] || return 0
	while read -r cg; do
		[ -d "$cg" ] || continue
		for _ in $(seq 50); do
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null &&
				break
			sleep 0.1
		done
		[ -d "$cg" ] && echo "sdbox: could not remove $cg" >&2
	done <"$dir/cgroups"
	rm -f "$dir/cgroups"
}

# The box's PID 1 as this machine sees it, after checking that it is still
# the systemd this DIR booted (the same PID namespace): empty otherwise.
box_pid() {
	dir=$1
	[ -f "$dir/pid" ] || return 0
	read -r pid ns <"$dir/pid"
	[ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" = "$ns" ] || return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
		grep -q "^$SYSTEMD " || return 0
	echo "$pid"
}

box_exec() {
	pid=$1
	shift
	nsenter -t "$pid" -m -p -n -u -i -C "$@"
}

# Inside the new namespaces, as their PID 1, still on this machine's root:
# builds the box's root, moves into it and becomes systemd.
init() {
	dir=$1
	root=$dir/root
	# Nothing mounted here may leak back, whatever the caller's defaults.
	mount --make-rprivate /
	mount -t tmpfs -o mode=0755,size=2g sdbox-layer "$dir/layer"
	mkdir "$dir/layer/upper" "$dir/layer/work"
	mount -t overlay sdbox-root -o \
		"lowerdir=/,upperdir=$dir/layer/upper,workdir=$dir/layer/work" \
		"$root"
	mount -t proc proc "$root/proc"
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
	mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup \
		"$root/sys/fs/cgroup"
	# In the new cgroup namespace these are rooted at the box's cgroups.
	hierarchies | while read -r mnt type opts; do
		case $mnt in /sys/fs/cgroup/*) ;; *) continue ;; esac
		mkdir -p "$root$mnt"
		if [ "$opts" = - ]; then
			mount -t "$type" "$type" "$root$mnt"
		else
			mount -t "$type" -o "$opts" "$type" "$root$mnt"
		fi
	done
	mount -o remount,ro,nosuid,nodev,noexec "$root/sys/fs/cgroup"

	mount -t tmpfs -o mode=0755,nosuid,size=64m sdbox-dev "$root/dev"
	for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		num=${n#*:}
		mknod -m 0666 "$root/dev/${n%%:*}" c "${num%:*}" "${num#*:}"
	done
	mkdir "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts \
		"$root/dev/pts"
	ln -s pts/ptmx "$root/dev/ptmx"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-shm "$root/dev/shm"
	mount -t mqueue mqueue "$root/dev/mqueue"
	ln -s /proc/self/fd "$root/dev/fd"
	ln -s /proc/self/fd/0 "$root/dev/stdin"
	ln -s /proc/self/fd/1 "$root/dev/stdout"
	ln -s /proc/self/fd/2 "$root/dev/stderr"

	mount -t tmpfs -o mode=0755,nosuid,nodev sdbox-run "$root/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-tmp "$root/tmp"
	mount -t tmpfs -o mode=1777,nosuid,nodev sdbox-vartmp "$root/var/tmp"
	mkdir -p "$root/var/log/journal"
	mount -t tmpfs -o mode=2755,nosuid,nodev sdbox-journal \
		"$root/var/log/journal"
	mkdir -p "$root/sdbox"
	mount --bind "$dir/share" "$root/sdbox"

	mkdir -p "$root/run/systemd/system"
	for u in $MASK; do
		ln -s /dev/null "$root/run/systemd/system/$u"
	done
	for v in /etc/postgresql/*/*; do
		[ -d "$v" ] || continue
		ln -sf /dev/null "$root/run/systemd/system/postgresql@$(basename \
			"$(dirname "$v")")-$(basename "$v").service"
	done

	cd "$root"
	mkdir -p .sdbox-old
	pivot_root . .sdbox-old
	cd /
	umount -l /.sdbox-old
	rmdir /.sdbox-old
	# container= tells systemd it is not on hardware (no udev, no
	# console, no kernel command line of this machine's).
	exec env -i container=sdbox PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		"$SYSTEMD" --system --log-level=info
}

boot() {
	dir=$1
	[ "$(id -u)" -eq 0 ] || die "needs root"
	[ -d "$dir" ] || die "$dir: no such directory"
	[ ! -e "$dir/pid" ] || die "$dir already holds a box"
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
		die "no overlayfs"
	mkdir -p "$dir/root" "$dir/layer" "$dir/share"
	chmod 0755 "$dir"
	name="sdbox-$$-$(date +%s)"
	self=$(readlink -f "$0")

	# The box's cgroups are entered by a subshell that then becomes
	# unshare; --kill-child: if unshare dies, so does the box's PID 1.
	(
		cgroups_enter "$dir" "$name" "$BASHPID"
		exec setsid unshare --pid --fork --kill-child --mount --net \
			--uts --ipc --cgroup --propagation private \
			bash "$self" __init "$dir"
	) </dev/null >"$dir/boot.log" 2>&1 &
	upid=$!
	pid=""
	deadline=$(($(date +%s) + 10))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		for c in $(cat "/proc/$upid/task/$upid/children" 2>/dev/null); do
			if tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null |
				grep -q "^$SYSTEMD "; then
				pid=$c
			fi
		done
		[ -n "$pid" ] && break
		kill -0 "$upid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$pid" ]; then
		kill -KILL "$upid" 2>/dev/null || true
		wait "$upid" 2>/dev/null || true
		cgroups_remove "$dir"
		die "no systemd started: $(cat "$dir/boot.log")"
	fi
	echo "$pid $(readlink "/proc/$pid/ns/pid")" >"$dir/pid"

	# The reaper: outlives this script, not the box (stop ends it).
	setsid bash "$self" __reap "$dir" "$LIFETIME" </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/reaper"

	state=""
	deadline=$(($(date +%s) + BOOT_S))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		state=$(box_exec "$pid" systemctl is-system-running 2>/dev/null) ||
			true
		case $state in running | degraded) break ;; esac
		sleep 0.2
	done
	case $state in
	running | degraded) ;;
	*)
		box_exec "$pid" systemctl --no-pager list-jobs >&2 || true
		stop "$dir"
		die "the box's systemd did not finish booting in ${BOOT_S} s ($state)"
		;;
	esac
	echo "sdbox: PID $pid, $state, in $dir" >&2
	echo "$pid"
}

stop() {
	dir=$1
	pid=$(box_pid "$dir")
	if [ -n "$pid" ]; then
		kill -KILL "$pid"
		for _ in $(seq 100); do
			[ -e "/proc/$pid" ] || break
			sleep 0.1
		done
		[ -e "/proc/$pid" ] && die "PID $pid still there after SIGKILL"
	fi
	cgroups_remove "$dir"
	rm -f "$dir/pid"
	# The reaper, a session of its own (its sleep included), unless this
	# is the reaper.
	if [ -f "$dir/reaper" ]; then
		read -r rpid <"$dir/reaper"
		rm -f "$dir/reaper"
		if [ "$rpid" != "$BASHPID" ] && tr '\0' ' ' <"/proc/$rpid/cmdline" \
			2>/dev/null | grep -q "__reap $dir "; then
			kill -TERM -- "-$rpid" 2>/dev/null || true
		fi
	fi
}

case ${1:-} in
boot)
	boot "${2:?DIR}"
	;;
exec)
	dir=${2:?DIR}
	shift 2
	pid=$(box_pid "$dir")
	[ -n "$pid" ] || die "no box running in $dir"
	box_exec "$pid" "$@"
	;;
stop)
	stop "${2:?DIR}"
	;;
__init)
	init "$2"
	;;
__reap)
	sleep "$3"
	[ -n "$(box_pid "$2")" ] && echo "sdbox: $2 outlived ${3} s" >&2
	stop "$2"
	;;
*)
	echo "usage: sdbox.sh boot DIR | exec DIR CMD... | stop DIR" >&2
	exit 2
	;;
esac
