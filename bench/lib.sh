# bench/lib.sh: what run.sh and ab.sh share, sourced by both: a free
# loopback port, starting indicatord on a fresh configuration and stopping
# it, and reading its memory and CPU time from /proc. Uses the caller's
# root (the checkout), daemon_bin, daemon_conf (lines for the [daemon]
# section, may be empty), tmp (where keys/ is, for CURVE) and say().
# shellcheck shell=bash disable=SC2154

# A loopback port nobody listens on; the server's bind is the real check.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# kill -0 succeeds on a zombie too: read the state from /proc.
alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# start_daemon DIR TRANSPORT: config = conf/indicatord.conf + a [daemon]
# section with fresh endpoints and data_dir (and the CURVE keys); waits
# until the ingest port accepts. A port taken meanwhile by another program
# (the machine may be shared): tries again with other ports.
start_daemon() {
	local dir=$1 transport=$2 port
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		ingest="tcp://127.0.0.1:$port"
		{
			cat "$root/conf/indicatord.conf"
			printf '\n[daemon]\ningest = %s\n' "$ingest"
			printf 'publish = tcp://127.0.0.1:%s\n' "$(free_port)"
			printf 'snapshot = tcp://127.0.0.1:%s\n' "$(free_port)"
			printf 'data_dir = %s/data\n' "$dir"
			if [ -n "$daemon_conf" ]; then
				printf '%b\n' "$daemon_conf"
			fi
			if [ "$transport" = curve ]; then
				printf 'curve = true\nsecret_key_file = %s\n' \
					"$tmp/keys/server.key"
				printf 'authorised_agents = %s\n' \
					"$tmp/keys/authorised_agents"
			fi
		} >"$dir/indicatord.conf"
		"$daemon_bin" -c "$dir/indicatord.conf" 2>"$dir/indicatord.log" &
		daemon_pid=$!
		for _ in $(seq 400); do
			if ! alive "$daemon_pid"; then
				break
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				# Another program may hold the port: then our
				# daemon has failed to bind and is exiting.
				sleep 0.2
				if alive "$daemon_pid"; then
					return 0
				fi
				break
			fi
			sleep 0.05
		done
		# Our child, not yet reaped: its pid cannot be anyone else's.
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
		daemon_pid=
		grep -q "Address already in use" "$dir/indicatord.log" || break
		say "a port was taken; starting indicatord again"
	done
	say "indicatord did not start; its log:"
	cat "$dir/indicatord.log" >&2
	exit 1
}

# A field of /proc/PID/status in KiB.
proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# utime+stime in clock ticks: fields 14 and 15, counted after the ")" that
# closes comm.
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || say "indicatord exited with $?"
	daemon_pid=
}
