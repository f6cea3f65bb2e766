#!/usr/bin/env bash
# bench/run.sh: builds indicatord and indicator-loadgen (RelWithDebInfo) if
# needed, then for each scenario and each run starts a fresh indicatord on
# free loopback ports in a temporary directory, drives it with the load
# generator, reads the daemon's peak RSS and CPU time from /proc before
# stopping it, and prints a table: the run with the median reports/s, and
# the min-max of reports/s over the runs.
#
# Not a test (ctest never runs it). Environment:
#   BENCH_BUILD  build directory (default: build-bench in the source tree)
#   BENCH_RUNS   runs per scenario (default 3)
#   BENCH_ONLY   run only the scenarios whose name contains this text
#   BENCH_PERF   a directory: `perf record` the daemon during the first run
#                and write its reports there (children.txt: inclusive
#                cost by function; flat.txt: self cost by library)
#   BENCH_KEEP   1: keep the temporary directory (logs, raw lines)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
runs=${BENCH_RUNS:-3}
only=${BENCH_ONLY:-}
perf_dir=${BENCH_PERF:-}
keep=${BENCH_KEEP:-0}

# name | loadgen arguments (OUTBOX is replaced by a fresh directory).
# 20,000 reports of 8 observations each (10,000 at 1k/s), so that a run
# takes seconds at the daemon's present ~2k reports/s.
scenarios=(
	"10x100 daemon alone|--agents 10 --reports 2000 --window 100 --obs 8 --no-outbox"
	"10x100 with outboxes|--agents 10 --reports 2000 --window 100 --obs 8 --outbox-dir OUTBOX"
	"100x20 daemon alone|--agents 100 --reports 200 --window 20 --obs 8 --no-outbox"
	"100x20 with outboxes|--agents 100 --reports 200 --window 20 --obs 8 --outbox-dir OUTBOX"
	"steady 10k/s, 10x100|--agents 10 --reports 2000 --window 100 --obs 8 --no-outbox --rate 10000"
	"steady 1k/s, 10x100|--agents 10 --reports 1000 --window 100 --obs 8 --no-outbox --rate 1000"
)

say() { echo "bench: $*" >&2; }

mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$build" --target indicatord indicator-loadgen \
		-j "$(nproc)"; } >"$build/bench-build.log" 2>&1; then
	say "build failed; see $build/bench-build.log"
	tail -20 "$build/bench-build.log" >&2
	exit 1
fi
daemon_bin=$build/indicatord
loadgen_bin=$build/bench/indicator-loadgen

tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-bench-XXXXXX")
daemon_pid=
cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	if [ "$keep" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# A loopback port nobody listens on; the daemon's bind is the real check.
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
daemon_alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$daemon_pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# start_daemon DIR: config = conf/indicatord.conf + a [daemon] section with
# fresh endpoints and data_dir; waits until the ingest port accepts.
start_daemon() {
	local dir=$1 i port
	port=$(free_port)
	ingest="tcp://127.0.0.1:$port"
	{
		cat "$root/conf/indicatord.conf"
		printf '\n[daemon]\ningest = %s\npublish = tcp://127.0.0.1:%s\n' \
			"$ingest" "$(free_port)"
		printf 'snapshot = tcp://127.0.0.1:%s\ndata_dir = %s/data\n' \
			"$(free_port)" "$dir"
	} >"$dir/indicatord.conf"
	"$daemon_bin" -c "$dir/indicatord.conf" 2>"$dir/indicatord.log" &
	daemon_pid=$!
	for i in $(seq 200); do
		if ! daemon_alive; then
			break
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			# Another program may have taken the port meanwhile: then
			# our daemon has failed to bind and is exiting.
			sleep 0.2
			if daemon_alive; then
				return 0
			fi
			break
		fi
		sleep 0.05
	done
	say "indicatord did not start; its log:"
	cat "$dir/indicatord.log" >&2
	exit 1
}

# The daemon's VmHWM in KiB and its utime+stime in clock ticks.
daemon_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$daemon_pid/status"; }
daemon_cpu_ticks() {
	# Fields after the ")" that closes comm: utime is 14th, stime 15th.
	sed 's/^.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }'
}

stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || say "indicatord exited with $?"
	daemon_pid=
}

# run_one NAME ARGS RUN: one fresh daemon, one loadgen run; appends a line
# of key=value fields to $tmp/results.
run_one() {
	local name=$1 args=$2 run=$3 dir line rc hwm ticks perf_pid=
	dir=$(mktemp -d "$tmp/run-XXXXXX")
	args=${args//OUTBOX/$dir/outbox}
	start_daemon "$dir"
	if [ -n "$perf_dir" ] && [ ! -e "$perf_dir/perf.data" ]; then
		mkdir -p "$perf_dir"
		# DWARF unwinding: the RelWithDebInfo build has no frame
		# pointers, and -g alone loses the callers.
		perf record --call-graph dwarf,16384 -F 499 \
			-o "$perf_dir/perf.data" -p "$daemon_pid" \
			2>"$perf_dir/perf-record.log" &
		perf_pid=$!
		sleep 0.5
	fi
	rc=0
	# shellcheck disable=SC2086
	line=$("$loadgen_bin" --endpoint "$ingest" $args 2>"$dir/loadgen.log") ||
		rc=$?
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		# Inclusive (children) costs by function, and flat self costs.
		perf report -i "$perf_dir/perf.data" --stdio --children \
			--sort symbol -g none --percent-limit 1 \
			>"$perf_dir/children.txt" 2>/dev/null || true
		perf report -i "$perf_dir/perf.data" --stdio --no-children \
			--sort dso,symbol -g none --percent-limit 0.5 \
			>"$perf_dir/flat.txt" 2>/dev/null || true
		say "perf profile of \"$name\" in $perf_dir"
	fi
	hwm=$(daemon_hwm_kib)
	ticks=$(daemon_cpu_ticks)
	stop_daemon
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		say "$name run $run: loadgen failed ($rc); its log:"
		tail -20 "$dir/loadgen.log" >&2
		line="loadgen failed=1"
		failed=1
	fi
	say "$name run $run: $line"
	printf 'scenario=%s run=%s %s daemon_hwm_kib=%s daemon_ticks=%s\n' \
		"${name// /_}" "$run" "$line" "$hwm" "$ticks" >>"$tmp/results"
	[ "$keep" = 1 ] || rm -rf "$dir/data" "$dir/outbox"
}

failed=0
: >"$tmp/results"
for s in "${scenarios[@]}"; do
	name=${s%%|*}
	args=${s#*|}
	case "$name" in *"$only"*) ;; *) continue ;; esac
	for run in $(seq "$runs"); do
		run_one "$name" "$args" "$run"
	done
done

echo "indicatord bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
	"$runs runs per scenario (the median run by reports/s is shown)"
awk -v tck="$(getconf CLK_TCK)" '
function kv(key,   i, n, f) {
	for (i = 1; i <= NF; i++) {
		n = index($i, "=")
		if (n > 0 && substr($i, 1, n - 1) == key)
			return substr($i, n + 1)
	}
	return ""
}
{
	s = kv("scenario"); gsub(/_/, " ", s)
	if (!(s in count)) order[++ns] = s
	k = ++count[s]
	rps[s, k] = kv("reports/s") + 0
	row[s, k] = sprintf("| %s | %s | %s | %s / %s / %s | %.1f | %.1f | %.1f | %s |",
	    s, kv("reports/s"), kv("obs/s"), kv("p50"), kv("p99"), kv("max"),
	    kv("daemon_hwm_kib") / 1024,
	    kv("reports") > 0 ? kv("daemon_ticks") / tck * 1e6 / kv("reports") : 0,
	    kv("agent_rss_mib"),
	    kv("failed") == 1 ? "FAILED" : kv("accepted") "/" kv("rejected") "/" kv("retry"))
}
END {
	print "| scenario | reports/s | obs/s | ack ms p50 / p99 / max | daemon peak RSS MiB | daemon CPU us/report | loadgen RSS/agent MiB | accepted/rejected/retry |"
	print "|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= ns; i++) {
		s = order[i]; n = count[s]
		# sort the runs by reports/s (insertion sort; n is small)
		for (a = 1; a <= n; a++) idx[a] = a
		for (a = 2; a <= n; a++)
			for (b = a; b > 1 && rps[s, idx[b]] < rps[s, idx[b - 1]]; b--) {
				t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t
			}
		med = idx[int((n + 1) / 2)]
		line = row[s, med]
		if (n > 1)
			sub(/\| [0-9.]+ \|/, sprintf("| %s (%s-%s) |", rps[s, med],
			    rps[s, idx[1]], rps[s, idx[n]]), line)
		print line
	}
}' "$tmp/results"
exit "$failed"
