#!/usr/bin/env python3
"""The hub's view (privacy audit, README "Privacy"): what a curious hub learns from what it
receives. It sees, per step report, each party's training loss, token count and routing counts per
MoE layer and expert (its expert_load.jsonl), plus timings. Question: can it tell which party holds
which corpus, which PROTOCOL.md does not tell it?

Attack: the hub runs a shadow federation of its own on candidate public corpora whose owners it
knows (here: another run of the same federation, with other private seeds), then assigns each
party of the target run to the shadow party whose reports look most alike, over all one-to-one
assignments: by the loss curve (mean absolute difference of the loss over windows of party steps),
and by the routing histogram (cosine similarity of the party's total routing counts, all layers).
Score: parties assigned to their true corpus (a random assignment gets 1 of 3 on average).

usage: hub_view.py TARGET_HUB_DIR SHADOW_HUB_DIR [--json OUT]
(party ids name the corpus in both runs: the script checks the assignment against them, the
attack itself never compares ids.)
"""
import itertools, json, math, sys


def reports(hub_dir):
    by_party = {}
    with open(f"{hub_dir}/expert_load.jsonl") as f:
        for line in f:
            r = json.loads(line)
            by_party.setdefault(r["party"], []).append(r)
    return by_party


def loss_curve(rs, windows=10):
    losses = [r["loss"] for r in rs if r["loss"] >= 0]  # -1: withheld (privacy.hub_report minimal)
    if not losses:
        return []
    skip = len(losses) // 10  # warm-up
    losses = losses[skip:]
    n = max(1, len(losses) // windows)
    return [sum(losses[i:i + n]) / len(losses[i:i + n]) for i in range(0, len(losses) - n + 1, n)][:windows]


def routing(rs):
    total = None
    for r in rs:
        flat = [c for layer in r["counts"] for c in layer]
        total = flat if total is None else [a + b for a, b in zip(total, flat)]
    s = math.sqrt(sum(x * x for x in total)) or 1.0
    return [x / s for x in total]


def best_assignments(target, shadow, score):
    """The one-to-one maps target party -> shadow party with the highest summed score (several when
    they tie: a hub with nothing to tell parties apart gets every assignment, scored by the mean)."""
    t, s = sorted(target), sorted(shadow)
    scored = [(sum(score(target[a], shadow[b]) for a, b in zip(t, p)), p) for p in itertools.permutations(s, len(t))]
    top = max(v for v, _ in scored)
    return [dict(zip(t, p)) for v, p in scored if v >= top - 1e-12]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    target, shadow = reports(sys.argv[1]), reports(sys.argv[2])
    out = {}
    curves_t = {p: loss_curve(rs) for p, rs in target.items()}
    curves_s = {p: loss_curve(rs) for p, rs in shadow.items()}
    by_loss = best_assignments(curves_t, curves_s,
                               lambda a, b: -sum(abs(x - y) for x, y in zip(a, b)) / max(1, min(len(a), len(b))))
    by_route = best_assignments({p: routing(rs) for p, rs in target.items()},
                                {p: routing(rs) for p, rs in shadow.items()},
                                lambda a, b: sum(x * y for x, y in zip(a, b)))
    for name, ms in (("loss", by_loss), ("routing", by_route)):
        right = sum(sum(1 for a, b in m.items() if a == b) for m in ms) / len(ms)
        n = len(ms[0])
        how = (", ".join(f"{a}->{b}" for a, b in sorted(ms[0].items())) if len(ms) == 1 else
               f"{len(ms)} assignments tie: nothing to tell the parties apart")
        out[name] = {"assignments": ms, "correct": right, "parties": n}
        print(f"hub view, by {name:7}: {right:g} of {n} parties matched to their corpus ({how}; "
              f"chance: 1 of {n} on average)")
    out["final_loss"] = {p: c[-1] for p, c in curves_t.items() if c}
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
