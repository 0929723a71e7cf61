#!/usr/bin/env python3
"""Joins the request trace of one federation run (PCMOE_TRACE=DIR, lib/common/trace.h: one
trace-<party>-<pid>.jsonl per party, steady-clock ns, one machine) into where each remote request's
time went, hand-over by hand-over, and what a layer's wait for its hosts was made of.

usage: trace_report.py DIR [--skip-steps 3] [--json FILE]

Segments of one request (k = forward or backward), between the stamps of trace.h's points:
  queue     q -> w    the requester's worker outbox, until ZeroMQ took the message
  wire_out  w -> hr   ZeroMQ's queues and TCP, until the host's I/O thread picked it up
  decode    hr -> hd  the host receiving the frames and decoding (NaN scan included)
  stage     hd -> hs  the staging thread's queue and the pinned copy
  to_launch hs -> hl0 the compute thread's queue (launched requests are bounded)
  launch    hl0 -> hl1 the compute thread queueing the device work
  to_done   hl1 -> hc0 until the completion thread took it (it completes in order)
  complete  hc0 -> hc1 waiting for the device, the finiteness flag, the reply built
  to_send   hc1 -> hx  the I/O thread's turn, encoding, ZeroMQ taking the reply
  wire_back hx -> r   ZeroMQ's queues and TCP, until the requester's worker received it
  rdecode   r -> d    the worker decoding the reply (NaN scan included)
  rstage    d -> s    the worker copying it into the staging buffer
  take      s -> t    until the trainer's thread took it
A layer's wait (L0 -> L1: the trainer blocked on its hosts' replies) is split by the request taken
last: its segments, from its queueing on.
"""
import argparse, collections, glob, json, os, statistics, sys

SEGMENTS = [("queue", "q", "w"), ("wire_out", "w", "hr"), ("decode", "hr", "hd"), ("stage", "hd", "hs"),
            ("to_launch", "hs", "hl0"), ("launch", "hl0", "hl1"), ("to_done", "hl1", "hc0"),
            ("complete", "hc0", "hc1"), ("to_send", "hc1", "hx"), ("wire_back", "hx", "r"),
            ("rdecode", "r", "d"), ("rstage", "d", "s"), ("take", "s", "t")]
HOST_POINTS = {"hr", "hd", "hs", "hl0", "hl1", "hc0", "hc1", "hx"}
REQ_POINTS = {"q", "w", "r", "d", "s", "t"}


def load(d):
    procs = {}
    for path in sorted(glob.glob(os.path.join(d, "trace-*.jsonl"))):
        name = os.path.basename(path)[len("trace-"):-len(".jsonl")].rsplit("-", 1)[0]
        ev = []
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                ev.append(json.loads(line))
        procs.setdefault(name, []).extend(ev)
    return procs


def join(procs, skip_steps):
    """requests: (requester, rid, kind) -> {point: ns, 'host': name, 'layer': l, 'bytes': n}"""
    req = collections.defaultdict(dict)
    layers = []  # (requester, kind, layer, t0, t1)
    first_t = {}  # requester -> ns of its (skip_steps)th step start
    for name, ev in procs.items():
        starts = sorted(e["t"] for e in ev if e["e"] == "S")
        first_t[name] = starts[skip_steps] if len(starts) > skip_steps else None
        open_l = {}
        for e in ev:
            if e["e"] in REQ_POINTS:
                r = req[(name, e["r"], e["k"])]
                r.setdefault(e["e"], e["t"])
                if e["e"] == "q":
                    r["layer"] = e["b"]
                if e["e"] == "r":
                    r["bytes_back"] = e["b"]
            elif e["e"] == "L0":
                open_l[e["k"]] = e
            elif e["e"] == "L1" and e["k"] in open_l:
                l0 = open_l.pop(e["k"])
                layers.append((name, e["k"], e["a"], l0["t"], e["t"]))
    for name, ev in procs.items():
        peer_of = {}
        for e in ev:
            if e["e"] == "hr" and "|" in e["g"]:
                p, who = e["g"].split("|", 1)
                peer_of[p] = who
        for e in ev:
            if e["e"] not in HOST_POINTS:
                continue
            who = peer_of.get(e["g"].split("|", 1)[0])
            if who is None:
                continue
            r = req[(who, e["r"], e["k"])]
            r.setdefault(e["e"], e["t"])
            r["host"] = name
            if e["e"] == "hd":
                r["bytes_out"] = e["a"]
    keep = {}
    for k, r in req.items():
        ft = first_t.get(k[0])
        if ft is not None and "q" in r and r["q"] >= ft and "t" in r:
            keep[k] = r
    layers = [x for x in layers if first_t.get(x[0]) is not None and x[3] >= first_t[x[0]]]
    return keep, layers


def seg(r, a, b):
    return (r[b] - r[a]) / 1e6 if a in r and b in r else None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--skip-steps", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    procs = load(a.dir)
    if not procs:
        sys.exit(f"trace_report: no trace-*.jsonl in {a.dir} (run with PCMOE_TRACE={a.dir})")
    reqs, layers = join(procs, a.skip_steps)
    out = {"requests": {}, "layers": {}}
    names = [s[0] for s in SEGMENTS]
    print(f"== request trace: {len(reqs)} requests, {len(layers)} layer waits "
          f"(after each party's first {a.skip_steps} steps), ms, medians")
    print(f"{'':10}{'n':>6}{'MB':>6}" + "".join(f"{n:>10}" for n in names) + f"{'total':>9}")
    for kind, label in (("f", "forward"), ("b", "backward")):
        rs = [r for (_, _, k), r in reqs.items() if k == kind]
        if not rs:
            continue
        vals = [med(seg(r, x, y) for r in rs) for _, x, y in SEGMENTS]
        total = med(seg(r, "q", "t") for r in rs)
        mb = med(r.get("bytes_out") for r in rs) / 1e6
        print(f"{label:10}{len(rs):>6}{mb:>6.2f}" + "".join(f"{v:>10.2f}" for v in vals) + f"{total:>9.2f}")
        out["requests"][label] = dict(zip(names, vals), total=total, n=len(rs), mb_out=mb)
    # A layer's wait and what the last request taken spent it on.
    by_req = collections.defaultdict(list)
    for (who, rid, k), r in reqs.items():
        by_req[(who, k)].append(r)
    print("\n-- a layer's wait (trainer blocked on its hosts) and the request taken last, ms, medians")
    print(f"{'':10}{'n':>6}{'wait':>8}{'span':>8}{'GB/s':>7}{'top':>6}" + "".join(f"{n:>10}" for n in names))
    for kind, label in (("f", "forward"), ("b", "backward")):
        rows, waits, spans, rates, tops = [], [], [], [], []
        for who, k, layer, t0, t1 in layers:
            if k != kind:
                continue
            mine = [r for r in by_req[(who, k)] if r.get("layer") == layer and t0 - 50e6 <= r["q"] <= t1]
            mine = [r for r in mine if r["t"] <= t1 + 1e6]
            if not mine:
                continue
            last = max(mine, key=lambda r: r["t"])
            rows.append(last)
            waits.append((t1 - t0) / 1e6)
            span = (max(r["t"] for r in mine) - min(r["q"] for r in mine)) / 1e6
            spans.append(span)
            nbytes = sum(r.get("bytes_out", 0) + r.get("bytes_back", 0) for r in mine)
            rates.append(nbytes / 1e9 / (span / 1e3) if span > 0 else None)
            per_host = collections.Counter()
            for r in mine:
                per_host[r.get("host", "?")] += r.get("bytes_out", 0) + r.get("bytes_back", 0)
            tops.append(max(per_host.values()) / nbytes if nbytes else None)
        if not rows:
            continue
        vals = [med(seg(r, x, y) for r in rows) for _, x, y in SEGMENTS]
        print(f"{label:10}{len(rows):>6}{med(waits):>8.2f}{med(spans):>8.2f}{med(rates):>7.2f}{med(tops):>6.2f}" +
              "".join(f"{v:>10.2f}" for v in vals))
        out["layers"][label] = dict(zip(names, vals), wait=med(waits), span=med(spans), gbps=med(rates),
                                    top_host_share=med(tops), n=len(rows))
    print("span: the layer's first request queued -> its last reply taken; GB/s: both directions' "
          "bytes over the span;\ntop: the share of the layer's bytes that went to its busiest host "
          "(1 / (parties - 1) when even)")
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
