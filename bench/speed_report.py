#!/usr/bin/env python3
"""The table of bench/speed.sh from its run folder: central and each federation variant side by side
(tokens/s, step ms, bytes per step, the transport's measured GB/s, the bound max(central step,
bytes / GB/s), step / bound), then per variant where a party's step goes (medians over steps, then
over parties): the requester's phases on its own clock, and the requests as the hosts reported
them (sums over a step's requests, shown per request); last, every party's peak device memory
against pcmoe-central's. Writes bench-speed-<tag>.json beside the run folder.

usage: speed_report.py RUN_DIR PRESET PARTIES DEVICES VARIANT...   (VARIANT: <wire>-<tcp|ipc>[-conc])
A -conc variant is concurrent rounds: its step is a round (every party's step), its bytes all
parties', its bound max(central of equal compute, bytes / GB/s).
"""
import json
import re
import statistics
import sys


def med(ps, key):
    vals = [p.get(key) for p in ps if p.get(key) is not None]
    return statistics.median(vals) if vals else 0.0


def main():
    d, preset, n, devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    variants = sys.argv[5:]
    rows = [json.loads(l) for l in open(f"{d}/central/metrics.jsonl")]
    cms = statistics.median(r["step_ms"] for r in rows[8:])
    tokens = rows[1]["tokens"] - rows[0]["tokens"]
    c_tps = tokens / (cms / 1e3)
    gbps = 0.0
    for line in open(f"{d}/transport.txt"):
        if line.startswith("transport_gbps"):
            gbps = float(line.split()[1])
    dm = int(re.search(r"d_model:\s*(\d+)", open(preset).read()).group(1))
    print(f"\n== federation vs central ({preset.split('/')[-1]}, {n} parties on {devices}, "
          f"{tokens} tokens/step; transport measured now: {gbps:.2f} GB/s loopback TCP, best of 1/3/6 streams)")
    print(f"{'':<24}{'tokens/s':>10}{'step ms':>9}{'vs central':>11}{'MB/step':>9}{'bound ms':>10}{'step/bound':>11}")
    print(f"{'pcmoe-central':<24}{c_tps:>10.0f}{cms:>9.1f}{1.0:>11.3f}{'':>9}{cms:>10.1f}{'':>11}")
    report = {"central_tokens_per_s": c_tps, "central_step_ms": cms, "transport_gbps": gbps, "variants": {}}
    eq_ms = None
    try:  # pcmoe-central of equal compute to a concurrent round (one step on PARTIES batches)
        eq = [json.loads(l) for l in open(f"{d}/central-eq/metrics.jsonl")]
        eq_ms = statistics.median(r["step_ms"] for r in eq[8:])
        eq_tps = (eq[1]["tokens"] - eq[0]["tokens"]) / (eq_ms / 1e3)
        print(f"{'central, equal compute':<24}{eq_tps:>10.0f}{eq_ms:>9.1f}{eq_tps / c_tps:>11.3f}{'':>9}{eq_ms:>10.1f}"
              f"{'':>11}   (one step on {n} batches: what a concurrent round computes)")
        report["central_equal_compute"] = {"tokens_per_s": eq_tps, "step_ms": eq_ms}
    except (OSError, IndexError, ValueError):
        pass
    feds = {v: json.load(open(f"{d}/fed-{v}.json")) for v in variants}  # each federation's summary
    for v in variants:
        f = feds[v]
        ps = list(f["party"].values())
        conc = v.endswith("-conc")
        mb = (med(ps, "median_bytes_sent") + med(ps, "median_bytes_received")) / 1e6
        if conc:  # every party's step in one round: all their bytes
            mb = sum(p.get("median_bytes_sent", 0) + p.get("median_bytes_received", 0) for p in ps) / 1e6
        step = f.get("step_ms") or 0
        base = eq_ms if conc and eq_ms else cms
        bound = max(base, mb / 1e3 / gbps * 1e3) if gbps > 0 else base
        tps = f.get("tokens_per_s") or 0
        vs = tps / c_tps
        print(f"{'federation ' + v:<24}{tps:>10.0f}{step:>9.1f}{vs:>11.3f}{mb:>9.1f}{bound:>10.1f}"
              f"{step / bound:>11.2f}" + (f"   vs equal compute {tps / eq_tps:.3f}" if conc and eq_ms else ""))
        # Without any overlap of compute and transfer (each layer's rows out, then back, then the next
        # layer: the order a step's dependencies impose unless a batch is split into micro-batches).
        serial = base + (mb / 1e3 / gbps * 1e3 if gbps > 0 else 0)
        report["variants"][v] = {"federation": f, "mb_per_step": mb, "bound_ms": bound, "step_over_bound": step / bound,
                                 "ratio_vs_central": tps / c_tps, "serial_ms": serial,
                                 "step_over_serial": step / serial}
    print("serial: central step + bytes / GB/s (nothing overlapped, the order of a layer's dependencies)")
    for v, r in report["variants"].items():
        print(f"  {v:<22}{r['serial_ms']:>8.1f} ms   step / serial {r['step_over_serial']:.2f}")
    for v in variants:
        ps = list(feds[v]["party"].values())
        print(f"\n-- where a party's step goes, federation {v} (ms, median over steps then parties; "
              f"step {med(ps, 'median_step_ms'):.1f}, data {med(ps, 'median_data_ms'):.1f}, "
              f"update {med(ps, 'median_update_ms'):.1f} of which waiting {med(ps, 'median_update_wait_ms'):.1f})")
        print(f"{'requester':<10}{'total':>8}{'local':>8}{'gather':>8}{'send':>8}{'wait':>8}{'stage':>8}{'h2d':>8}")
        for ph in ("forward", "backward"):
            t = med(ps, f"median_{ph}_ms")
            parts = [med(ps, f"median_tl_{ph}_{k}_ms") for k in ("gather", "send")]
            w = med(ps, f"median_{ph}_wait_ms")
            parts2 = [med(ps, f"median_tl_{ph}_{k}_ms") for k in ("stage", "h2d")]
            local = t - sum(parts) - w - sum(parts2)
            print(f"{ph:<10}{t:>8.1f}{local:>8.1f}{parts[0]:>8.1f}{parts[1]:>8.1f}{w:>8.1f}{parts2[0]:>8.1f}"
                  f"{parts2[1]:>8.1f}")
        print(f"{'per request':<12}{'n/step':>7}{'out':>7}{'stage':>7}{'h2d':>7}{'compute':>8}{'d2h':>7}{'check':>7}"
              f"{'other':>7}{'back':>7}   (host view; out/back: wire + queues, same-clock requests only)")
        for ph in ("forward", "backward"):
            k = f"median_tl_{ph}_host_"
            nreq = med(ps, k + "requests") or 1
            same = med(ps, k + "same_clock") or 1
            vals = [med(ps, k + "out_ms") / same] + [med(ps, k + x + "_ms") / nreq for x in
                                                     ("stage", "h2d", "compute", "d2h", "check", "other")]
            vals.append(med(ps, k + "back_ms") / same)
            print(f"{ph:<12}{nreq:>7.0f}" + "".join(f"{x:>7.2f}" if i != 4 else f"{x:>8.2f}" for i, x in
                                                    enumerate(vals, start=1)))
        wire = v.split("-")[0]
        elem = {"fp32": 4, "bf16": 2, "fp16": 2}.get(wire, 1)
        minimum = med(ps, "median_rows_sent") * 4 * (dm * elem + (4 if wire.startswith("fp8") else 0))
        if minimum:
            bs, br = med(ps, "median_bytes_sent"), med(ps, "median_bytes_received")
            print(f"bytes per step: sent {bs:.0f} + received {br:.0f}; minimum {minimum:.0f}; ratio {(bs + br) / minimum:.3f}")
    memory_table(d, feds, report)
    tag = d.split("speed-")[-1]
    json.dump(report, open(f"{d}/../bench-speed-{tag}.json", "w"))


def memory_table(d, feds, report):
    """Peak device memory of every party (allocated, reserved) and its footprint estimate, against
    pcmoe-central's peak (and central's of equal compute where it ran). CPU runs report 0."""
    gib = 2.0 ** 30
    central = {}
    for name in ("central", "central-eq"):
        try:
            central[name] = json.loads(open(f"{d}/{name}.json").read().strip().splitlines()[-1])["peak_memory_bytes"]
        except (OSError, IndexError, KeyError, ValueError):
            pass
    c = central.get("central", 0)
    print(f"\n-- peak device memory per party (GiB; pcmoe-central {c / gib:.2f}"
          + (f", of equal compute {central['central-eq'] / gib:.2f}" if "central-eq" in central else "") + ")")
    print(f"{'variant':<20}{'allocated min-max':>19}{'reserved max':>14}{'footprint est.':>16}{'max / central':>15}")
    for v, f in feds.items():
        ps = list(f["party"].values())
        alloc = [p.get("peak_allocated_bytes", 0) for p in ps]
        res = max(p.get("peak_reserved_bytes", 0) for p in ps)
        fp = max(p.get("footprint_bytes", 0) for p in ps)
        ratio = max(alloc) / c if c else 0.0
        print(f"{v:<20}{min(alloc) / gib:>9.2f} - {max(alloc) / gib:<7.2f}{res / gib:>14.2f}{fp / gib:>16.2f}{ratio:>15.3f}")
        report["variants"][v]["max_party_peak_over_central"] = ratio


if __name__ == "__main__":
    main()
