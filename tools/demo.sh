#!/bin/bash
# The demo: the daemon on its built-in default configuration, ten district
# agents sending the synthetic sample data, then the city table.
# Usage: tools/demo.sh [BUILD_DIR]
set -euo pipefail

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/$build
run=$top/demo-run

declare -A agent=(
	[320505]=huqiu [320506]=wuzhong [320507]=xiangcheng [320508]=gusu
	[320509]=wujiang [320576]=sip [320581]=changshu
	[320582]=zhangjiagang [320583]=kunshan [320585]=taicang
)

rm -rf "$run"
mkdir -p "$run/outbox"
"$bin/indicator-gen-sample" "$run/sample"

"$bin/indicatord" -d "$run/data" 2>"$run/indicatord.log" &
daemon=$!
stop_daemon() {
	if kill -0 "$daemon" 2>/dev/null; then
		kill -TERM "$daemon"
		wait "$daemon" || true
	fi
}
trap stop_daemon EXIT

# Wait until the daemon is listening (or has failed).
for _ in $(seq 50); do
	grep -q "ready" "$run/indicatord.log" 2>/dev/null && break
	if ! kill -0 "$daemon" 2>/dev/null; then
		echo "demo: indicatord did not start:" >&2
		cat "$run/indicatord.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "demo: ten agents sending synthetic sample data to indicatord..."
pids=()
for code in "${!agent[@]}"; do
	"$bin/indicator-agent" --id "${agent[$code]}-01" --district "$code" \
		--outbox "$run/outbox/$code" --timeout 60 \
		send "$run/sample/$code.csv" 2>"$run/agent-$code.log" &
	pids+=($!)
done
fail=0
for p in "${pids[@]}"; do
	wait "$p" || fail=1
done
if [ "$fail" -ne 0 ]; then
	echo "demo: an agent failed; see $run/agent-*.log" >&2
	exit 1
fi
for code in $(printf '%s\n' "${!agent[@]}" | sort); do
	printf '  %s %-16s %s\n' "$code" "${agent[$code]}-01" \
		"$(grep -h "sent" "$run/agent-$code.log" |
			sed 's/^.* agent: //')"
done
echo

"$bin/indicatorctl" -d "$run/data" city
echo
# Progress toward the plan's targets, as a late subscriber sees it: taken
# from the daemon's snapshot socket (the live feed's join).
echo "(synthetic sample data, read from the daemon's snapshot socket)"
"$bin/indicator-sub" --once --progress
echo
"$bin/indicatorctl" -d "$run/data" agents

stop_daemon
trap - EXIT
echo
echo "demo: store, logs and sample data are in $run"
