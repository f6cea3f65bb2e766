#!/usr/bin/env bash
# bench/ab.sh: interleaved A/B runs of indicatord builds (or of one build
# with different settings) under one indicator-loadgen load, to tell a
# change from the machine's noise: run 1 of every variant, then run 2 of
# every variant, and so on, each on a fresh daemon in a temporary
# directory (conf/indicatord.conf plus a [daemon] section). One line per
# run: reports/s, ack latency, the daemon's CPU per report and, from
# `indicatorctl status --json`, the longest and mean log commit and
# checkpoint.
#
#   bench/ab.sh RUNS VARIANT... -- LOADGEN-ARGUMENTS
#
# A VARIANT is LABEL=BINARY or LABEL=BINARY:LINES, LINES added to the
# [daemon] section with \n between them. For example, the checksums'
# cost (a build of main without them in /tmp/main/build):
#
#   bench/ab.sh 4 fmt4=build-bench/indicatord \
#       main=/tmp/main/build/indicatord -- \
#       --agents 10 --reports 6000 --window 100 --obs 8 --no-outbox
#
# or checkpoints off against the defaults at a steady 10k reports/s:
#
#   bench/ab.sh 3 base=build-bench/indicatord \
#       'none=build-bench/indicatord:checkpoint_ms = 3600000\ncheckpoint_idle_ms = 0\ncheckpoint_entries = 10000000' \
#       -- --agents 10 --reports 6000 --window 100 --obs 8 --no-outbox --rate 10000
#
# BENCH_BUILD: where indicator-loadgen and indicatorctl are (default
# build-bench). Not a test; run.sh is the benchmark of record.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
loadgen=$build/bench/indicator-loadgen
ctl=$build/indicatorctl

if [ $# -lt 3 ]; then
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
fi
runs=$1
shift
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	variants+=("$1")
	shift
done
[ $# -gt 0 ] && shift

say() { echo "ab: $*" >&2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/indicatord-ab-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# free_port, alive, start_daemon, proc_ticks, stop_daemon
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
hz=$(getconf CLK_TCK)

for r in $(seq "$runs"); do
	for v in "${variants[@]}"; do
		label=${v%%=*}
		rest=${v#*=}
		bin=${rest%%:*}
		extra=
		case $rest in *:*) extra=${rest#*:} ;; esac
		dir=$(mktemp -d "$tmp/run-XXXXXX")
		daemon_bin=$bin
		daemon_conf=$extra
		start_daemon "$dir" plain
		pid=$daemon_pid
		t0=$(proc_ticks "$pid")
		line=$("$loadgen" --endpoint "$ingest" "$@" 2>&1 |
			tail -1)
		t1=$(proc_ticks "$pid")
		status=$("$ctl" -c "$dir/indicatord.conf" status --json \
			2>/dev/null | tr ',{}' '\n\n\n' |
			grep -E '"(batches|batch_reports_avg|commit_ms_max|commit_ms_avg|checkpoint_ms_max|checkpoint_ms_avg|checkpoints)"' |
			tr -d '"' | tr '\n' ' ')
		stop_daemon
		n=$(echo "$line" | grep -o ' reports=[0-9]*' | cut -d= -f2)
		echo "$label run $r: $(echo "$line" |
			grep -o 'reports/s=[0-9]*') $(echo "$line" |
			grep -o 'ack_ms p50=[0-9.]* p99=[0-9.]* max=[0-9.]*') cpu_us/report=$(((t1 - t0) * 1000000 / hz / ${n:-1})) $status"
		rm -rf "$dir"
	done
done
