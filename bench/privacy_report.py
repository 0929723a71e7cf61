#!/usr/bin/env python3
"""The privacy audit's tables (bench/privacy_audit.sh runs it): usage privacy_report.py OUT SCENARIO...

1. Leakage: per scenario and MoE layer, each attack's top-1 (and top-5) token accuracy minus the
   frequency baseline's, in points, for the worst of the victim -> host pairs (the baseline: the
   best row-independent guess on those rows; an attack at or below it learned nothing).
2. Quality: the mean over the three parties of their model's final held-out loss on their own
   domain (party.done), and its change against `private` and `shared` (one run each: the same
   federation differs by about 1% between runs with other seeds).
3. The hub's view (bench/hub_view.py) and the row mechanism's (epsilon, delta) when noise is on.
Writes OUT/privacy-audit.json.
"""
import glob, json, os, sys

ATTACKS = ["freq_own", "expert", "nearest", "surrogate", "whitebox"]


def log_events(path, event):
    out = []
    if os.path.exists(path):
        for line in open(path):
            if f'"event":"{event}"' in line:
                out.append(json.loads(line))
    return out


def leakage(d):
    rows = {}
    for path in sorted(glob.glob(f"{d}/attack-*.json")):
        for p in json.load(open(path))["pairs"]:
            r = rows.setdefault(p["layer"], {"pairs": 0, "freq1": 0.0, "worst": {}})
            r["pairs"] += 1
            f = p["attacks"]["freq"]
            r["freq1"] += f["top1"]
            for a in ATTACKS:
                if a not in p["attacks"]:
                    continue
                s = p["attacks"][a]
                d1, d5 = 100 * (s["top1"] - f["top1"]), 100 * (s["top5"] - f["top5"])
                w = r["worst"].get(a)
                if w is None or d1 > w["top1"]:
                    r["worst"][a] = {"top1": d1, "top5": d5, "pair": f'{p["victim"]}->{p["host"]}'}
    for r in rows.values():
        r["freq1"] = 100 * r["freq1"] / r["pairs"]
    return rows


def main():
    out_dir, scenarios = sys.argv[1], sys.argv[2:]
    res = {}
    for s in scenarios:
        d = f"{out_dir}/{s}"
        done = {p: log_events(f"{d}/party-{p}.log", "party.done") for p in "abc"}
        losses = {p: e[-1]["eval_loss"] for p, e in done.items() if e}
        mech = log_events(f"{d}/party-a.log", "privacy.row_mechanism")
        res[s] = {"leakage": leakage(d), "eval_loss": losses,
                  "mean_eval_loss": sum(losses.values()) / len(losses) if losses else None,
                  "row_mechanism": mech[-1] if mech else None}
        if os.path.exists(f"{d}/hub-view.json"):
            res[s]["hub_view"] = json.load(open(f"{d}/hub-view.json"))
    print("Leakage: top-1 accuracy minus the frequency baseline (points), worst victim->host pair")
    print(f"{'scenario':14} {'layer':>5} {'freq %':>7}" + "".join(f" {a:>9}" for a in ATTACKS))
    for s in scenarios:
        for layer, r in sorted(res[s]["leakage"].items()):
            cells = "".join(f" {r['worst'][a]['top1']:>+9.1f}" if a in r["worst"] else f" {'-':>9}" for a in ATTACKS)
            print(f"{s:14} {layer:>5} {r['freq1']:>7.1f}{cells}")
    print()
    # The hub view's shadow runs are second runs of private and shared (other private seeds): the
    # baselines are the mean of both, and their spread is what seeds alone change.
    for s in list(scenarios):
        d = f"{out_dir}/{s}-shadow"
        if os.path.isdir(d):
            done = {p: log_events(f"{d}/party-{p}.log", "party.done") for p in "abc"}
            losses = {p: e[-1]["eval_loss"] for p, e in done.items() if e}
            if len(losses) == 3:
                res[f"{s}-shadow"] = {"eval_loss": losses, "mean_eval_loss": sum(losses.values()) / 3}
                scenarios.insert(scenarios.index(s) + 1, f"{s}-shadow")
    print("Quality: mean final held-out loss of the parties' models on their own domain")
    print(f"{'scenario':14} {'a':>7} {'b':>7} {'c':>7} {'mean':>7} {'vs private':>11} {'vs shared':>10}")
    base = {}
    for k in ("private", "shared"):
        runs = [res[r]["mean_eval_loss"] for r in (k, f"{k}-shadow") if r in res and res[r].get("mean_eval_loss")]
        base[k] = sum(runs) / len(runs) if runs else None
    for s in scenarios:
        m = res[s]["mean_eval_loss"]
        l = res[s]["eval_loss"]
        rel = lambda b: f"{100 * (m / b - 1):+.2f}%" if (m and b) else "-"
        print(f"{s:14} " + " ".join(f"{l.get(p, float('nan')):>7.4f}" for p in "abc") +
              f" {m if m else float('nan'):>7.4f} {rel(base['private']):>11} {rel(base['shared']):>10}")
    print("(vs: against the mean of the scenario's runs, the *-shadow rows being second runs with other seeds)")
    for s in scenarios:
        hv = res[s].get("hub_view")
        if hv:
            print(f"\nHub view ({s}): by loss {hv['loss']['correct']:g} of 3 parties matched to their corpus, "
                  f"by routing {hv['routing']['correct']:g} of 3 (chance: 1 of 3)")
        mech = res[s].get("row_mechanism")
        if mech:
            print(f"\nRow mechanism ({s}): clip {mech['row_clip']}, sigma {mech['row_noise_std']}, "
                  f"noise multiplier {mech['noise_multiplier']:.3g}: epsilon {mech['eps_per_release']:.3g} per row, "
                  f"{mech['eps_per_pass']:.3g} per pass ({mech['releases_per_pass']:.0f} rows of a position), "
                  f"{mech['eps_run_max']:.3g} for the run at most ({mech['passes_max']:.0f} passes), "
                  f"delta {mech['delta']:g}")
    with open(f"{out_dir}/privacy-audit.json", "w") as f:
        json.dump(res, f, indent=1)
    print(f"\n{out_dir}/privacy-audit.json")


if __name__ == "__main__":
    main()
