#!/usr/bin/env python3
"""Launches a pcmoe federation of a hub and N parties on this host for benchmarks (all parties on
one corpus), waits for it to finish, and prints one JSON summary on stdout: per party its peak
memory (allocated and reserved), memory footprint estimate, median step time split into local
work, time blocked on hosts and (de)serialisation, host compute, bytes on the wire per step
against the minimum; and the federation's throughput (tokens/s over the steady part, from the
hub's per-step timestamps). Every process is ended by PID, also on Ctrl-C or a timeout.

usage: federation.py --bin BUILD/apps --preset FILE --parties N --steps S --out DIR --corpus PATH
                     [--devices cuda:0,cuda:1] [--set key=value ...] [--timeout S] [--warm K] [--plain]

CURVE on every socket by default, as pcmoe runs (keys made with the build's pcmoe-ctl keygen in
DIR/keys; the configs name them the way every pcmoe since 1.0 reads, so bench/builds-ab.sh can run
old builds too); --plain: plain mode (hub.insecure, party.insecure: builds with protocol 1.2).
"""
import argparse, json, os, signal, socket, statistics, subprocess, sys, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_jsonl(path):
    out = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--parties", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--format", default="fortune")
    ap.add_argument("--devices", default="cpu", help="comma list; party i gets devices[i % len]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="sets", help="shared model/train override")
    ap.add_argument("--party-set", action="append", default=[], help="override for every party only")
    ap.add_argument("--hub-set", action="append", default=[], help="override for the hub only (hub.schedule=...)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--warm", type=int, default=5, help="global steps excluded from throughput")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "ipc"],
                    help="the parties' expert services: loopback TCP or ipc:// (Unix domain sockets)")
    ap.add_argument("--plain", action="store_true", help="no CURVE (the wire without encryption)")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    port = free_port()
    hub_ep = f"tcp://127.0.0.1:{port}"
    preset = os.path.abspath(a.preset)
    ids = [f"p{i}" for i in range(a.parties)]
    devices = a.devices.split(",")
    pub = {}
    if not a.plain:
        os.makedirs(f"{a.out}/keys", exist_ok=True)
        for name in ["hub"] + ids:
            pub[name] = subprocess.run([f"{a.bin}/pcmoe-ctl", "keygen", "--out", f"{a.out}/keys/{name}.key"],
                                       check=True, stdout=subprocess.PIPE, text=True).stdout.split()[-1]
    with open(f"{a.out}/hub.yaml", "w") as f:
        f.write(f"preset: {preset}\nhub:\n  bind: {hub_ep}\n  parties:\n")
        for i in ids:
            f.write(f"    - id: {i}\n" + (f"      public_key: '{pub[i]}'\n" if pub else ""))
        f.write(f"  out_dir: {a.out}/hub\n  log_file: {a.out}/hub.log\n  party_timeout_ms: 60000\n  final_snapshot: false\n  resume: false\n")
        f.write(f"  secret_key_file: {a.out}/keys/hub.key\n" if pub else "  insecure: true\n")
    for n, i in enumerate(ids):
        with open(f"{a.out}/{i}.yaml", "w") as f:
            bind = "tcp://127.0.0.1:*" if a.transport == "tcp" else "ipc://*"
            f.write(f"preset: {preset}\nparty:\n  id: {i}\n  hub: {hub_ep}\n  expert_bind: {bind}\n"
                    f"  request_timeout_ms: 120000\n  hub_timeout_ms: 300000\n" +
                    (f"  curve: {{secret_key_file: {a.out}/keys/{i}.key, hub_public_key: '{pub['hub']}'}}\n" if pub
                     else "  insecure: true\n") +
                    f"data:\n  sources:\n    - path: {a.corpus}\n      format: {a.format}\n"
                    f"run:\n  out_dir: {a.out}/{i}\n  device: {devices[n % len(devices)]}\n  seed: {1000 + n}\n"
                    f"  threads: {a.threads}\n  log_file: {a.out}/{i}.log\n  resume: false\n  save_on_exit: false\n")
    shared = [f"--set=train.steps={a.steps}"] + [f"--set={s}" for s in a.sets]
    env = dict(os.environ)
    procs = []

    def stop_all(sig=signal.SIGTERM):
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    try:
        procs.append(subprocess.Popen([f"{a.bin}/pcmoe-hub", "--config", f"{a.out}/hub.yaml"] + shared +
                                      [f"--set={s}" for s in a.hub_set],
                                      stdout=open(f"{a.out}/hub.out", "w"), stderr=subprocess.STDOUT, env=env))
        for i in ids:
            procs.append(subprocess.Popen([f"{a.bin}/pcmoe-party", "--config", f"{a.out}/{i}.yaml"] + shared +
                                          [f"--set={s}" for s in a.party_set],
                                          stdout=open(f"{a.out}/{i}.out", "w"), stderr=subprocess.STDOUT, env=env))
        t0 = time.time()
        while any(p.poll() is None for p in procs):
            if time.time() - t0 > a.timeout:
                print(f"federation.py: timeout after {a.timeout} s", file=sys.stderr)
                stop_all()
                time.sleep(5)
                stop_all(signal.SIGKILL)
                break
            bad = [p for p in procs if p.poll() not in (None, 0)]
            if bad:
                print(f"federation.py: a process exited with {bad[0].returncode}; see {a.out}/*.out", file=sys.stderr)
                stop_all(signal.SIGKILL)
                for name in ["hub"] + ids:
                    for ext in ("out", "log"):
                        path = f"{a.out}/{name}.{ext}"
                        if os.path.exists(path):
                            lines = open(path, errors="replace").read().splitlines()[-6:]
                            print(f"--- {path}\n" + "\n".join(l[:400] for l in lines), file=sys.stderr)
                break
            time.sleep(0.5)
        wall = time.time() - t0
    except KeyboardInterrupt:
        stop_all()
        raise
    finally:
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    # ---- summary ----
    load = read_jsonl(f"{a.out}/hub/expert_load.jsonl")
    summary = {"parties": a.parties, "steps": a.steps, "devices": devices, "wall_s": wall, "transport": a.transport,
               "exit_codes": [p.returncode for p in procs], "party": {}}
        # One line per accepted step report: sequential one per global step, concurrent one per party
    # and round (the same step). Throughput over the steady steps: from the last report of the
    # first steady step to the last report of the last one.
    steps = sorted({r["step"] for r in load})
    if len(steps) > a.warm + 1:
        def ts(r):
            import datetime
            return datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        first, last = steps[a.warm], steps[-1]
        t_first = max(ts(r) for r in load if r["step"] == first)
        t_last = max(ts(r) for r in load if r["step"] == last)
        dt = t_last - t_first
        tokens = sum(r["tokens"] for r in load if first < r["step"] <= last)
        summary["tokens_per_s"] = tokens / dt if dt > 0 else None
        summary["step_ms"] = 1e3 * dt / (last - first)
    for i in ids:
        m = read_jsonl(f"{a.out}/{i}/metrics.jsonl")
        logs = read_jsonl(f"{a.out}/{i}.log")
        fp = next((r for r in logs if r.get("event") == "party.footprint"), {})
        done = next((r for r in logs if r.get("event") == "party.done"), {})
        p = {"steps": len(m), "footprint_bytes": fp.get("total_bytes"), "footprint_min_bytes": fp.get("minimum_bytes"),
             "peak_allocated_bytes": max([r.get("peak_memory_bytes", 0) for r in m] + [done.get("peak_memory_bytes", 0)]),
             "peak_reserved_bytes": max([r.get("peak_reserved_bytes", 0) for r in m] + [done.get("peak_reserved_bytes", 0)]),
             "host_recomputed": done.get("host_recomputed"), "host_busy": done.get("host_busy"),
             "busy_retries": done.get("busy_retries")}
        rows = [r for r in m if "eval_loss" not in r]
        # The warm-up steps are left out of the medians too (a fresh model's routers concentrate a
        # layer's rows on few experts for its first steps; WARM in bench/speed.sh).
        steady = [r for r in rows if r.get("step", 0) >= a.warm]
        if len(steady) > 2:
            rows = steady
        if len(rows) > 2:
            rows = rows[1:]  # first step pays for warm-up
            # per-step deltas of the cumulative counters
            def deltas(key):
                out, prev = [], None
                for r in m:
                    v = r.get(key)
                    if prev is not None and v is not None and "eval_loss" not in r:
                        out.append(v - prev)
                    prev = v
                return out[1:] if len(out) > 1 else out
            p["median_step_ms"] = statistics.median(r["step_ms"] for r in rows)
            p["median_wait_ms"] = statistics.median(deltas("remote_wait_ms") or [0])
            p["median_serialize_ms"] = statistics.median(deltas("serialize_ms") or [0])
            keys = ["forward_ms", "forward_wait_ms", "forward_serialize_ms", "backward_ms", "backward_wait_ms",
                    "backward_serialize_ms", "update_ms", "update_wait_ms", "data_ms"]
            keys += sorted({k for r in rows for k in r if k.startswith("tl_")})  # the per-step timeline
            for k in keys:
                vals = [r[k] for r in rows if k in r]
                if vals:
                    p["median_" + k] = statistics.median(vals)
            p["median_bytes_sent"] = statistics.median(r["bytes_sent"] for r in rows)
            p["median_bytes_received"] = statistics.median(r["bytes_received"] for r in rows)
            rows_per_step = deltas("rows_sent_total")
            if rows_per_step:
                p["median_rows_sent"] = statistics.median(rows_per_step)
        summary["party"][i] = p
    # Host compute during training: each party's host_compute_ms counter between its first and
    # last own step, summed, per global step in that span (the final evaluation is excluded).
    total, span = 0.0, 0
    for i in ids:
        m = read_jsonl(f"{a.out}/{i}/metrics.jsonl")
        if len(m) > 1:
            total += m[-1].get("host_compute_ms", 0) - m[0].get("host_compute_ms", 0)
            span = max(span, m[-1]["step"] - m[0]["step"])
    summary["host_compute_ms_per_step"] = total / span if span else None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
