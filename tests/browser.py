#!/usr/bin/python3
"""The dashboard in a real browser (ctest: web_browser).

Starts indicatord on free loopback ports in a temporary directory, sends
the synthetic sample data with ten real agents, starts indicator-web, and
drives Debian's headless Chromium through chromedriver (python3-selenium):

- every page loads with no error in the browser's console;
- every figure a page shows (each element with data-topic) equals the
  daemon's snapshot, taken apart from the dashboard (indicator-sub --once);
- a report sent while the plan page is open appears on it within 2 s of
  its acknowledgement, without a reload;
- a note holding <script> and an <img onerror> shows as text on the
  history page, and neither runs;
- the history page's chart has a point for each revision, with its value
  as /api/history gives it, and downloads as a PNG;
- the English switch works;
- the --banner line ("synthetic data", markup in it) shows on every page,
  as text, and in the PNG of a chart (its subtitle);
- the Chinese is drawn with a real font, not as boxes;
- a screenshot of each page is written to OUT (the build tree).

Chromium sees only the fonts of a fresh Debian machine after
tools/setup.sh (a fontconfig of this run's own, FONT_DIRS): DejaVu, which
fontconfig itself pulls in, and WenQuanYi Micro Hei, the CJK font setup.sh
installs. The screenshots are then the same on every machine, and a CJK font
that only this machine happens to have cannot hide a missing one.

Usage: browser.py BUILD_DIR SOURCE_DIR OUT_DIR. Exit 0 pass, 1 fail, 77 when
Chromium, chromedriver, selenium or the CJK font is missing (CI installs
them, and there CI=true makes that a failure).
"""
import csv
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHROMEDRIVER = "/usr/bin/chromedriver"
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",
             "/usr/share/fonts/truetype/wqy")
WAIT_S = 20  # bound on every wait but the live one
LIVE_S = 2.0  # the bound: a report on the open page
BANNER = "演示：合成数据 <b>synthetic</b> & \"not statistics\""

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:
    webdriver = None


def skip(why):
    print("browser.py: SKIPPED: " + why, file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)


_port_locks = []


def free_port():
    """A port below the ephemeral range, reserved for this process's life
    by an flock in the directory the C suites use (tests/harness.c,
    harness_free_port), and checked free by a bind."""
    d = os.path.join(os.environ.get("TMPDIR") or "/tmp",
                     "indicatord-test-ports")
    os.makedirs(d, mode=0o1777, exist_ok=True)
    lo, hi = 20000, 32000
    start = (os.getpid() * 7919 + int(time.monotonic() * 1000)) % (hi - lo)
    for i in range(hi - lo):
        port = lo + (start + i) % (hi - lo)
        f = open(os.path.join(d, str(port)), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                f.close()
                continue
        _port_locks.append(f)
        return port
    raise AssertionError("no free port in %d..%d" % (lo, hi))


def wait_for(what, fn, timeout=WAIT_S, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" %
                                 (timeout, what))
        time.sleep(step)


def log_has(path, needle):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return needle in f.read()
    except FileNotFoundError:
        return False


class Run:
    def __init__(self, build, src, out):
        self.build, self.src, self.out = build, src, out
        self.tmp = tempfile.mkdtemp(prefix="indicator-browser.")
        self.procs = []
        self.ports = [free_port() for _ in range(4)]
        while len(set(self.ports)) < 4:
            self.ports = [free_port() for _ in range(4)]
        ing, pub, snap, web = self.ports
        self.ingest = "tcp://127.0.0.1:%d" % ing
        self.url = "http://127.0.0.1:%d" % web
        self.conf = os.path.join(self.tmp, "indicatord.conf")
        with open(os.path.join(src, "conf", "indicatord.conf"),
                  encoding="utf-8") as f:
            text = f.read()
        text += ("\n[daemon]\ningest = %s\npublish = tcp://127.0.0.1:%d\n"
                 "snapshot = tcp://127.0.0.1:%d\ndata_dir = %s\n" %
                 (self.ingest, pub, snap, os.path.join(self.tmp, "data")))
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text)
        self.seqs = {}

    def bin(self, name):
        return os.path.join(self.build, name)

    def spawn(self, argv, log):
        f = open(os.path.join(self.tmp, log), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=f,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def start(self):
        log = os.path.join(self.tmp, "indicatord.log")
        self.spawn([self.bin("indicatord"), "-c", self.conf],
                   "indicatord.log")
        wait_for("indicatord ready", lambda: log_has(log, "ready"))
        sample = os.path.join(self.tmp, "sample")
        subprocess.run([self.bin("indicator-gen-sample"), sample],
                       check=True, capture_output=True, timeout=60)
        agents = []
        for name in sorted(os.listdir(sample)):
            code = name[:-4]
            agents.append(subprocess.Popen(
                [self.bin("indicator-agent"), "--id", "agent-" + code,
                 "--district", code, "--endpoint", self.ingest,
                 "--outbox", os.path.join(self.tmp, "outbox-" + code),
                 "--timeout", "60", "send", os.path.join(sample, name)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for a in agents:
            assert a.wait(timeout=90) == 0, "an agent failed"
        log = os.path.join(self.tmp, "web.log")
        self.spawn([self.bin("indicator-web"), "-c", self.conf, "--listen",
                    self.url[len("http://"):], "--banner", BANNER],
                   "web.log")
        wait_for("indicator-web's snapshot",
                 lambda: log_has(log, "feed: snapshot of"))

    def send(self, district, rows):
        """Sends rows (industry, metric, period, value, unit, note) as the
        district's agent; returns once the daemon acknowledged them."""
        path = os.path.join(self.tmp, "extra-%s-%d.csv" %
                            (district, len(self.procs)))
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["industry", "metric", "period", "value", "unit",
                        "status", "note"])
            for r in rows:
                w.writerow(list(r[:5]) + ["REVISED", r[5]])
        subprocess.run(
            [self.bin("indicator-agent"), "--id", "agent-" + district,
             "--district", district, "--endpoint", self.ingest,
             "--outbox", os.path.join(self.tmp, "outbox-" + district),
             "--timeout", "30", "send", path],
            check=True, capture_output=True, timeout=60)

    def snapshot(self):
        """topic -> aggregate, from the daemon itself."""
        out = subprocess.run([self.bin("indicator-sub"), "-c", self.conf,
                              "--once", "--json"], check=True,
                             capture_output=True, timeout=60).stdout
        aggs = {}
        for line in out.decode().splitlines():
            a = json.loads(line)
            aggs[a["topic"]] = a
        return aggs

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def fonts_private(tmp):
    """A fontconfig with FONT_DIRS only, for Chromium and what it starts
    (the environment is inherited): the configuration's rules (aliases,
    hinting) from /etc/fonts/conf.d, its cache in tmp."""
    path = os.path.join(tmp, "fonts.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0"?>\n'
                '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
                "<fontconfig>\n")
        for d in FONT_DIRS:
            f.write("  <dir>%s</dir>\n" % d)
        f.write('  <cachedir>%s</cachedir>\n'
                '  <include ignore_missing="yes">/etc/fonts/conf.d</include>\n'
                "</fontconfig>\n" % os.path.join(tmp, "fontcache"))
    os.environ["FONTCONFIG_FILE"] = path


def cjk_drawn(d):
    """Whether the page's font draws Chinese: two different ideographs
    drawn on a canvas differ, where a missing glyph is the same box for
    both."""
    return d.execute_script("""
        function px(ch) {
            var c = document.createElement("canvas");
            c.width = 48; c.height = 48;
            var x = c.getContext("2d");
            x.font = "40px " + getComputedStyle(document.body).fontFamily;
            x.fillText(ch, 2, 40);
            return c.toDataURL();
        }
        return px("\u82cf") !== px("\u5dde");""")


def browser(profile):
    o = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", "--lang=zh-CN",
                 "--user-data-dir=" + profile):
        o.add_argument(flag)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_page_load_timeout(WAIT_S)
    d.set_script_timeout(WAIT_S)
    return d


def console_errors(d):
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]


def drawn(d):
    """The page drawn and no redraw due (the body's data-busy)."""
    return d.execute_script(
        "return document.body.getAttribute('data-drawn') && "
        "!document.body.hasAttribute('data-busy')")


def load(d, url, page):
    d.get(url + page)
    wait_for(page + " drawn", lambda: drawn(d))
    errs = console_errors(d)
    assert not errs, "%s: console errors: %s" % (page, errs)
    assert not d.find_elements(By.ID, "error"), \
        "%s shows an error: %s" % (page, d.find_element(By.ID, "error").text)


def shown(el_text):
    return float(el_text.replace(",", ""))


def check_figures(d, page, snap):
    """Every figure on the page equals the snapshot's, as a number and as
    shown (two decimals for money, whole counts)."""
    els = d.find_elements(By.CSS_SELECTOR, "[data-topic]")
    n = 0
    for e in els:
        topic = e.get_attribute("data-topic")
        value = e.get_attribute("data-value")
        a = snap.get(topic)
        if a is None:
            assert value == "" and e.text == "—", \
                "%s: %s shows %r, not in the snapshot" % (page, topic, e.text)
            continue
        assert float(value) == a["value"], "%s: %s is %s, snapshot %r" % (
            page, topic, value, a["value"])
        want = round(a["value"], 2) if a["unit"].startswith("CNY") \
            else a["value"]
        assert abs(shown(e.text) - want) < 1e-9, "%s: %s shows %r, " \
            "snapshot %r" % (page, topic, e.text, a["value"])
        n += 1
    assert n > 0, page + ": no figures"
    return n


def main():
    if len(sys.argv) != 4:
        print("usage: browser.py BUILD_DIR SOURCE_DIR OUT_DIR",
              file=sys.stderr)
        return 2
    build, src, out = sys.argv[1:]
    if webdriver is None:
        skip("python3-selenium is not installed")
    if not os.access(CHROMEDRIVER, os.X_OK) or not shutil.which("chromium"):
        skip("chromium and chromium-driver are not installed")
    if not os.path.exists(CJK_FONT):
        skip("fonts-wqy-microhei is not installed")
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "web-failure.png")):
        os.remove(os.path.join(out, "web-failure.png"))
    run = Run(build, src, out)
    d = None
    try:
        run.start()
        fonts_private(run.tmp)
        d = browser(os.path.join(run.tmp, "profile"))
        snap = run.snapshot()
        key = ("district=320583&industry=quantum&metric=output_value"
               "&period=2025")
        hostile = ('<script>window.__pwned=1</script>'
                   '<img src=x onerror="window.__pwned=2"> & "q"')
        run.send("320583", [("quantum", "output_value", "2025", 9.5,
                             "CNY_100M", hostile)])
        snap = run.snapshot()
        pages = [("/plan", "plan"), ("/path", "path"),
                 ("/matrix", "matrix"), ("/history?" + key, "history"),
                 ("/reporting", "reporting")]
        for page, name in pages:
            load(d, run.url, page)
            assert cjk_drawn(d), "%s: the Chinese shows as boxes" % page
            banner = d.find_element(By.ID, "banner")
            assert banner.text == BANNER, "%s: banner %r" % (page,
                                                             banner.text)
            assert not banner.find_elements(By.XPATH, "./*"), \
                "%s: the banner holds markup" % page
            n = check_figures(d, page, snap) if name != "reporting" else 0
            d.save_screenshot(os.path.join(out, "web-%s.png" % name))
            print("browser.py: %s: loaded, %d figures equal the snapshot" %
                  (page, n))
        # The reporting page: ten districts complete for 2025, the agents.
        load(d, run.url, "/reporting?period=2025")
        assert "10/10" in d.find_element(By.ID, "complete-count").text
        assert len(d.find_elements(By.CSS_SELECTOR,
                                   "#agents-table tbody tr")) == 10

        # The hostile note, as text.
        load(d, run.url, "/history?" + key)
        notes = [e.text for e in d.find_elements(By.CSS_SELECTOR,
                                                  "#history-table td.note")]
        assert hostile in notes, "note not shown as text: %r" % notes
        assert d.execute_script("return window.__pwned") is None
        assert not d.find_elements(By.CSS_SELECTOR, "#history-table img")
        assert not d.find_elements(By.CSS_SELECTOR, "main script")
        print("browser.py: the hostile note shows as text and runs nothing")

        # The history's chart: a point per revision, oldest first, with
        # the values the JSON gives; saved as a PNG by its button.
        with urllib.request.urlopen(run.url + "/api/history?" + key,
                                    timeout=WAIT_S) as r:
            revs = json.loads(r.read().decode())["revisions"]
        assert len(revs) == 2, "revisions: %r" % revs
        points = d.execute_script(
            "var c = Chart.getChart(document.querySelector("
            "'#history canvas'));"
            "return [c.data.datasets[0].data, c.data.labels];")
        assert points[0] == [r["value"] for r in revs], \
            "history chart %r, revisions %r" % (points, revs)
        assert [lab[0] for lab in points[1]] == \
            ["#%d" % r["revision"] for r in revs], points[1]
        d.find_element(By.CSS_SELECTOR, "#history button.png")
        png = d.execute_script(
            "return Chart.getChart(document.querySelector("
            "'#history canvas')).toBase64Image('image/png', 1);")
        assert png.startswith("data:image/png;base64,") and len(png) > 1000
        d.save_screenshot(os.path.join(out, "web-history.png"))
        print("browser.py: the history chart has the %d revisions" %
              len(revs))

        # Live: a report appears on the open plan page without a reload.
        load(d, run.url, "/plan")
        d.execute_script("window.__same_page = true")
        topic = "agg/output_value/*/city/2025"
        before = snap[topic]["value"]
        run.send("320583", [("photonics", "output_value", "2025", 500.25,
                             "CNY_100M", "live test")])
        acked = time.monotonic()
        after = run.snapshot()[topic]["value"]
        assert after != before
        sel = '[data-topic="%s"]' % topic

        def updated():
            try:
                e = d.find_element(By.CSS_SELECTOR, sel)
                return float(e.get_attribute("data-value")) == after
            except Exception:
                return False
        wait_for("the new total on the open page", updated, timeout=LIVE_S,
                 step=0.02)
        took = time.monotonic() - acked
        assert d.execute_script("return window.__same_page") is True, \
            "the page was reloaded"
        check_figures(d, "/plan (live)", run.snapshot())
        assert not console_errors(d)
        print("browser.py: a report reached the open page %.2f s after "
              "its ack" % took)
        d.save_screenshot(os.path.join(out, "web-plan-live.png"))

        # English.
        d.find_element(By.ID, "lang").click()
        wait_for("English", lambda: d.find_element(By.ID, "title").text
                 .startswith("Suzhou"))
        wait_for("English page", lambda: "Progress toward" in
                 d.find_element(By.TAG_NAME, "main").text)
        d.save_screenshot(os.path.join(out, "web-plan-en.png"))
        # The chart as saved carries the banner.
        subtitle = d.execute_script(
            "var c = Chart.getChart(document.querySelector('canvas'));"
            "return c.options.plugins.subtitle.text;")
        assert subtitle == BANNER, "chart subtitle %r" % subtitle
        assert not console_errors(d)
        print("browser.py: screenshots in " + out)
        print("browser.py: 1 passed, 0 failed")
        return 0
    except Exception as e:  # noqa: a failure, reported as one
        print("browser.py: FAIL: %s: %s" % (type(e).__name__, e),
              file=sys.stderr)
        for log in ("indicatord.log", "web.log"):
            p = os.path.join(run.tmp, log)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    print("--- %s (end)\n%s" % (log, f.read()[-2000:]),
                          file=sys.stderr)
        if d is not None:
            try:
                d.save_screenshot(os.path.join(out, "web-failure.png"))
            except Exception:
                pass
        return 1
    finally:
        if d is not None:
            d.quit()
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
