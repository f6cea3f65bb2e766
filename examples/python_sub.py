#!/usr/bin/python3
"""A subscriber to indicatord's live aggregates, in Python.

It follows the clone pattern of docs/protocol.md ("The live feed"): subscribe
first, then ask for a snapshot per prefix, keep it, then apply every update
whose seq is greater than the seq of the snapshot that covers its topic.
Subscribed to everything, a gap in seq means updates were lost: it takes a
new snapshot. Each update applied is printed as one JSON line on stdout.

Needs only python3-zmq and python3-protobuf (Debian) and protoc. The
classes come from proto/indicator.proto: by default the script runs
`protoc --python_out` on the repository's copy into a temporary directory;
--proto-dir DIR uses an indicator_pb2.py already generated there.

Exit codes: 0 done (also on SIGINT/SIGTERM, --count reached or --timeout
passed), 1 failure, 2 usage, 3 --timeout passed before --count updates.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import zmq
except ImportError:
    sys.exit("python_sub: python3-zmq is missing (apt-get install "
             "python3-zmq; run with /usr/bin/python3)")

SNAP_TRIES = 3
SNAP_WAIT_S = 2.0
CONNECT_WAIT_S = 5.0
EXIT_SHORT = 3

FIELDS = ("metric", "industry", "scope", "period", "value", "unit",
          "districts_reporting", "districts_expected", "target",
          "target_year", "progress", "revision", "seq", "updated_at_ms")


def log(msg):
    print("python_sub: " + msg, file=sys.stderr, flush=True)


def load_pb2(proto_dir):
    """Imports indicator_pb2 from proto_dir, or generates it from the
    repository's proto/indicator.proto into a temporary directory (returned
    so the caller can remove it)."""
    tmp = None
    if proto_dir is None:
        here = os.path.dirname(os.path.abspath(__file__))
        src = os.path.join(here, "..", "proto")
        if not os.path.exists(os.path.join(src, "indicator.proto")):
            sys.exit("python_sub: no proto/indicator.proto next to the "
                     "script; give --proto-dir DIR with indicator_pb2.py")
        tmp = tempfile.mkdtemp(prefix="python_sub-")
        try:
            subprocess.run(["protoc", "--proto_path=" + src,
                            "--python_out=" + tmp, "indicator.proto"],
                           check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            sys.exit("python_sub: protoc failed: %s" % e)
        proto_dir = tmp
    sys.path.insert(0, proto_dir)
    try:
        import indicator_pb2
    except ImportError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        sys.exit("python_sub: cannot import indicator_pb2 (is "
                 "python3-protobuf installed?): %s" % e)
    return indicator_pb2, tmp


class Subscriber:
    def __init__(self, pb2, args):
        self.pb2 = pb2
        self.args = args
        self.ctx = zmq.Context()
        self.prefixes = args.prefix or [""]
        self.all = "" in self.prefixes
        if self.all:
            self.prefixes = [""]
        self.snap_seq = {p: 0 for p in self.prefixes}
        self.last_seq = 0
        self.state = {}  # topic -> latest Aggregate
        self.applied = 0
        self.sub = None

    def connect(self):
        """SUB first, and wait for its handshake so the subscriptions reach
        the daemon before the snapshot is asked for."""
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 1000000)
        for p in self.prefixes:
            self.sub.setsockopt(zmq.SUBSCRIBE, p.encode())
        mon = self.sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.sub.connect(self.args.publish)
        if not mon.poll(int(CONNECT_WAIT_S * 1000)):
            log("no connection to %s yet; going on" % self.args.publish)
        self.sub.disable_monitor()
        mon.close(0)

    def fetch(self, prefix):
        """One snapshot, on a new DEALER per try (lazy pirate)."""
        req = self.pb2.SnapshotRequest(prefix=prefix).SerializeToString()
        for attempt in range(SNAP_TRIES):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(self.args.snapshot)
            s.send(req)
            try:
                if s.poll(int(SNAP_WAIT_S * 1000)):
                    frames = s.recv_multipart()
                    if len(frames) == 1:
                        snap = self.pb2.Snapshot()
                        snap.ParseFromString(frames[0])
                        return snap
                    log("the snapshot answer is not one frame")
            finally:
                s.close(0)
            if attempt + 1 < SNAP_TRIES:
                log("no snapshot from %s yet, asking again"
                    % self.args.snapshot)
        sys.exit("python_sub: no snapshot from %s after %d tries: is "
                 "indicatord running?" % (self.args.snapshot, SNAP_TRIES))

    def snapshot(self):
        self.state = {}
        for p in self.prefixes:
            snap = self.fetch(p)
            for a in snap.aggregates:
                self.state[topic_of(a)] = a
            self.snap_seq[p] = snap.seq
            if self.all:
                self.last_seq = snap.seq
            log("snapshot of %d aggregates under \"%s\" at seq %d"
                % (len(snap.aggregates), p, snap.seq))

    def apply(self, topic, a):
        covering = [self.snap_seq[p] for p in self.prefixes
                    if topic.startswith(p)]
        if not covering or a.seq <= max(covering):
            return  # already in a snapshot
        if self.all and a.seq != self.last_seq + 1:
            log("gap in seq (expected %d, got %d): taking a new snapshot"
                % (self.last_seq + 1, a.seq))
            self.snapshot()
            return
        self.last_seq = a.seq
        self.state[topic] = a
        self.applied += 1
        print(json.dumps(json_line("update", topic, a), ensure_ascii=False),
              flush=True)

    def run(self):
        deadline = (time.monotonic() + self.args.timeout
                    if self.args.timeout else None)
        while self.args.count is None or self.applied < self.args.count:
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    if self.args.count is not None:
                        log("timeout with %d of %d updates"
                            % (self.applied, self.args.count))
                        return EXIT_SHORT
                    return 0
            if not self.sub.poll(None if wait is None else int(wait * 1000)):
                continue
            frames = self.sub.recv_multipart()
            if len(frames) != 2:
                log("a message of %d frames skipped" % len(frames))
                continue
            a = self.pb2.Aggregate()
            try:
                a.ParseFromString(frames[1])
                topic = frames[0].decode()
            except Exception:
                log("an update that does not decode skipped")
                continue
            self.apply(topic, a)
        return 0

    def close(self):
        if self.sub is not None:
            self.sub.close(0)
        self.ctx.term()


def json_line(source, topic, a):
    """The aggregate as indicator-sub prints it: 64-bit integers as
    strings (jq and JavaScript would round them), and null for target,
    target_year and progress where no target applies."""
    line = {"source": source, "topic": topic}
    for f in FIELDS:
        v = getattr(a, f)
        if f in ("revision", "seq", "updated_at_ms"):
            v = str(v)
        elif f in ("target", "target_year", "progress") and \
                a.target_year == 0:
            v = None
        line[f] = v
    return line


def topic_of(a):
    return "agg/%s/%s/%s/%s" % (a.metric, a.industry, a.scope, a.period)


def positive_int(s):
    n = int(s)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return n


def positive_float(s):
    n = float(s)
    if not n > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return n


def stop(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(
        description="Follow indicatord's aggregates (clone pattern); "
        "print each update as a JSON line.")
    ap.add_argument("--publish", default="tcp://127.0.0.1:7402")
    ap.add_argument("--snapshot", default="tcp://127.0.0.1:7403")
    ap.add_argument("--count", type=positive_int,
                    help="exit 0 after N updates")
    ap.add_argument("--timeout", type=positive_float,
                    help="exit after S seconds (3 if --count not reached)")
    ap.add_argument("--proto-dir",
                    help="directory holding indicator_pb2.py (default: "
                    "generate it from the repository's proto/)")
    ap.add_argument("prefix", nargs="*",
                    help="topic prefixes (none: everything)")
    args = ap.parse_args()

    pb2, tmp = load_pb2(args.proto_dir)
    signal.signal(signal.SIGTERM, stop)
    sub = Subscriber(pb2, args)
    try:
        sub.connect()
        sub.snapshot()
        return sub.run()
    except KeyboardInterrupt:
        return 0
    finally:
        sub.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
