#!/usr/bin/env bash
# bench/run.sh: one command that measures, in the same run on the same
# machine, the limit of the machine and indicatord against it (issues 7
# and 14):
#
#  1. indicator-baseline: the raw parts (ZeroMQ windowed round trip plain
#     and CURVE, protobuf-c unpack, LMDB durable batched append) and the
#     limit they compose for the workload, min(transport, unpack, LMDB);
#     indicator-pbread: reading a packed record by pbwire and by protobuf-c;
#  2. a peer: redis-server with appendonly and appendfsync always, taking
#     XADD of 460-byte payloads (the size of a packed 8-observation
#     report) from redis-benchmark, 10 clients pipelined 100 deep: Debian's
#     redis-tools and the two libraries it needs are downloaded with
#     apt-get download and extracted into ~/.cache/indicatord/redis (as
#     tools/setup.sh does for promtool: nothing is installed, no service
#     started); when that fails the row is skipped and the reason said;
#  3. the real indicator-agent flushing a backlog of 100,000 reports that
#     built up while the daemon was away: reports/s, its peak RSS and heap;
#  4. indicatord end to end under indicator-loadgen: 10 and 100 agents with
#     windows of 100, 8 observations a report, plain and CURVE; a steady
#     10k reports/s (and 2k/s); and the store grown to 10k, 100k, 1M and 10M
#     observations (BENCH_SCALE) before a 10 x 100 run;
#  5. the limit: indicator-minserver, the minimal durable server (ROUTER,
#     one LMDB append per report, group commit, fsync, then ack), under the
#     same loadgen runs as the 10 and 100 agent and steady 10k/s scenarios,
#     each run right before indicatord's (interleaved, so both see the same
#     machine).
#
# After the table it says how indicatord does against the targets of issue
# 14: throughput / the minimal server (>= 0.6), ack p99 at a steady 10k/s
# (< 5 ms), the longest ack wait next to the longest checkpoint, CPU per
# report at 10k/s against saturation (<= 1.5x), and the ratio to Redis.
#
# For each daemon run it starts a fresh indicatord on free loopback ports
# in a temporary directory, reads its peak RSS (VmHWM), anonymous memory
# (RssAnon), CPU time (of the measured loadgen run only) and `indicatorctl
# status --json` (commit_ms_avg) before stopping it. A steady-rate
# scenario first runs the same load once unmeasured with other values
# (warm_up, below), for the daemon and the minimal server alike. It prints
# one table: the run with the median
# reports/s, the min-max over the runs, and the ratios to the limit and to
# Redis. About 7 minutes on 2 vCPUs (3.5 GB of temporary disk for the 10M
# store).
#
# Not a test (ctest never runs it). Environment:
#   BENCH_QUICK  1: only what issue 14 asks (the limit, plain and CURVE at
#                10 and 100 agents, steady 10k/s, Redis): no store-size
#                rows, no agent backlog, no outbox or 2k/s rows; about 2
#                minutes with 3 runs
#   BENCH_BUILD  build directory (default: build-bench in the source tree)
#   BENCH_RUNS   runs per scenario (default 3; the store-size rows run once)
#   BENCH_ONLY   run only the scenarios whose name contains this text
#   BENCH_SCALE  store sizes in observations (default "10000 100000 1000000
#                10000000"; the 10M store takes 2-3 minutes to write and
#                3.5 GB of disk: leave it out for a quicker run)
#   BENCH_SKIP   words among "baseline redis agent": parts to leave out
#   BENCH_PERF   a directory: `perf record` the daemon during the first run
#                and write its reports there (children.txt: inclusive
#                cost by function; flat.txt: self cost by library)
#   BENCH_KEEP   1: keep the temporary directory (logs, raw lines)
#   BENCH_DAEMON_CONF  lines added to every daemon's [daemon] section, with
#                \n between them (e.g. "checkpoint_ms = 200")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
runs=${BENCH_RUNS:-3}
only=${BENCH_ONLY:-}
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	scale=${BENCH_SCALE:-}
	skip="${BENCH_SKIP:-} agent"
else
	scale=${BENCH_SCALE:-10000 100000 1000000 10000000}
	skip=${BENCH_SKIP:-}
fi
perf_dir=${BENCH_PERF:-}
keep=${BENCH_KEEP:-0}
daemon_conf=${BENCH_DAEMON_CONF:-}

# name | transport | stored observations before the run | loadgen
# arguments (OUTBOX is replaced by a fresh directory) | "limit" when the
# minimal server runs the same load too | "quick" when BENCH_QUICK keeps
# it. 60,000 reports of 8 observations each, so that a run takes a few
# seconds at the daemon's present ~20k-50k reports/s and spans several
# checkpoints.
common="--reports 6000 --window 100 --obs 8 --no-outbox"
scenarios=(
	"10 x 100, plain|plain|0|--agents 10 $common|limit|quick"
	"10 x 100, CURVE|curve|0|--agents 10 $common|limit|quick"
	"10 x 100, plain, a subscriber to all|plain|0|--agents 10 $common|limit|quick"
	"100 x 100, plain|plain|0|--agents 100 --reports 600 --window 100 --obs 8 --no-outbox|limit|quick"
	"100 x 100, CURVE|curve|0|--agents 100 --reports 600 --window 100 --obs 8 --no-outbox|limit|quick"
	"10 x 100, plain, agent outboxes|plain|0|--agents 10 --reports 6000 --window 100 --obs 8 --outbox-dir OUTBOX|-|-"
	"steady 10k/s, 10 x 100, plain|plain|0|--agents 10 $common --rate 10000|limit|quick"
	"steady 2k/s, 10 x 100, plain|plain|0|--agents 10 --reports 500 --window 100 --obs 8 --no-outbox --rate 2000|-|-"
)
for n in $scale; do
	scenarios+=("store $n obs, 10 x 100, plain|plain|$n|--agents 10 $common|-|quick")
done
nkeys=100 # agents with a CURVE key pair: the most any scenario uses

say() { echo "bench: $*" >&2; }
skipped() { case " $skip " in *" $1 "*) return 0 ;; esac; return 1; }

mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$build" --target indicatord indicatorctl indicator-agent \
		indicator-loadgen indicator-baseline indicator-minserver \
		indicator-pbread indicator-sub -j "$(nproc)"; } \
	>"$build/bench-build.log" 2>&1; then
	say "build failed; see $build/bench-build.log"
	tail -20 "$build/bench-build.log" >&2
	exit 1
fi
daemon_bin=$build/indicatord
ctl_bin=$build/indicatorctl
loadgen_bin=$build/bench/indicator-loadgen
agent_bin=$build/indicator-agent
baseline_bin=$build/bench/indicator-baseline
min_bin=$build/bench/indicator-minserver
pbread_bin=$build/bench/indicator-pbread
sub_bin=$build/indicator-sub

tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-bench-XXXXXX")
daemon_pid=
redis_pid=
min_pid=
cleanup() {
	local pid
	for pid in "$daemon_pid" "$redis_pid" "$min_pid"; do
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$keep" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# free_port, alive, start_daemon, proc_kib, proc_ticks, stop_daemon
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

# A number from indicatorctl status --json (64-bit counters come as
# strings of digits).
json_num() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9.]*\).*/\1/p" <<<"$2"; }

# run_one NAME TRANSPORT FILL ARGS RUN: one fresh daemon (over a store
# grown to FILL observations first), one loadgen run; appends a line of
# key=value fields to $tmp/results.
# warm_up NAME ENDPOINT ARGS: for a steady-rate scenario, one unmeasured
# run of the same load first, with other values (--seed 7), so that the
# measured run meets keys, tables and files that exist, as a daemon that
# has been running does; its first meeting of 50,000 new keys on an
# empty store is not what "steady" means (it put the ack p99 near 100 ms).
warm_up() {
	case "$1" in *steady*) ;; *) return 0 ;; esac
	# shellcheck disable=SC2086
	"$loadgen_bin" --endpoint "$2" $3 --seed 7 >/dev/null 2>&1 ||
		say "$1: the warm-up run failed"
}

run_one() {
	local name=$1 transport=$2 fill=$3 args=$4 run=$5
	local dir line rc hwm anon ticks status perf_pid= sub_pid=
	dir=$(mktemp -d "$tmp/run-XXXXXX")
	args=${args//OUTBOX/$dir/outbox}
	if [ "$transport" = curve ]; then
		args="$args --curve $tmp/keys/server.pub --keys-dir $tmp/keys"
	fi
	if [ "$fill" -gt 0 ]; then
		say "$name: growing the store to $fill observations"
		"$baseline_bin" --fill "$dir/data" "$fill" >>"$tmp/fill.log" \
			2>&1 || { say "fill failed"; tail "$tmp/fill.log" >&2; exit 1; }
	fi
	start_daemon "$dir" "$transport"
	# A subscriber to every topic (a dashboard), reading as fast as it
	# can: the daemon sends every publication, which it skips when
	# nobody subscribes.
	case "$name" in *subscriber*)
		"$sub_bin" -c "$dir/indicatord.conf" --json >/dev/null \
			2>"$dir/sub.log" &
		sub_pid=$!
		for _ in $(seq 200); do
			grep -q "snapshot of" "$dir/sub.log" 2>/dev/null && break
			sleep 0.05
		done
		;;
	esac
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
	warm_up "$name" "$ingest" "$args"
	ticks=$(proc_ticks "$daemon_pid")
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
	status=$("$ctl_bin" -c "$dir/indicatord.conf" status --json 2>/dev/null) ||
		status=
	if [ -n "$sub_pid" ]; then
		kill "$sub_pid" 2>/dev/null
		wait "$sub_pid" 2>/dev/null
	fi
	hwm=$(proc_kib "$daemon_pid" VmHWM)
	anon=$(proc_kib "$daemon_pid" RssAnon)
	ticks=$(($(proc_ticks "$daemon_pid") - ticks))
	stop_daemon
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		say "$name run $run: loadgen failed ($rc); its log:"
		tail -20 "$dir/loadgen.log" >&2
		line="loadgen failed=1"
		failed=1
	fi
	say "$name run $run: $line"
	printf 'kind=daemon scenario=%s transport=%s run=%s %s daemon_hwm_kib=%s daemon_anon_kib=%s daemon_ticks=%s commit_ms=%s ckpt_avg=%s ckpt_max=%s batch_avg=%s stored=%s\n' \
		"${name// /_}" "$transport" "$run" "$line" "$hwm" "$anon" \
		"$ticks" "$(json_num commit_ms_avg "$status")" \
		"$(json_num checkpoint_ms_avg "$status")" \
		"$(json_num checkpoint_ms_max "$status")" \
		"$(json_num batch_reports_avg "$status")" \
		"$(json_num observations "$status")" >>"$tmp/results"
	[ "$keep" = 1 ] || rm -rf "$dir/data" "$dir/outbox"
}

# run_min NAME TRANSPORT ARGS RUN: the minimal durable server
# (indicator-minserver) on a fresh LMDB under the same loadgen run;
# appends a kind=min line to $tmp/results.
run_min() {
	local name=$1 transport=$2 args=$3 run=$4
	local dir port line rc ticks hwm sargs=
	dir=$(mktemp -d "$tmp/min-XXXXXX")
	if [ "$transport" = curve ]; then
		args="$args --curve $tmp/keys/server.pub --keys-dir $tmp/keys"
		sargs="--curve $tmp/keys/server.key"
	fi
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		# shellcheck disable=SC2086
		"$min_bin" $sargs "tcp://127.0.0.1:$port" "$dir" \
			>"$dir/min.out" 2>"$dir/min.log" &
		min_pid=$!
		for _ in $(seq 200); do
			alive "$min_pid" || break
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
			sleep 0.05
		done
		sleep 0.1
		alive "$min_pid" && break
		wait "$min_pid" 2>/dev/null || true
		min_pid=
		grep -q "Address already in use" "$dir/min.log" || break
	done
	if [ -z "$min_pid" ]; then
		say "indicator-minserver did not start; its log:"
		cat "$dir/min.log" >&2
		failed=1
		return
	fi
	warm_up "$name" "tcp://127.0.0.1:$port" "$args"
	ticks=$(proc_ticks "$min_pid")
	rc=0
	# shellcheck disable=SC2086
	line=$("$loadgen_bin" --endpoint "tcp://127.0.0.1:$port" $args \
		2>"$dir/loadgen.log") || rc=$?
	hwm=$(proc_kib "$min_pid" VmHWM)
	ticks=$(($(proc_ticks "$min_pid") - ticks))
	kill -TERM "$min_pid"
	wait "$min_pid" || say "indicator-minserver exited with $?"
	min_pid=
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		say "minimal server, $name run $run: loadgen failed ($rc)"
		tail -5 "$dir/loadgen.log" >&2
		line="loadgen failed=1"
		failed=1
	fi
	say "minimal server, $name run $run: $line"
	printf 'kind=min scenario=%s transport=%s run=%s %s daemon_hwm_kib=%s daemon_anon_kib=0 daemon_ticks=%s %s\n' \
		"${name// /_}" "$transport" "$run" "$line" "$hwm" "$ticks" \
		"$(sed -n 's/^minserver //p' "$dir/min.out" |
			sed 's/commit_ms_avg=/commit_ms=/')" >>"$tmp/results"
	[ "$keep" = 1 ] || rm -rf "$dir"
}

# The raw parts and the limit they compose; the limit line is kept. Then
# the cost of reading a packed record, pbwire against protobuf-c.
run_baseline() {
	local out
	say "baseline: ZeroMQ, protobuf-c, LMDB (about 10 s)"
	if ! out=$("$baseline_bin"); then
		say "indicator-baseline failed"
		failed=1
		return
	fi
	if [ -x "$pbread_bin" ]; then
		if [ "$quick" = 1 ]; then
			out="$out
$("$pbread_bin" --quick)" || say "indicator-pbread failed"
		else
			out="$out
$("$pbread_bin")" || say "indicator-pbread failed"
		fi
	fi
	echo "$out" | sed 's/^/bench: /' >&2
	echo "$out" >"$tmp/baseline"
	echo "$out" | awk '/^baseline limit/ {
		for (i = 1; i <= NF; i++)
			if ($i ~ /^(plain|curve)=/) printf "kind=limit %s\n", $i
	}' >>"$tmp/results"
}

# redis-server, redis-cli and redis-benchmark: the installed ones, or
# Debian's redis-tools downloaded (apt-get download, no root) and extracted
# with libjemalloc2 and liblzf1 into the cache, as tools/setup.sh does for
# promtool: nothing installed, no service started. redis-tools ships the
# server as redis-check-rdb, which runs as the server under another name.
redis_cache=${INDICATOR_CACHE:-${HOME:-/root}/.cache/indicatord}/redis
# The path of a Redis program: the installed one, else the cache's (run
# with LD_LIBRARY_PATH=$redis_cache/lib, harmless for an installed one).
redis_bin() { command -v "$1" || echo "$redis_cache/bin/$1"; }
redis_fetch() {
	local t d
	if command -v redis-server >/dev/null &&
		command -v redis-benchmark >/dev/null; then
		return 0
	fi
	[ -x "$redis_cache/bin/redis-benchmark" ] && return 0
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
		return 1
	say "redis: downloading redis-tools into $redis_cache"
	t=$(mktemp -d "$tmp/redis-deb-XXXXXX")
	# apt-get download writes as the _apt user when it can.
	chmod 0777 "$t"
	(cd "$t" && apt-get download -q redis-tools libjemalloc2 liblzf1) \
		>"$t/download.log" 2>&1 || return 1
	for d in "$t"/*.deb; do
		dpkg-deb -x "$d" "$t/root" || return 1
	done
	mkdir -p "$redis_cache/bin" "$redis_cache/lib"
	find "$t/root" -name '*.so*' -exec cp -P {} "$redis_cache/lib/" \;
	install -m 0755 "$t/root/usr/bin/redis-check-rdb" \
		"$redis_cache/bin/redis-server"
	install -m 0755 "$t/root/usr/bin/redis-cli" \
		"$t/root/usr/bin/redis-benchmark" "$redis_cache/bin/"
	rm -rf "$t"
}

# redis-server with appendfsync always, XADD of 460-byte payloads from
# 10 clients pipelined 100 deep.
run_redis() {
	local port dir payload csv hwm ticks
	if ! redis_fetch; then
		say "redis: SKIPPED: no redis-server/redis-benchmark, and Debian's redis-tools could not be downloaded"
		return
	fi
	dir=$(mktemp -d "$tmp/redis-XXXXXX")
	port=$(free_port)
	# A simple command in the background: $! is redis-server itself.
	LD_LIBRARY_PATH=$redis_cache/lib "$(redis_bin redis-server)" \
		--port "$port" --bind 127.0.0.1 --dir "$dir" \
		--appendonly yes --appendfsync always --save "" \
		--daemonize no --logfile "$dir/redis.log" &
	redis_pid=$!
	for _ in $(seq 100); do
		LD_LIBRARY_PATH=$redis_cache/lib "$(redis_bin redis-cli)" \
			-p "$port" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	payload=$(head -c 460 /dev/zero | tr '\0' 'x')
	say "redis: XADD, 200,000 x 460 B, -c 10 -P 100, appendfsync always"
	csv=$(LD_LIBRARY_PATH=$redis_cache/lib "$(redis_bin redis-benchmark)" \
		-p "$port" -c 10 -P 100 -n 200000 --csv \
		XADD bench '*' payload "$payload" 2>/dev/null | tail -1) || csv=
	hwm=$(proc_kib "$redis_pid" VmHWM)
	ticks=$(proc_ticks "$redis_pid")
	kill -TERM "$redis_pid"
	wait "$redis_pid" || true
	redis_pid=
	say "redis: ${csv#*\",}"
	# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
	awk -F'"' -v hwm="$hwm" -v ticks="$ticks" 'NF > 10 {
		printf "kind=redis reports/s=%s p50=%s p99=%s daemon_hwm_kib=%s daemon_ticks=%s reports=200000\n",
		    $4, $10, $14, hwm, ticks
	}' <<<"$csv" >>"$tmp/results"
}

# The real agent (not the load generator) flushing a backlog of 100,000
# reports of 8 observations that built up while the daemon was away: how
# fast it drains, its peak RSS (VmHWM, as the agent's -v reports it) and
# its own heap (the largest RssAnon sampled every 50 ms).
run_agent_backlog() {
	local dir away line hwm anon a apid t0 t1
	dir=$(mktemp -d "$tmp/agent-XXXXXX")
	away="tcp://127.0.0.1:$(free_port)"
	say "agent backlog: enqueueing 100,000 reports with the daemon away"
	# 100 files of 8,000 rows: a file never holds one key twice (the
	# agent refuses that), and 8,000 distinct keys of one district fit
	# in 2016..2025 (8 industries, 6 metrics, 17 periods a year).
	awk -v dir="$dir" 'BEGIN {
		split("materials photonics metaverse hydrogen digifin cellgene aerospace quantum", ind, " ")
		split("output_value innovation_platforms chain_leaders pilot_parks core_products app_scenarios", met, " ")
		for (f = 0; f < 100; f++) {
			out = sprintf("%s/backlog-%02d.csv", dir, f)
			print "industry,metric,period,value,unit" >out
			for (r = 0; r < 8000; r++) {
				k = int(r / 8); m = k % 6; p = int(k / 6)
				y = 2025 - int(p / 17); s = p % 17
				if (s == 0) per = y
				else if (s <= 4) per = sprintf("%d-Q%d", y, s)
				else per = sprintf("%d-%02d", y, s - 4)
				if (m == 0)
					printf "%s,output_value,%s,%.1f,CNY_100M\n",
					    ind[r % 8 + 1], per, (r % 997) / 10 + 1 >out
				else
					printf "%s,%s,%s,%d,count\n", ind[r % 8 + 1],
					    met[m + 1], per, r % 997 + 1 >out
			}
			close(out)
		}
	}'
	printf '[agent]\nid = backlog-01\ndistrict = 320583\noutbox = %s/outbox\nreport_size = 8\nwindow = 100\n' \
		"$dir" >"$dir/agent.conf"
	"$agent_bin" -c "$dir/agent.conf" --endpoint "$away" --timeout 1 \
		send "$dir"/backlog-*.csv >"$dir/enqueue.log" 2>&1 || true
	start_daemon "$dir" plain
	say "agent backlog: flushing to $ingest"
	t0=$(date +%s.%N)
	"$agent_bin" -v -c "$dir/agent.conf" --endpoint "$ingest" send \
		>"$dir/flush.log" 2>&1 &
	apid=$!
	anon=0
	while alive "$apid"; do
		a=$(proc_kib "$apid" RssAnon 2>/dev/null) || a=
		[ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
		sleep 0.05
	done
	wait "$apid" || true
	t1=$(date +%s.%N)
	stop_daemon
	line=$(grep 'reports (' "$dir/flush.log" | tail -1)
	hwm=$(sed -n 's/.*peak memory: \([0-9]*\) kB.*/\1/p' "$dir/flush.log")
	say "agent backlog: $line; VmHWM ${hwm:-?} KiB, RssAnon at most $anon KiB"
	case "$line" in
	*"100000 accepted"*)
		awk -v t0="$t0" -v t1="$t1" -v hwm="$hwm" -v anon="$anon" 'BEGIN {
			printf "kind=agent reports/s=%.0f obs/s=%.0f agent_hwm_kib=%s agent_anon_kib=%s\n",
			    100000 / (t1 - t0), 800000 / (t1 - t0), hwm, anon
		}' >>"$tmp/results"
		;;
	*)
		say "agent backlog: FAILED; its log:"
		tail -5 "$dir/flush.log" >&2
		failed=1
		;;
	esac
	[ "$keep" = 1 ] || rm -rf "$dir"
}

failed=0
: >"$tmp/results"
skipped baseline || run_baseline
skipped redis || run_redis
skipped agent || run_agent_backlog
"$loadgen_bin" --write-keys "$tmp/keys" --agents "$nkeys"
for s in "${scenarios[@]}"; do
	IFS='|' read -r name transport fill args limit inquick <<<"$s"
	case "$name" in *"$only"*) ;; *) continue ;; esac
	[ "$quick" = 1 ] && [ "$inquick" != quick ] && continue
	n=$runs
	[ "$fill" -gt 0 ] && n=1
	for run in $(seq "$n"); do
		# Interleaved: the limit, then indicatord, on the same load.
		[ "$limit" = limit ] && run_min "$name" "$transport" "$args" "$run"
		run_one "$name" "$transport" "$fill" "$args" "$run"
	done
done

echo
echo "indicatord bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
	"commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
	"$runs runs per scenario (median run by reports/s; store-size rows: one run)"
[ -s "$tmp/baseline" ] && sed 's/^/    /' "$tmp/baseline"
awk -v tck="$(getconf CLK_TCK)" '
function kv(key,   i, n) {
	for (i = 1; i <= NF; i++) {
		n = index($i, "=")
		if (n > 0 && substr($i, 1, n - 1) == key)
			return substr($i, n + 1)
	}
	return ""
}
function ratio(a, b) { return b > 0 && a > 0 ? sprintf("%.3f", a / b) : "-" }
function dash(v) { return v == "" ? "-" : v }
# The run with the median reports/s of key (daemon scenario, or "min:"
# and the scenario for the minimal server).
function median(key,   n, a, b, t) {
	n = count[key]
	for (a = 1; a <= n; a++) idx[a] = a
	for (a = 2; a <= n; a++)
		for (b = a; b > 1 && rps[key, idx[b]] < rps[key, idx[b - 1]]; b--) {
			t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t
		}
	return idx[int((n + 1) / 2)]
}
function range(key, med,   n) {
	n = count[key]
	if (n < 2) return rps[key, med]
	return sprintf("%s (%s-%s)", rps[key, med], rps[key, idx[1]], rps[key, idx[n]])
}
kv("kind") == "limit" {
	if (kv("plain") != "") limit["plain"] = kv("plain") + 0
	if (kv("curve") != "") limit["curve"] = kv("curve") + 0
	next
}
kv("kind") == "agent" {
	agent_row = sprintf("| the real agent flushing a 100,000-report backlog | %s | %s | - | - | - | - | - | VmHWM %.1f, own heap (RssAnon) %.1f | - | - | - | - |",
	    kv("reports/s"), kv("obs/s"), kv("agent_hwm_kib") / 1024, kv("agent_anon_kib") / 1024)
	next
}
kv("kind") == "redis" {
	redis = kv("reports/s") + 0
	redis_cpu = kv("daemon_ticks") / tck * 1e6 / 200000
	redis_row = sprintf("| redis-server XADD 460 B, appendfsync always, 10 clients x pipeline 100 | %.0f | - | %s / %s | - | - | - | %.1f | %.1f | - | - |",
	    redis, kv("p50"), kv("p99"), redis_cpu, kv("daemon_hwm_kib") / 1024)
	next
}
{
	s = kv("scenario"); gsub(/_/, " ", s)
	key = kv("kind") == "min" ? "min:" s : s
	if (kv("kind") != "min" && !(s in seen)) { seen[s] = 1; order[++ns] = s }
	k = ++count[key]
	tr[key] = kv("transport")
	rps[key, k] = kv("reports/s") + 0
	p99[key, k] = kv("p99")
	amax[key, k] = kv("max")
	ckmax[key, k] = kv("ckpt_max") == "" ? "" : sprintf("%.1f", kv("ckpt_max"))
	cpu[key, k] = kv("reports") > 0 ? kv("daemon_ticks") / tck * 1e6 / kv("reports") : 0
	if (kv("kind") == "min")
		ckcell = sprintf("- (longest commit %.1f)", kv("commit_ms_max"))
	else if (kv("ckpt_max") == "")
		ckcell = "-"
	else
		ckcell = sprintf("%.1f (avg %.1f)", kv("ckpt_max"), kv("ckpt_avg"))
	row[key, k] = sprintf("| %s | %s | %s / %s | %s | %s | %s | %.1f | %.1f | %.1f | %s |",
	    "RPS", kv("obs/s"), kv("p50"), kv("p99"), dash(kv("max")), ckcell,
	    dash(kv("commit_ms")), cpu[key, k],
	    kv("daemon_hwm_kib") / 1024, kv("daemon_anon_kib") / 1024,
	    dash(kv("agent_rss_mib")))
	if (kv("failed") == 1) row[key, k] = "| FAILED | | | | | | | | | |"
}
END {
	print "| scenario | reports/s (min-max) | obs/s | ack ms p50 / p99 | longest ack ms | longest checkpoint ms (avg) | txn ms avg | server CPU us/report | server peak RSS MiB | server anon MiB | agent RSS MiB | / limit | / redis |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	if ("plain" in limit)
		printf "| composed limit, plain (min of transport, unpack, LMDB) | %.0f | %.0f | | | | | | | | | - | %s |\n",
		    limit["plain"], limit["plain"] * 8, ratio(limit["plain"], redis)
	if ("curve" in limit)
		printf "| composed limit, CURVE | %.0f | %.0f | | | | | | | | | - | %s |\n",
		    limit["curve"], limit["curve"] * 8, ratio(limit["curve"], redis)
	if (redis_row != "")
		print redis_row " - | 1 |"
	for (i = 1; i <= ns; i++) {
		s = order[i]
		lim = ""
		if (("min:" s) in count) {
			m = median("min:" s)
			lim = rps["min:" s, m]
			line = row["min:" s, m]
			sub(/RPS/, range("min:" s, m), line)
			# The reports/s of a paced run is the pace: no ratio.
			print "| limit: minimal durable server, " s " " line " 1 | " (s ~ /steady/ ? "-" : ratio(lim, redis)) " |"
			mp99[s] = p99["min:" s, m]; mcpu[s] = cpu["min:" s, m]
		}
		d = median(s)
		line = row[s, d]
		sub(/RPS/, range(s, d), line)
		if (lim == "") lim = limit[tr[s]]
		if (s ~ /steady/)
			print "| indicatord, " s " " line " - | - |"
		else
			print "| indicatord, " s " " line " " ratio(rps[s, d], lim) " | " ratio(rps[s, d], redis) " |"
		drps[s] = rps[s, d]; dlim[s] = lim; dp99[s] = p99[s, d]
		damax[s] = amax[s, d]; dck[s] = ckmax[s, d]; dcpu[s] = cpu[s, d]
	}
	if (agent_row != "")
		print agent_row
	print ""
	print "Against the targets of issue 14 (median runs):"
	line = ""
	for (i = 1; i <= ns; i++)
		if (("min:" order[i]) in count && order[i] !~ /steady/)
			line = line sprintf("%s%s %s", line == "" ? "" : "; ", order[i], ratio(drps[order[i]], dlim[order[i]]))
	print "- acknowledged throughput / the minimal durable server (target >= 0.60): " (line == "" ? "not measured" : line)
	st = "steady 10k/s, 10 x 100, plain"; sat = "10 x 100, plain"
	if (st in drps)
		printf "- ack p99 at a steady 10k reports/s (target < 5 ms): indicatord %s ms, minimal server %s ms\n", dp99[st], dash(mp99[st])
	line = ""
	for (i = 1; i <= ns; i++)
		line = line sprintf("%s%s: ack %s / checkpoint %s", line == "" ? "" : "; ", order[i], dash(damax[order[i]]), dash(dck[order[i]]))
	print "- longest ack wait / longest checkpoint, ms (target: no ack waits for a checkpoint): " line
	if ((st in drps) && (sat in drps) && dcpu[sat] > 0) {
		printf "- CPU per report at 10k/s / at saturation (10 x 100, plain) (target <= 1.5): indicatord %.1f / %.1f us = %.2f", dcpu[st], dcpu[sat], dcpu[st] / dcpu[sat]
		if (mcpu[sat] > 0)
			printf "; minimal server %.1f / %.1f us = %.2f", mcpu[st], mcpu[sat], mcpu[st] / mcpu[sat]
		printf "\n"
	}
	if (redis > 0 && (sat in drps))
		printf "- against Redis, appendfsync always (target > 1): indicatord 10 x 100 plain %s, CURVE %s; the minimal server, plain %s\n",
		    ratio(drps[sat], redis), ratio(drps["10 x 100, CURVE"], redis), ratio(dlim[sat], redis)
}' "$tmp/results"
exit "$failed"
