#!/usr/bin/env bash
# bench/run.sh: one command that measures, in the same run on the same
# machine, the limit of the machine and indicatord against it (issue 7):
#
#  1. indicator-baseline: the raw parts (ZeroMQ windowed round trip plain
#     and CURVE, protobuf-c unpack, LMDB durable batched append) and the
#     limit they compose for the workload, min(transport, unpack, LMDB);
#  2. a peer: redis-server with appendonly and appendfsync always, taking
#     XADD of the same 460-byte payloads from redis-benchmark, 10 clients
#     pipelined 100 deep (installed with apt-get when missing and run as
#     root; otherwise the row is skipped and the reason said);
#  3. the real indicator-agent flushing a backlog of 100,000 reports that
#     built up while the daemon was away: reports/s, its peak RSS and heap;
#  4. indicatord end to end under indicator-loadgen: 10 and 100 agents with
#     windows of 100, 8 observations a report, plain and CURVE; a steady
#     10k reports/s (and 2k/s); and the store grown to 10k, 100k, 1M and 10M
#     observations (BENCH_SCALE) before a 10 x 100 run.
#
# For each daemon run it starts a fresh indicatord on free loopback ports
# in a temporary directory, reads its peak RSS (VmHWM), anonymous memory
# (RssAnon), CPU time and `indicatorctl status --json` (commit_ms_avg)
# before stopping it, and prints one table: the run with the median
# reports/s, the min-max over the runs, and the ratios to the limit and to
# Redis. About 7 minutes on 2 vCPUs (3.5 GB of temporary disk for the 10M
# store).
#
# Not a test (ctest never runs it). Environment:
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
scale=${BENCH_SCALE:-10000 100000 1000000 10000000}
skip=${BENCH_SKIP:-}
perf_dir=${BENCH_PERF:-}
keep=${BENCH_KEEP:-0}
daemon_conf=${BENCH_DAEMON_CONF:-}

# name | transport | stored observations before the run | loadgen
# arguments (OUTBOX is replaced by a fresh directory). 60,000 reports of 8
# observations each, so that a run takes a few seconds at the daemon's
# present ~20k reports/s and spans several checkpoints.
common="--reports 6000 --window 100 --obs 8 --no-outbox"
scenarios=(
	"10 x 100, plain|plain|0|--agents 10 $common"
	"10 x 100, CURVE|curve|0|--agents 10 $common"
	"100 x 100, plain|plain|0|--agents 100 --reports 600 --window 100 --obs 8 --no-outbox"
	"100 x 100, CURVE|curve|0|--agents 100 --reports 600 --window 100 --obs 8 --no-outbox"
	"10 x 100, plain, agent outboxes|plain|0|--agents 10 --reports 6000 --window 100 --obs 8 --outbox-dir OUTBOX"
	"steady 10k/s, 10 x 100, plain|plain|0|--agents 10 $common --rate 10000"
	"steady 2k/s, 10 x 100, plain|plain|0|--agents 10 --reports 500 --window 100 --obs 8 --no-outbox --rate 2000"
)
for n in $scale; do
	scenarios+=("store $n obs, 10 x 100, plain|plain|$n|--agents 10 $common")
done
nkeys=100 # agents with a CURVE key pair: the most any scenario uses

say() { echo "bench: $*" >&2; }
skipped() { case " $skip " in *" $1 "*) return 0 ;; esac; return 1; }

mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$build" --target indicatord indicatorctl indicator-agent \
		indicator-loadgen indicator-baseline -j "$(nproc)"; } \
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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-bench-XXXXXX")
daemon_pid=
redis_pid=
cleanup() {
	local pid
	for pid in "$daemon_pid" "$redis_pid"; do
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

# A number from indicatorctl status --json (64-bit counters come as
# strings of digits).
json_num() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9.]*\).*/\1/p" <<<"$2"; }

# run_one NAME TRANSPORT FILL ARGS RUN: one fresh daemon (over a store
# grown to FILL observations first), one loadgen run; appends a line of
# key=value fields to $tmp/results.
run_one() {
	local name=$1 transport=$2 fill=$3 args=$4 run=$5
	local dir line rc hwm anon ticks status perf_pid=
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
	status=$("$ctl_bin" -c "$dir/indicatord.conf" status --json 2>/dev/null) ||
		status=
	hwm=$(proc_kib "$daemon_pid" VmHWM)
	anon=$(proc_kib "$daemon_pid" RssAnon)
	ticks=$(proc_ticks "$daemon_pid")
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

# The raw parts and the limit they compose; the limit line is kept.
run_baseline() {
	local out
	say "baseline: ZeroMQ, protobuf-c, LMDB (about 10 s)"
	if ! out=$("$baseline_bin"); then
		say "indicator-baseline failed"
		failed=1
		return
	fi
	echo "$out" | sed 's/^/bench: /' >&2
	echo "$out" >"$tmp/baseline"
	echo "$out" | awk '/^baseline limit/ {
		for (i = 1; i <= NF; i++)
			if ($i ~ /^(plain|curve)=/) printf "kind=limit %s\n", $i
	}' >>"$tmp/results"
}

# redis-server with appendfsync always, XADD of 460-byte payloads from
# 10 clients pipelined 100 deep.
run_redis() {
	local port dir payload csv hwm ticks
	if ! command -v redis-server >/dev/null ||
		! command -v redis-benchmark >/dev/null; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			say "redis: installing redis-server redis-tools with apt-get"
			DEBIAN_FRONTEND=noninteractive apt-get install -y \
				redis-server redis-tools >"$tmp/apt.log" 2>&1 || true
		fi
	fi
	if ! command -v redis-server >/dev/null ||
		! command -v redis-benchmark >/dev/null; then
		say "redis: SKIPPED: no redis-server/redis-benchmark (apt-get install redis-server redis-tools)"
		return
	fi
	dir=$(mktemp -d "$tmp/redis-XXXXXX")
	port=$(free_port)
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
		--appendonly yes --appendfsync always --save "" \
		--daemonize no --logfile "$dir/redis.log" &
	redis_pid=$!
	for _ in $(seq 100); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	payload=$(head -c 460 /dev/zero | tr '\0' 'x')
	say "redis: XADD, 200,000 x 460 B, -c 10 -P 100, appendfsync always"
	csv=$(redis-benchmark -p "$port" -c 10 -P 100 -n 200000 --csv \
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
	IFS='|' read -r name transport fill args <<<"$s"
	case "$name" in *"$only"*) ;; *) continue ;; esac
	n=$runs
	[ "$fill" -gt 0 ] && n=1
	for run in $(seq "$n"); do
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
function ratio(a, b) { return b > 0 ? sprintf("%.3f", a / b) : "-" }
kv("kind") == "limit" {
	if (kv("plain") != "") limit["plain"] = kv("plain") + 0
	if (kv("curve") != "") limit["curve"] = kv("curve") + 0
	next
}
kv("kind") == "agent" {
	agent_row = sprintf("| the real agent flushing a 100,000-report backlog | %s | %s | - | - | - | - | - | - | VmHWM %.1f, own heap (RssAnon) %.1f | - | - |",
	    kv("reports/s"), kv("obs/s"), kv("agent_hwm_kib") / 1024, kv("agent_anon_kib") / 1024)
	next
}
kv("kind") == "redis" {
	redis = kv("reports/s") + 0
	redis_row = sprintf("| redis-server XADD, appendfsync always, 10 clients x pipeline 100 | %.0f | - | %s / %s | - | - | %.1f | %.1f | - | - |",
	    redis, kv("p50"), kv("p99"),
	    kv("daemon_ticks") / tck * 1e6 / 200000, kv("daemon_hwm_kib") / 1024)
	next
}
{
	s = kv("scenario"); gsub(/_/, " ", s)
	if (!(s in count)) order[++ns] = s
	k = ++count[s]
	tr[s] = kv("transport")
	rps[s, k] = kv("reports/s") + 0
	row[s, k] = sprintf("| %s | %s | %s | %s / %s | %s | %s / %s | %.0f | %.1f | %.1f | %.1f |",
	    s, kv("reports/s"), kv("obs/s"), kv("p50"), kv("p99"),
	    kv("commit_ms") == "" ? "-" : kv("commit_ms"),
	    kv("ckpt_avg") == "" ? "-" : sprintf("%.1f", kv("ckpt_avg")),
	    kv("ckpt_max") == "" ? "-" : sprintf("%.1f", kv("ckpt_max")),
	    kv("reports") > 0 ? kv("daemon_ticks") / tck * 1e6 / kv("reports") : 0,
	    kv("daemon_hwm_kib") / 1024, kv("daemon_anon_kib") / 1024,
	    kv("agent_rss_mib"))
	if (kv("failed") == 1) row[s, k] = "| " s " | FAILED |"
}
END {
	print "| scenario | reports/s | obs/s | ack ms p50 / p99 | txn ms avg | checkpoint ms avg / max | daemon CPU us/report | daemon peak RSS MiB | daemon anon MiB | agent RSS MiB | / limit | / redis |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|"
	if ("plain" in limit)
		printf "| limit, plain (min of transport, unpack, LMDB) | %.0f | %.0f | | | | | | | | 1 | %s |\n",
		    limit["plain"], limit["plain"] * 8, ratio(limit["plain"], redis)
	if ("curve" in limit)
		printf "| limit, CURVE | %.0f | %.0f | | | | | | | | 1 | %s |\n",
		    limit["curve"], limit["curve"] * 8, ratio(limit["curve"], redis)
	if (redis_row != "")
		print redis_row " " ratio(redis, limit["plain"]) " | 1 |"
	for (i = 1; i <= ns; i++) {
		s = order[i]; n = count[s]
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
		print line " " ratio(rps[s, med], limit[tr[s]]) " | " ratio(rps[s, med], redis) " |"
	}
	if (agent_row != "")
		print agent_row
}' "$tmp/results"
exit "$failed"
