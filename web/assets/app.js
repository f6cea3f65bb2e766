/*
 * indicator-web: the dashboard's pages. One script for the five views
 * (the path names the view), drawn from the server's JSON and redrawn when
 * the live feed (Server-Sent Events) says a figure they show changed.
 *
 * Every string from the server, a district's note above all, goes into
 * the page with textContent or as an attribute value: never as markup (no
 * innerHTML anywhere), and the Content-Security-Policy allows no inline
 * script.
 *
 * The server's JSON follows the project's convention (README, "Operator
 * tools"): 64-bit integers (seq, revisions of aggregates, epochs, agents'
 * counts, times in ms) are strings, shown as they are or read with
 * Number() where they are times; where no target applies, target,
 * target_year and progress are null.
 */
"use strict";

(function () {
	var T = {
		zh: {
			title: "苏州市未来产业指标看板",
			plan: "规划目标进展",
			path: "增长路径",
			matrix: "产业 × 区县",
			reporting: "上报情况",
			history: "修订历史",
			loading: "加载中…",
			live: "实时更新",
			down: "与采集服务断开，显示最后的数据",
			waiting: "等待采集服务…",
			updated: "更新于",
			metric: "指标",
			period: "期间",
			value: "数值",
			unit: "单位",
			target: "目标",
			by: "目标年份",
			progress: "进度",
			districts: "上报区县",
			incomplete: "不完整",
			complete: "完整",
			onlyOf: function (n, m) {
				return "仅 " + n + "/" + m + " 个区县上报";
			},
			noData: "暂无数据",
			csv: "下载 CSV",
			png: "下载 PNG",
			planTitle: function (y) {
				return "规划目标进展（" + (y || "—") + " 年）";
			},
			targetsAll: "规划目标",
			clustersNote: "千亿级创新集群：规划 2035 年 1-2 个",
			pathTitle: "全市未来产业总产值：实际与规划路径",
			baseline: "基期",
			latest: "最新",
			straight: "直线路径",
			growth: "等速增长路径",
			total: "合计",
			required: "今后每年需增长",
			planned: "基期以来规划年均增长",
			toYear: function (y, v) {
				return "至 " + y + " 年达到 " + v;
			},
			year: "年份",
			industry: "产业",
			city: "全市",
			allIndustries: "全部产业",
			sortHint: "点击表头排序；点击数值查看修订历史",
			revision: "修订",
			sentValue: "原报数值",
			sentUnit: "原报单位",
			status: "状态",
			note: "备注",
			agent: "报送方",
			epoch: "epoch",
			seq: "序号",
			sentAt: "报送时间",
			storedAt: "入库时间",
			noHistory: "此项尚无报送记录",
			historyChart: "各次修订的数值",
			truncated: "只显示最近的修订",
			current: "当前值",
			back: "返回产业 × 区县",
			reportedTitle: function (p) {
				return "各区县 " + p + " 上报情况";
			},
			completeCount: function (n, m, p) {
				return n + "/" + m + " 个区县已完整上报 " + p;
			},
			reported: "已报",
			missing: "未报",
			agents: "采集端",
			lastSeq: "最后序号",
			accepted: "接收",
			rejected: "拒收",
			firstSeen: "首次出现",
			lastSeen: "最后出现",
			stale: "长时间未联系",
			ok: "正常",
			staleAfter: function (h) {
				return "超过 " + h + " 小时未联系的采集端标为长时间未联系";
			},
			unreachable: "无法连接采集服务",
			tooOld: "采集服务版本过旧，不支持此查询",
			busy: "服务繁忙，请稍后重试",
			error: "出错",
			synthetic: "",
			statusNames: { provisional: "初报", final: "终报", revised: "修订", "": "" },
			progressChart: "目标完成进度 (%)",
			footer: "数据来自 indicatord 的实时推送；数字为各区县上报值的汇总。"
		},
		en: {
			title: "Suzhou future industries: indicators",
			plan: "The plan",
			path: "The path",
			matrix: "Industries × districts",
			reporting: "Reporting",
			history: "History",
			loading: "Loading…",
			live: "Live",
			down: "Feed lost: showing the last figures",
			waiting: "Waiting for the daemon…",
			updated: "updated",
			metric: "Metric",
			period: "Period",
			value: "Value",
			unit: "Unit",
			target: "Target",
			by: "By",
			progress: "Progress",
			districts: "Districts",
			incomplete: "incomplete",
			complete: "complete",
			onlyOf: function (n, m) {
				return "only " + n + " of " + m + " districts reported";
			},
			noData: "No data yet",
			csv: "Download CSV",
			png: "Download PNG",
			planTitle: function (y) {
				return "Progress toward the plan's targets (" + (y || "—") + ")";
			},
			targetsAll: "Targets",
			clustersNote: "Clusters of 100 bn CNY: the plan wants 1-2 by 2035",
			pathTitle: "City output value: actual and the plan's paths",
			baseline: "Baseline",
			latest: "Latest",
			straight: "Straight-line path",
			growth: "Constant-growth path",
			total: "Total",
			required: "Growth needed each year from now",
			planned: "Yearly growth the plan implies from the baseline",
			toYear: function (y, v) {
				return "to reach " + v + " by " + y;
			},
			year: "Year",
			industry: "Industry",
			city: "City",
			allIndustries: "All industries",
			sortHint: "Click a header to sort; a figure to see its history",
			revision: "Revision",
			sentValue: "Sent value",
			sentUnit: "Sent unit",
			status: "Status",
			note: "Note",
			agent: "Sent by",
			epoch: "Epoch",
			seq: "Seq",
			sentAt: "Sent at",
			storedAt: "Stored at",
			noHistory: "Nothing reported for this key yet",
			historyChart: "The value at each revision",
			truncated: "Only the latest revisions are shown",
			current: "Current value",
			back: "Back to industries × districts",
			reportedTitle: function (p) {
				return "Who reported what for " + p;
			},
			completeCount: function (n, m, p) {
				return n + " of " + m + " districts complete for " + p;
			},
			reported: "reported",
			missing: "missing",
			agents: "Agents",
			lastSeq: "Last seq",
			accepted: "Accepted",
			rejected: "Rejected",
			firstSeen: "First seen",
			lastSeen: "Last seen",
			stale: "stale",
			ok: "ok",
			staleAfter: function (h) {
				return "Agents not seen for " + h + " hours are marked stale";
			},
			unreachable: "The daemon does not answer",
			tooOld: "The daemon is too old for this question",
			busy: "Busy: try again shortly",
			error: "Error",
			statusNames: { provisional: "provisional", final: "final", revised: "revised", "": "" },
			progressChart: "Progress toward the targets (%)",
			footer: "Figures from indicatord's live feed: sums of what the districts reported."
		}
	};
	/* English names of the registry's codes; the registry's Chinese names
	 * come from the server. */
	var EN = {
		"320505": "Huqiu (Suzhou New District)", "320506": "Wuzhong",
		"320507": "Xiangcheng", "320508": "Gusu", "320509": "Wujiang",
		"320576": "Suzhou Industrial Park", "320581": "Changshu",
		"320582": "Zhangjiagang", "320583": "Kunshan", "320585": "Taicang",
		materials: "Frontier materials", photonics: "Photonic chips and devices",
		metaverse: "Metaverse", hydrogen: "Hydrogen", digifin: "Digital finance",
		cellgene: "Cell and gene therapy", aerospace: "Aerospace",
		quantum: "Quantum technology", clusters_100bn: "Clusters of 100 bn CNY"
	};
	var ZH_EXTRA = { clusters_100bn: "千亿级创新集群" };
	var UNITS = {
		zh: { CNY_100M: "亿元", count: "个", CNY_10K: "万元", CNY: "元" },
		en: { CNY_100M: "100M CNY", count: "", CNY_10K: "10k CNY", CNY: "CNY" }
	};
	var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
		"#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

	var lang = "zh";
	var reg = null; /* /api/registry */
	var names = {}; /* code -> {zh, en} */
	var view = null; /* the current view: {draw, wants(topic)} */
	var charts = [];
	var redrawTimer = null;
	var liveState = { connected: false, live: false, at: 0 };

	function t(key) {
		return T[lang][key];
	}

	/* An element with attributes and children (strings become text). */
	function el(tag, attrs) {
		var e = document.createElement(tag);
		var k, i, c;
		if (attrs) {
			for (k in attrs) {
				if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] == null)
					continue;
				if (k === "text")
					e.textContent = attrs[k];
				else if (k === "class")
					e.className = attrs[k];
				else
					e.setAttribute(k, String(attrs[k]));
			}
		}
		for (i = 2; i < arguments.length; i++) {
			c = arguments[i];
			if (c == null)
				continue;
			e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
		}
		return e;
	}

	function clear(e) {
		while (e.firstChild)
			e.removeChild(e.firstChild);
	}

	function name(code) {
		var n = names[code];
		if (lang === "en")
			return EN[code] || (n && n.en) || code;
		return (n && n.zh) || ZH_EXTRA[code] || code;
	}

	function unitName(u) {
		var m = UNITS[lang];
		return Object.prototype.hasOwnProperty.call(m, u) ? m[u] : u;
	}

	function isMoney(u) {
		return u === "CNY_100M" || u === "CNY_10K" || u === "CNY";
	}

	/* A figure as the pages show it: money with two decimals, counts
	 * whole, thousands separated. */
	function fmt(v, unit) {
		if (v == null || typeof v !== "number" || !isFinite(v))
			return "—";
		var d = isMoney(unit) || Math.round(v) !== v ? 2 : 0;
		return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
	}

	function pct(v) {
		return v == null || !isFinite(v) ? "—" : (v * 100).toFixed(1) + "%";
	}

	/* A time in ms since the epoch, which the server sends as a string
	 * (every 64-bit integer is one), in the browser's time zone. */
	function time(ms) {
		var n = Number(ms);
		if (!n)
			return "—";
		var d = new Date(n);
		function p(n) { return (n < 10 ? "0" : "") + n; }
		return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) +
		    " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
	}

	/* A figure's cell text, with what the tests and the shading read. */
	function num(tag, v, unit, topic, cls) {
		var e = el(tag, { "class": cls, text: fmt(v, unit) });
		if (topic) {
			e.setAttribute("data-topic", topic);
			e.setAttribute("data-value", v == null ? "" : String(v));
		}
		return e;
	}

	function getJSON(url) {
		return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
			return r.json().then(function (j) {
				if (!r.ok) {
					var err = new Error(j && j.error ? j.error : String(r.status));
					err.code = j && j.error;
					throw err;
				}
				return j;
			});
		});
	}

	function errorText(e) {
		if (e && e.code === "daemon_unreachable")
			return t("unreachable");
		if (e && e.code === "daemon_too_old")
			return t("tooOld");
		if (e && e.code === "busy")
			return t("busy");
		return t("error") + ": " + (e && e.message ? e.message : String(e));
	}

	function query() {
		var q = {};
		new URLSearchParams(location.search).forEach(function (v, k) { q[k] = v; });
		return q;
	}

	function qs(o) {
		var p = new URLSearchParams();
		Object.keys(o).forEach(function (k) {
			if (o[k] != null && o[k] !== "")
				p.set(k, o[k]);
		});
		var s = p.toString();
		return s ? "?" + s : "";
	}

	function csvLink(url, file) {
		return el("a", { href: url + (url.indexOf("?") < 0 ? "?" : "&") + "format=csv",
		    download: file, "class": "csv", text: t("csv") });
	}

	/* Charts: Chart.js from Debian (missing: the tables alone). A white
	 * background, so that the PNG reads on any viewer. */
	var whiteBackground = {
		id: "whiteBackground",
		beforeDraw: function (chart) {
			var c = chart.ctx;
			c.save();
			c.globalCompositeOperation = "destination-over";
			c.fillStyle = "#ffffff";
			c.fillRect(0, 0, chart.width, chart.height);
			c.restore();
		}
	};

	function chart(box, config, file, tools) {
		if (typeof Chart === "undefined")
			return null;
		var canvas = el("canvas", { role: "img", "aria-label": file });
		box.appendChild(canvas);
		config.options = config.options || {};
		config.options.animation = false;
		config.options.responsive = true;
		config.options.maintainAspectRatio = false;
		/* The operator's banner (synthetic data...) goes with the
		 * picture when it is saved. */
		if (reg && reg.banner) {
			config.options.plugins = config.options.plugins || {};
			config.options.plugins.subtitle = { display: true, text: reg.banner,
			    color: "#8a5300", padding: { bottom: 8 } };
		}
		config.plugins = [whiteBackground];
		var c = new Chart(canvas, config);
		charts.push(c);
		var b = el("button", { type: "button", "class": "png", text: t("png") });
		b.addEventListener("click", function () {
			var a = el("a", { href: c.toBase64Image("image/png", 1), download: file });
			document.body.appendChild(a);
			a.click();
			a.remove();
		});
		tools.appendChild(b);
		return c;
	}

	function charts_destroy() {
		charts.forEach(function (c) { c.destroy(); });
		charts = [];
	}

	/* Page 1: the plan's targets. */
	function drawPlan(main) {
		return getJSON("/api/plan").then(function (plan) {
			var card = el("section", { "class": "card", id: "plan" });
			var tools = el("div", { "class": "tools" }, csvLink("/api/plan", "plan.csv"));
			card.appendChild(el("h2", { text: t("planTitle")(plan.year) }));
			card.appendChild(tools);
			var table = el("table", { id: "plan-table" });
			table.appendChild(el("thead", null, el("tr", null,
			    el("th", { text: t("metric") }), el("th", { text: t("period") }),
			    el("th", { text: t("value") }), el("th", { "class": "text", text: t("unit") }),
			    el("th", { text: t("target") }), el("th", { text: t("by") }),
			    el("th", { "class": "text", text: t("progress") }),
			    el("th", { "class": "text", text: t("districts") }),
			    el("th", { "class": "text", text: t("targetsAll") }))));
			var body = el("tbody");
			var labels = [], values = [];
			plan.rows.forEach(function (r) {
				var tr = el("tr", { "data-metric": r.metric });
				var has = r.value != null;
				if (has && !r.complete)
					tr.className = "incomplete";
				tr.appendChild(el("td", { "class": "text", text: name(r.metric) }));
				tr.appendChild(el("td", { text: r.period || "—" }));
				tr.appendChild(num("td", r.value, r.unit, r.topic, "value"));
				tr.appendChild(el("td", { "class": "text", text: unitName(r.unit) }));
				var aim = has && r.target != null;
				tr.appendChild(el("td", { text: aim ? fmt(r.target, r.unit) : "—" }));
				tr.appendChild(el("td", { text: aim ? String(r.target_year) : "—" }));
				var bar = el("span");
				var p = aim ? Math.max(0, Math.min(1, r.progress)) : 0;
				bar.style.width = (p * 100).toFixed(1) + "%";
				tr.appendChild(el("td", { "class": "text" }, el("span", { "class": "bar" }, bar),
				    el("span", { "class": "pct", text: aim ? pct(r.progress) : "—" })));
				var dcell = el("td", { "class": "text" });
				if (has) {
					dcell.appendChild(el("span", { "class": "reporting",
					    text: r.districts_reporting + "/" + r.districts_expected }));
					dcell.appendChild(el("span", {
					    "class": r.complete ? "badge ok" : "badge warn",
					    title: r.complete ? null : t("onlyOf")(r.districts_reporting, r.districts_expected),
					    text: r.complete ? t("complete") : t("incomplete") + " · " +
						t("onlyOf")(r.districts_reporting, r.districts_expected) }));
				} else {
					dcell.textContent = t("noData");
				}
				tr.appendChild(dcell);
				tr.appendChild(el("td", { "class": "text muted", text: r.targets.map(function (x) {
					return x.year + ": " + fmt(x.value, r.unit);
				}).join(" · ") + (r.metric === "clusters_100bn" ? " (" + t("clustersNote") + ")" : "") }));
				body.appendChild(tr);
				if (aim) {
					labels.push(name(r.metric));
					values.push(Math.round(r.progress * 1000) / 10);
				}
			});
			table.appendChild(body);
			card.appendChild(table);
			var box = el("div", { "class": "chart-box" });
			card.appendChild(el("h3", { text: t("progressChart") }));
			card.appendChild(box);
			main.appendChild(card);
			chart(box, {
				type: "bar",
				data: { labels: labels, datasets: [{ label: t("progress"), data: values,
				    backgroundColor: plan.rows.filter(function (r) { return r.value != null && r.target != null; })
					.map(function (r) { return r.complete ? "#2f8f5b" : "#d98c1f"; }) }] },
				options: { indexAxis: "y", scales: { x: { min: 0, suggestedMax: 100 } },
				    plugins: { legend: { display: false } } }
			}, "plan-progress.png", tools);
		});
	}

	/* Page 2: the path to 5,000 and 10,000. */
	function drawPath(main) {
		var q = query();
		return getJSON("/api/path" + qs({ baseline: q.baseline })).then(function (p) {
			var card = el("section", { "class": "card", id: "path" });
			var tools = el("div", { "class": "tools" }, csvLink("/api/path" + qs({ baseline: q.baseline }), "path.csv"));
			card.appendChild(el("h2", { text: t("pathTitle") + " (" + unitName(p.unit) + ")" }));
			card.appendChild(tools);
			if (!p.years.length) {
				card.appendChild(el("p", { text: t("noData") }));
				main.appendChild(card);
				return;
			}
			var facts = el("div", { "class": "facts" });
			function fact(k, v, topic, val) {
				var d = el("div", null, el("div", { "class": "k", text: k }));
				var vv = el("div", { "class": "v", text: v });
				if (topic) {
					vv.setAttribute("data-topic", topic);
					vv.setAttribute("data-value", String(val));
				}
				d.appendChild(vv);
				facts.appendChild(d);
			}
			if (p.baseline)
				fact(t("baseline") + " " + p.baseline.year, fmt(p.baseline.value, p.unit));
			if (p.latest)
				fact(t("latest") + " " + p.latest.year, fmt(p.latest.value, p.unit),
				    "agg/" + p.metric + "/*/city/" + p.latest.year, p.latest.value);
			(p.required || []).forEach(function (r) {
				fact(t("required") + " (" + t("toYear")(r.year, fmt(r.target, p.unit)) + ")",
				    r.rate == null ? "—" : pct(r.rate));
			});
			(p.planned || []).forEach(function (r) {
				fact(t("planned") + " (" + r.year + ")", r.rate == null ? "—" : pct(r.rate));
			});
			card.appendChild(facts);
			/* The baseline: any year with a figure. */
			var sel = el("select", { id: "baseline" });
			p.years.forEach(function (y) {
				if (y.value == null)
					return;
				var o = el("option", { value: y.year, text: String(y.year) });
				if (p.baseline && p.baseline.year === y.year)
					o.selected = true;
				sel.appendChild(o);
			});
			sel.addEventListener("change", function () {
				history.replaceState(null, "", "/path" + qs({ baseline: sel.value }));
				redraw();
			});
			tools.insertBefore(el("label", null, t("baseline") + " ", sel), tools.firstChild);
			var box = el("div", { "class": "chart-box tall" });
			card.appendChild(box);
			var last = p.years[p.years.length - 1].year;
			(p.path || []).forEach(function (x) { if (x.year > last) last = x.year; });
			var first = p.years[0].year, labels = [], i;
			for (i = first; i <= last; i++)
				labels.push(String(i));
			function series(get) {
				return labels.map(function (y) { return get(+y); });
			}
			function yearRow(y) {
				return p.years.filter(function (r) { return r.year === y; })[0];
			}
			function pathRow(y) {
				return (p.path || []).filter(function (r) { return r.year === y; })[0];
			}
			var datasets = reg.industries.map(function (ind, k) {
				return { label: name(ind.code), stack: "industries", fill: k === 0 ? "origin" : "-1",
				    borderWidth: 1, pointRadius: 0, borderColor: COLORS[k % COLORS.length],
				    backgroundColor: COLORS[k % COLORS.length] + "99",
				    data: series(function (y) { var r = yearRow(y); return r ? r.industries[ind.code] : null; }) };
			});
			datasets.push({ label: t("total"), stack: "total", borderColor: "#000", borderWidth: 2,
			    pointRadius: 3, fill: false, data: series(function (y) { var r = yearRow(y); return r ? r.value : null; }) });
			datasets.push({ label: t("straight"), stack: "straight", borderColor: "#555", borderDash: [6, 4],
			    pointRadius: 0, fill: false, data: series(function (y) { var r = pathRow(y); return r ? r.straight : null; }) });
			datasets.push({ label: t("growth"), stack: "growth", borderColor: "#b22", borderDash: [2, 3],
			    pointRadius: 0, fill: false, data: series(function (y) { var r = pathRow(y); return r ? r.growth : null; }) });
			chart(box, { type: "line", data: { labels: labels, datasets: datasets },
			    options: { scales: { y: { stacked: true, beginAtZero: true } },
				interaction: { mode: "index", intersect: false } } }, "path.png", tools);
			/* The table behind the chart. */
			var table = el("table", { id: "path-table" });
			var head = el("tr", null, el("th", { text: t("year") }), el("th", { text: t("total") }));
			reg.industries.forEach(function (ind) { head.appendChild(el("th", { text: name(ind.code) })); });
			head.appendChild(el("th", { text: t("districts") }));
			table.appendChild(el("thead", null, head));
			var body = el("tbody");
			p.years.forEach(function (y) {
				var tr = el("tr");
				tr.appendChild(el("td", { text: String(y.year) }));
				tr.appendChild(num("td", y.value, p.unit, "agg/" + p.metric + "/*/city/" + y.year));
				reg.industries.forEach(function (ind) {
					tr.appendChild(num("td", y.industries[ind.code], p.unit,
					    "agg/" + p.metric + "/" + ind.code + "/city/" + y.year));
				});
				var d = el("td", { text: y.districts_reporting + "/" + y.districts_expected });
				if (y.districts_reporting < y.districts_expected)
					d.appendChild(el("span", { "class": "badge warn", text: t("incomplete") }));
				tr.appendChild(d);
				body.appendChild(tr);
			});
			table.appendChild(body);
			card.appendChild(table);
			main.appendChild(card);
		});
	}

	/* Page 3: industries × districts. */
	var sortState = { col: -1, desc: true };

	function drawMatrix(main) {
		var q = query();
		var url = "/api/matrix" + qs({ metric: q.metric, period: q.period });
		return getJSON(url).then(function (m) {
			var card = el("section", { "class": "card", id: "matrix" });
			var tools = el("div", { "class": "tools" });
			var msel = el("select", { id: "metric" });
			reg.metrics.forEach(function (x) {
				var o = el("option", { value: x.code, text: name(x.code) });
				if (x.code === m.metric)
					o.selected = true;
				msel.appendChild(o);
			});
			var psel = el("select", { id: "period" });
			m.periods.forEach(function (x) {
				var o = el("option", { value: x, text: x });
				if (x === m.period)
					o.selected = true;
				psel.appendChild(o);
			});
			function go() {
				history.replaceState(null, "", "/matrix" + qs({ metric: msel.value, period: psel.value }));
				redraw();
			}
			msel.addEventListener("change", function () { psel.value = ""; go(); });
			psel.addEventListener("change", go);
			tools.appendChild(el("label", null, t("metric") + " ", msel));
			tools.appendChild(el("label", null, t("period") + " ", psel));
			tools.appendChild(csvLink(url, "matrix.csv"));
			card.appendChild(el("h2", { text: name(m.metric) + " · " + (m.period || "—") +
			    " (" + unitName(m.unit) + ")" }));
			card.appendChild(tools);
			card.appendChild(el("p", { "class": "muted", text: t("sortHint") }));
			if (!m.period) {
				card.appendChild(el("p", { text: t("noData") }));
				main.appendChild(card);
				return;
			}
			var max = 0;
			m.rows.forEach(function (r) {
				r.values.forEach(function (v) { if (v != null && v > max) max = v; });
			});
			var table = el("table", { id: "matrix-table" });
			var head = el("tr", null, el("th", { "class": "text", text: t("industry") }));
			var cols = reg.districts.map(function (d) { return name(d.code); });
			cols.push(t("city"));
			cols.forEach(function (c, i) {
				var th = el("th", { "class": "sortable", text: c, "data-col": i });
				if (sortState.col === i)
					th.className += sortState.desc ? " sorted-desc" : " sorted-asc";
				th.addEventListener("click", function () {
					sortState.desc = sortState.col === i ? !sortState.desc : true;
					sortState.col = i;
					redraw();
				});
				head.appendChild(th);
			});
			table.appendChild(el("thead", null, head));
			var rows = m.rows.slice();
			if (sortState.col >= 0) {
				rows.sort(function (a, b) {
					var x = sortState.col < reg.districts.length ? a.values[sortState.col] : a.total;
					var y = sortState.col < reg.districts.length ? b.values[sortState.col] : b.total;
					x = x == null ? -Infinity : x;
					y = y == null ? -Infinity : y;
					return sortState.desc ? y - x : x - y;
				});
			}
			var body = el("tbody");
			rows.forEach(function (r) {
				var tr = el("tr", { "data-industry": r.industry });
				tr.appendChild(el("td", { "class": "text", text: name(r.industry) }));
				r.values.forEach(function (v, i) {
					var d = reg.districts[i].code;
					var td = el("td");
					var a = el("a", { href: "/history" + qs({ district: d, industry: r.industry,
					    metric: m.metric, period: m.period }), text: fmt(v, m.unit),
					    "data-topic": "agg/" + m.metric + "/" + r.industry + "/" + d + "/" + m.period,
					    "data-value": v == null ? "" : String(v) });
					td.appendChild(a);
					if (v != null && max > 0)
						td.style.backgroundColor = "rgba(31, 95, 139, " + (0.08 + 0.5 * v / max).toFixed(3) + ")";
					tr.appendChild(td);
				});
				tr.appendChild(num("td", r.total, m.unit, "agg/" + m.metric + "/" + r.industry + "/city/" + m.period));
				body.appendChild(tr);
			});
			var tot = el("tr", { "class": "total" }, el("td", { "class": "text", text: t("allIndustries") }));
			m.totals.values.forEach(function (v, i) {
				tot.appendChild(num("td", v, m.unit, "agg/" + m.metric + "/*/" + reg.districts[i].code + "/" + m.period));
			});
			tot.appendChild(num("td", m.totals.total, m.unit, "agg/" + m.metric + "/*/city/" + m.period));
			body.appendChild(tot);
			table.appendChild(body);
			card.appendChild(table);
			if (m.totals.districts_reporting < m.totals.districts_expected)
				card.appendChild(el("p", null, el("span", { "class": "badge warn",
				    text: t("incomplete") + " · " + t("onlyOf")(m.totals.districts_reporting, m.totals.districts_expected) })));
			main.appendChild(card);
		});
	}

	/* A key's revisions: who sent what, when. */
	function drawHistory(main) {
		var q = query();
		var key = { district: q.district, industry: q.industry, metric: q.metric, period: q.period };
		var url = "/api/history" + qs(key);
		return getJSON(url).then(function (h) {
			var card = el("section", { "class": "card", id: "history" });
			card.appendChild(el("h2", { text: t("history") + " · " + name(h.district) + " · " +
			    name(h.industry) + " · " + name(h.metric) + " · " + h.period }));
			var tools = el("div", { "class": "tools" },
			    el("a", { href: "/matrix" + qs({ metric: h.metric, period: h.period }), text: t("back") }),
			    csvLink(url, "history.csv"));
			card.appendChild(tools);
			var unit = h.revisions.length ? h.revisions[h.revisions.length - 1].unit : "";
			var facts = el("div", { "class": "facts" });
			var cur = el("div", { "class": "v", text: fmt(h.value, unit),
			    "data-topic": h.topic, "data-value": h.value == null ? "" : String(h.value) });
			facts.appendChild(el("div", null, el("div", { "class": "k", text: t("current") }), cur));
			card.appendChild(facts);
			if (!h.revisions.length) {
				card.appendChild(el("p", { text: t("noHistory") }));
				main.appendChild(card);
				return;
			}
			if (h.truncated)
				card.appendChild(el("p", { "class": "muted", text: t("truncated") }));
			/* The value by revision, oldest first, each labelled with its
			 * revision and when it was stored: a step, since a value
			 * holds until the next one replaces it. */
			var title = card.firstChild.textContent;
			var box = el("div", { "class": "chart-box small" });
			card.appendChild(el("h3", { text: t("historyChart") + " (" + unitName(unit) + ")" }));
			card.appendChild(box);
			chart(box, { type: "line",
			    data: { labels: h.revisions.map(function (r) {
				return ["#" + r.revision, time(r.stored_at_ms)];
			    }), datasets: [{ label: t("value"), data: h.revisions.map(function (r) { return r.value; }),
				stepped: "before", borderColor: COLORS[0], backgroundColor: COLORS[0],
				pointRadius: 4, fill: false }] },
			    options: { scales: { y: { beginAtZero: true } },
				plugins: { legend: { display: false }, title: { display: true, text: title },
				    tooltip: { callbacks: { afterLabel: function (c) {
					var r = h.revisions[c.dataIndex];
					return (t("statusNames")[r.status] || r.status) + " · " + r.agent_id;
				    } } } } } }, "history.png", tools);
			var table = el("table", { id: "history-table" });
			var head = el("tr");
			["revision", "value", "unit", "sentValue", "sentUnit", "status", "note", "agent",
			    "epoch", "seq", "sentAt", "storedAt"].forEach(function (k) {
				head.appendChild(el("th", { "class": k === "note" || k === "agent" ? "text" : null, text: t(k) }));
			});
			table.appendChild(el("thead", null, head));
			var body = el("tbody");
			h.revisions.slice().reverse().forEach(function (r) {
				body.appendChild(el("tr", { "data-revision": r.revision },
				    el("td", { text: String(r.revision) }),
				    el("td", { "class": "value", text: fmt(r.value, r.unit), "data-value": String(r.value) }),
				    el("td", { "class": "text", text: unitName(r.unit) }),
				    el("td", { text: fmt(r.sent_value, r.sent_unit) }),
				    el("td", { "class": "text", text: unitName(r.sent_unit) }),
				    el("td", { "class": "text", text: t("statusNames")[r.status] || r.status }),
				    el("td", { "class": "note", text: r.note }),
				    el("td", { "class": "text agent", text: r.agent_id }),
				    el("td", { text: r.epoch }),
				    el("td", { text: String(r.seq) }),
				    el("td", { text: time(r.sent_at_ms) }),
				    el("td", { text: time(r.stored_at_ms) })));
			});
			table.appendChild(body);
			card.appendChild(table);
			main.appendChild(card);
		});
	}

	/* Page 4: who reported what, the agents. */
	function drawReporting(main) {
		var q = query();
		var eurl = "/api/expected" + qs({ period: q.period });
		return Promise.all([getJSON(eurl), getJSON("/api/agents").catch(function (e) { return { error: e }; })])
		    .then(function (res) {
			var ex = res[0], ag = res[1];
			var card = el("section", { "class": "card", id: "expected" });
			var psel = el("select", { id: "period" });
			var periods = ex.periods.slice();
			if (periods.indexOf(ex.period) < 0)
				periods.unshift(ex.period);
			periods.forEach(function (x) {
				var o = el("option", { value: x, text: x });
				if (x === ex.period)
					o.selected = true;
				psel.appendChild(o);
			});
			psel.addEventListener("change", function () {
				history.replaceState(null, "", "/reporting" + qs({ period: psel.value }));
				redraw();
			});
			card.appendChild(el("h2", { text: t("reportedTitle")(ex.period) }));
			card.appendChild(el("div", { "class": "tools" }, el("label", null, t("period") + " ", psel),
			    csvLink(eurl, "expected.csv")));
			card.appendChild(el("p", null, el("span", {
			    "class": ex.complete === ex.total ? "badge ok" : "badge warn", id: "complete-count",
			    text: t("completeCount")(ex.complete, ex.total, ex.period) })));
			var table = el("table", { id: "expected-table" });
			var head = el("tr", null, el("th", { "class": "text", text: t("districts") }));
			reg.metrics.forEach(function (m) { head.appendChild(el("th", { text: name(m.code) })); });
			table.appendChild(el("thead", null, head));
			var body = el("tbody");
			ex.districts.forEach(function (d) {
				var tr = el("tr", { "data-district": d.district }, el("td", { "class": "text", text: name(d.district) }));
				reg.metrics.forEach(function (m) {
					var yes = d.reported.indexOf(m.code) >= 0;
					tr.appendChild(el("td", { "class": yes ? "yes" : "no", "data-metric": m.code,
					    text: yes ? "✓ " + t("reported") : "✗ " + t("missing") }));
				});
				body.appendChild(tr);
			});
			table.appendChild(body);
			card.appendChild(table);
			main.appendChild(card);

			var acard = el("section", { "class": "card", id: "agents" });
			acard.appendChild(el("h2", { text: t("agents") }));
			if (ag.error) {
				acard.appendChild(el("p", { "class": "error", text: errorText(ag.error) }));
				main.appendChild(acard);
				return;
			}
			acard.appendChild(el("div", { "class": "tools" }, csvLink("/api/agents", "agents.csv"),
			    el("span", { "class": "muted", text: t("staleAfter")(Math.round(ag.stale_after_s / 360) / 10) })));
			var at = el("table", { id: "agents-table" });
			var ah = el("tr");
			["agent", "epoch", "lastSeq", "accepted", "rejected", "firstSeen", "lastSeen", "status"].forEach(function (k) {
				ah.appendChild(el("th", { "class": k === "agent" || k === "status" ? "text" : null, text: t(k) }));
			});
			at.appendChild(el("thead", null, ah));
			var ab = el("tbody");
			ag.agents.forEach(function (a) {
				ab.appendChild(el("tr", { "class": a.stale ? "stale" : null, "data-agent": a.agent_id },
				    el("td", { "class": "text", text: a.agent_id }),
				    el("td", { text: a.epoch }),
				    el("td", { text: String(a.last_seq) }),
				    el("td", { text: String(a.accepted) }),
				    el("td", { "class": "rejected", text: String(a.rejected) }),
				    el("td", { text: time(a.first_seen_ms) }),
				    el("td", { text: time(a.last_seen_ms) }),
				    el("td", { "class": "text" }, el("span", { "class": a.stale ? "badge warn" : "badge ok",
					text: a.stale ? t("stale") : t("ok") }))));
			});
			at.appendChild(ab);
			acard.appendChild(at);
			main.appendChild(acard);
		});
	}

	var VIEWS = {
		"/plan": { key: "plan", draw: drawPlan, wants: function (topic) {
			return /^agg\/[^/]+\/\*\/city\/\d{4}$/.test(topic);
		} },
		"/path": { key: "path", draw: drawPath, wants: function (topic) {
			return /^agg\/output_value\/[^/]+\/city\/\d{4}$/.test(topic);
		} },
		"/matrix": { key: "matrix", draw: drawMatrix, wants: function () { return true; } },
		"/history": { key: "history", draw: drawHistory, wants: function (topic) {
			var q = query();
			return topic === "agg/" + q.metric + "/" + q.industry + "/" + q.district + "/" + q.period;
		} },
		"/reporting": { key: "reporting", draw: drawReporting, wants: function () { return true; } }
	};
	VIEWS["/"] = VIEWS["/plan"];

	function drawNav() {
		var nav = document.getElementById("nav");
		clear(nav);
		["plan", "path", "matrix", "reporting"].forEach(function (k) {
			var a = el("a", { href: "/" + k, text: t(k) });
			if (view && view.key === k)
				a.className = "current";
			nav.appendChild(a);
		});
		document.getElementById("title").textContent = t("title");
		document.title = t("title") + " · " + t(view ? view.key : "plan");
		document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
		document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
		document.getElementById("footer").textContent = t("footer");
		drawLive();
	}

	function drawLive() {
		var e = document.getElementById("live");
		var up = liveState.connected && liveState.live;
		e.className = "live " + (up ? "up" : "down");
		e.textContent = up ? t("live") + (liveState.at ? " · " + t("updated") + " " + time(liveState.at).slice(11) : "")
		    : liveState.connected ? t("waiting") : t("down");
	}

	var drawing = null, again = false;
	/* The feed's seq as last heard, and as it was when the view was last
	 * drawn: a (re)connection that brings nothing new redraws nothing. */
	var lastSeq = -1, drawnSeq = -2;

	/* Draws the view afresh into a new main, then swaps it in: the page
	 * never shows half a view. One draw at a time. */
	function redraw() {
		if (drawing) {
			again = true;
			return drawing;
		}
		var main = document.getElementById("main");
		var next = el("main", { id: "main" });
		var scroll = window.scrollY;
		document.body.setAttribute("data-busy", "1");
		drawnSeq = lastSeq;
		drawing = view.draw(next).then(function () {
			charts_destroy_old(main);
			main.replaceWith(next);
			window.scrollTo(0, scroll);
			document.body.setAttribute("data-drawn", String(Date.now()));
		}, function (e) {
			charts_destroy_old(main);
			clear(next);
			next.appendChild(el("p", { "class": "error", id: "error", text: errorText(e) }));
			main.replaceWith(next);
			document.body.setAttribute("data-drawn", String(Date.now()));
		}).then(function () {
			drawing = null;
			if (again) {
				again = false;
				redraw();
			}
			idle();
		});
		return drawing;
	}

	/* The charts of the main being replaced. */
	function charts_destroy_old(main) {
		charts = charts.filter(function (c) {
			if (main.contains(c.canvas)) {
				c.destroy();
				return false;
			}
			return true;
		});
	}

	/* Redraws soon: the aggregates of one commit arrive together. While
	 * a redraw is due or under way the body says so (data-busy), for
	 * whoever reads the page by machine. */
	function later() {
		if (redrawTimer)
			return;
		document.body.setAttribute("data-busy", "1");
		redrawTimer = setTimeout(function () {
			redrawTimer = null;
			redraw();
		}, 150);
	}

	function idle() {
		if (!redrawTimer && !drawing)
			document.body.removeAttribute("data-busy");
	}

	function listen() {
		var es = new EventSource("/events");
		function status(ev) {
			try {
				var s = JSON.parse(ev.data);
				liveState.connected = s.connected;
				liveState.live = s.live;
				if (s.seq != null)
					lastSeq = String(s.seq);
			} catch (e) { /* a status without data */ }
			drawLive();
		}
		es.addEventListener("hello", function (ev) {
			status(ev);
			if (lastSeq !== drawnSeq)
				later();
		});
		es.addEventListener("status", status);
		es.addEventListener("resync", function (ev) { status(ev); later(); });
		es.addEventListener("agg", function (ev) {
			var a = JSON.parse(ev.data);
			lastSeq = String(a.seq);
			liveState.at = Date.now();
			liveState.live = true;
			liveState.connected = true;
			drawLive();
			if (view.wants(a.topic))
				later();
		});
		es.addEventListener("error", function () {
			liveState.connected = false;
			drawLive();
		});
	}

	function start() {
		var q = query();
		if (q.lang === "en" || q.lang === "zh")
			localStorage.setItem("lang", q.lang);
		lang = localStorage.getItem("lang") === "en" ? "en" : "zh";
		view = VIEWS[location.pathname] || VIEWS["/plan"];
		document.getElementById("lang").addEventListener("click", function () {
			lang = lang === "zh" ? "en" : "zh";
			localStorage.setItem("lang", lang);
			drawNav();
			redraw();
		});
		Promise.all([getJSON("/api/registry"), getJSON("/api/status")]).then(function (res) {
			var r = res[0], s = res[1];
			liveState.connected = s.connected;
			liveState.live = s.live;
			liveState.at = Number(s.updated_at_ms) || Number(s.snapshot_at_ms);
			lastSeq = String(s.seq);
			reg = r;
			reg.districts.concat(reg.industries, reg.metrics).forEach(function (x) {
				names[x.code] = { zh: x.name_zh, en: x.name_en };
			});
			/* --banner: a line above every view, as text. */
			if (reg.banner)
				document.querySelector("header").after(el("div",
				    { id: "banner", "class": "banner", role: "note", text: reg.banner }));
			drawNav();
			return redraw();
		}).then(listen, function (e) {
			var main = document.getElementById("main");
			clear(main);
			main.appendChild(el("p", { "class": "error", text: errorText(e) }));
		});
	}

	document.addEventListener("DOMContentLoaded", start);
})();
