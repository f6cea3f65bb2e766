#!/bin/bash
# The demo: the daemon on its built-in default configuration, ten district
# agents sending the synthetic sample data, the city table, then the
# dashboard (indicator-web) left running on loopback with the daemon.
# Usage: tools/demo.sh [BUILD_DIR]    run the demo
#        tools/demo.sh stop           stop what the last demo left running
set -euo pipefail

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/$build
run=$top/demo-run
web_listen=${DEMO_WEB:-127.0.0.1:7480}

# Stops the daemon and dashboard a previous demo left running (their pids
# are in demo-run/pids), waiting for each to exit.
demo_stop() {
	[ -f "$run/pids" ] || return 0
	for p in $(cat "$run/pids"); do
		kill -TERM "$p" 2>/dev/null || continue
		for _ in $(seq 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	done
	rm -f "$run/pids"
}

if [ "$build" = stop ]; then
	demo_stop
	echo "demo: stopped"
	exit 0
fi
demo_stop

declare -A agent=(
	[320505]=huqiu [320506]=wuzhong [320507]=xiangcheng [320508]=gusu
	[320509]=wujiang [320576]=sip [320581]=changshu
	[320582]=zhangjiagang [320583]=kunshan [320585]=taicang
)

rm -rf "$run"
mkdir -p "$run/outbox"
"$bin/indicator-gen-sample" "$run/sample"

"$bin/indicatord" -d "$run/data" >/dev/null 2>"$run/indicatord.log" &
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

# The dashboard, left running with the daemon; every page says the figures
# are synthetic.
"$bin/indicator-web" --listen "$web_listen" \
	--banner "演示：indicator-gen-sample 生成的合成数据，不是统计数据 (demo: synthetic sample data, not statistics)" \
	>/dev/null 2>"$run/indicator-web.log" &
web=$!
for _ in $(seq 100); do
	grep -q "snapshot of" "$run/indicator-web.log" 2>/dev/null && break
	if ! kill -0 "$web" 2>/dev/null; then
		echo "demo: indicator-web did not start:" >&2
		cat "$run/indicator-web.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "$daemon $web" >"$run/pids"
trap - EXIT

# A later figure for Kunshan, to watch the open page change.
cat >"$run/kunshan-revised.csv" <<'CSV'
industry,metric,period,value,unit,status,note
photonics,output_value,2025,158.92,CNY_100M,revised,demo: a revised figure
quantum,output_value,2025,120,CNY_100M,revised,demo: a new quantum plant
CSV
echo
echo "demo: store, logs and sample data are in $run"
echo "demo: the dashboard is running: open http://$web_listen/"
echo "demo: send a revised figure and watch the page change:"
echo "  $bin/indicator-agent --id kunshan-02 --district 320583 \\"
echo "      --outbox $run/outbox/kunshan-02 send $run/kunshan-revised.csv"
echo "demo: stop the daemon and the dashboard with: tools/demo.sh stop"
