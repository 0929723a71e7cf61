#!/usr/bin/env python3
"""Does joining pay? One run per setting (bench/quality_study.sh BUILD OUT [SETTING...]); every
number from models evaluated on held-out text with pcmoe-eval, each model on each party's domain.
Every federated row is pcmoe-central mode protocol: the single-process twin of a real federation
(tests [federation] and [concurrent] check that it equals one step for step).

Settings: demo (the demo's three corpora: English fortunes, German fortunes, Linux C headers) and
fortunes3 (data-limited: the English fortune files split by file into three disjoint parties of
about equal size). Rows, with S steps per party (env S):
  isolated      the party alone: its data, S steps (what a party has without joining)
  isolated-mem  the same with the party's memory: its backbone and n_experts / 3 experts
  isolated-lr   isolated with train.expert_lr_scale = EXPERT_LR (the control of concurrent-lr)
  sequential    PC-MoE as in the paper: 3S global steps, one party per step (S each)
  sequential-wall  the same in the wall-clock time of S concurrent rounds on 3 GPUs: S global
                steps (about S/3 each)
  concurrent    PC-MoE concurrent rounds: S rounds, every party one step per round
  central-eq    one model, S steps of one batch of every party (the compute of S rounds)
  union         one model on the union of the data (size-weighted mix), 3S steps
  equal-mix     one model, 3S steps, one party's batch per step in turn (equal mix)
  sequential-shared, concurrent-shared  the same as sequential and concurrent with
                privacy.shared_init: every backbone starts from one shared initialisation (a lever
                that costs privacy: README "Privacy")
  concurrent-rotated  concurrent with shared_init and privacy.rotate_hidden (each party turns the
                shared initialisation by its private rotation: the defence README "Privacy" measures)
  concurrent-lr  concurrent with train.expert_lr_scale = EXPERT_LR (3): an expert takes S steps in S
                rounds (3S in sequential turns), each on the mean of three parties' gradients
Every row but the isolated ones and sequential-wall has the compute of 3S batches.
Env: SETTINGS (when none are named on the command line; "fortunes3 demo"), PRESET
(configs/models/small.yaml), DEVICE (cuda:0), S (400), BATCH (16), JOBS (parallel runs, 6),
EVAL_BATCHES (4), EXPERT_LR (3), ROWS (the rows to train, space-separated; default all; rows trained before in
OUT are kept), EXTRA (more --set for every run, space-separated), DEADLINE_S (a run
still training this many seconds after the setting's start is killed: its row is missing),
KEEP_MODELS (1: keep the exported models; else they are deleted after the evaluation).
Output: OUT/quality-<setting>/ (configs, runs, evals.jsonl), a table per setting on stdout and
OUT/quality-<setting>.json.
"""
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import time

NAMES = {"demo": {"a": "English fortunes", "b": "German fortunes", "c": "Linux C headers"},
         "fortunes3": {"a": "fortunes 1/3", "b": "fortunes 2/3", "c": "fortunes 3/3"}}
ROWS = ["isolated", "isolated-mem", "isolated-lr", "sequential", "sequential-wall", "concurrent", "sequential-shared",
        "concurrent-shared", "concurrent-rotated", "concurrent-lr", "central-eq", "union", "equal-mix"]
PER_PARTY = {"isolated", "isolated-mem", "isolated-lr", "sequential", "sequential-wall", "concurrent", "sequential-shared",
             "concurrent-shared", "concurrent-rotated", "concurrent-lr"}  # a model per party
# How the parties' backbones start (privacy keys of their configs): private seeds (the default),
# one shared initialisation, or that shared initialisation turned by each party's private rotation.
BACKBONES = {"": "", "-shared": "privacy: {shared_init: true}\n",
             "-rotated": "privacy: {shared_init: true, rotate_hidden: true}\n"}


def corpora(root):
    study = f"{root}/.gpu-deps/study"  # the GPU machine's copy (scripts/gpu-deps.sh)
    if os.path.isdir(study):
        return f"{study}/fortunes", f"{study}/fortunes/de", f"{study}/linux"
    return "/usr/share/games/fortunes", "/usr/share/games/fortunes/de", "/usr/include/linux"


def sources(setting, party, root):
    en, de, linux = corpora(root)
    if setting == "demo":
        return {"a": f'{{path: {en}, format: fortune, exclude: ["*.dat", "*.u8"], recursive: false}}',
                "b": f'{{path: {de}, format: fortune, exclude: ["*.dat", "*.u8"]}}',
                "c": f'{{path: {linux}, format: text, include: ["*.h"]}}'}[party]
    # Files largest first, each to the party with the fewest bytes so far: three disjoint shares.
    files = sorted(((os.path.getsize(f"{en}/{f}"), f) for f in os.listdir(en)
                    if os.path.isfile(f"{en}/{f}") and not f.endswith((".dat", ".u8"))), key=lambda t: (-t[0], t[1]))
    share, total = {"a": [], "b": [], "c": []}, {"a": 0, "b": 0, "c": 0}
    for size, f in files:
        p = min("abc", key=lambda q: (total[q], q))
        share[p].append(f)
        total[p] += size
    names = ", ".join(f'"{f}"' for f in share[party])
    return f"{{path: {en}, format: fortune, recursive: false, include: [{names}]}}"


def setup(d, setting, root, preset, device):
    os.makedirs(f"{d}/cfg", exist_ok=True)
    run = f"device: {device}, resume: false, progress: 'off', log_level: warn"
    for i, p in enumerate("abc"):
        src = sources(setting, p, root)
        for tail, privacy in BACKBONES.items():  # mode protocol: its data, private seed and privacy keys
            with open(f"{d}/cfg/party-{p}{tail}.yaml", "w") as f:
                f.write(f"preset: {preset}\nparty: {{id: {p}}}\ndata:\n  sources:\n    - {src}\n"
                        f"run: {{out_dir: {d}/unused, device: {device}, seed: {11 + i}}}\n{privacy}")
        with open(f"{d}/cfg/isolated-{p}.yaml", "w") as f:  # isolated runs, and every evaluation on it
            f.write(f"preset: {preset}\ndata:\n  sources:\n    - {src}\n"
                    f"run: {{out_dir: {d}/isolated-{p}, seed: {11 + i}, {run}}}\n")
    with open(f"{d}/cfg/union.yaml", "w") as f:
        f.write(f"preset: {preset}\ndata:\n  sources:\n" + "".join(f"    - {sources(setting, p, root)}\n" for p in "abc") +
                f"run: {{out_dir: {d}/union, seed: 1, {run}}}\n")
    with open(f"{d}/cfg/hub.yaml", "w") as f:
        f.write(f"preset: {preset}\nhub: {{parties: [{{id: a}}, {{id: b}}, {{id: c}}], seed: 42}}\n")
    for name, mode, tail in [("mix", "mix", "")] + [("protocol" + t, "protocol", t) for t in BACKBONES]:
        with open(f"{d}/cfg/{name}.yaml", "w") as f:
            f.write(f"preset: {preset}\nmode: {mode}\nprotocol: {{party_configs: [party-a{tail}.yaml, "
                    f"party-b{tail}.yaml, party-c{tail}.yaml], hub_config: hub.yaml}}\n"
                    f"run: {{out_dir: {d}/{name}, seed: 1, {run}}}\n")


def runs(d, s, batch, eval_batches, mem_experts, extra, expert_lr):
    warm = min(100, s // 10 + 1)
    common = ["train.batch_size=%d" % batch, "train.eval_every=0", "train.eval_batches=%d" % eval_batches] + extra
    long = ["train.steps=%d" % (3 * s), "train.warmup_steps=%d" % (3 * warm)]
    short = ["train.steps=%d" % s, "train.warmup_steps=%d" % warm]
    out = {}
    for p in "abc":
        out[f"isolated-{p}"] = (f"{d}/cfg/isolated-{p}.yaml", short)
        out[f"isolated-mem-{p}"] = (f"{d}/cfg/isolated-{p}.yaml",
                                    short + [f"model.n_experts={mem_experts}", f"run.out_dir={d}/isolated-mem-{p}"])
        out[f"isolated-lr-{p}"] = (f"{d}/cfg/isolated-{p}.yaml",
                                   short + [f"train.expert_lr_scale={expert_lr}", f"run.out_dir={d}/isolated-lr-{p}"])
    out["sequential"] = (f"{d}/cfg/protocol.yaml", long + ["protocol.schedule=sequential", f"run.out_dir={d}/sequential"])
    out["sequential-wall"] = (f"{d}/cfg/protocol.yaml",
                              short + ["protocol.schedule=sequential", f"run.out_dir={d}/sequential-wall"])
    out["concurrent"] = (f"{d}/cfg/protocol.yaml", short + ["protocol.schedule=concurrent", f"run.out_dir={d}/concurrent"])
    out["sequential-shared"] = (f"{d}/cfg/protocol-shared.yaml",
                                long + ["protocol.schedule=sequential", f"run.out_dir={d}/sequential-shared"])
    out["concurrent-shared"] = (f"{d}/cfg/protocol-shared.yaml",
                                short + ["protocol.schedule=concurrent", f"run.out_dir={d}/concurrent-shared"])
    out["concurrent-rotated"] = (f"{d}/cfg/protocol-rotated.yaml",
                                 short + ["protocol.schedule=concurrent", f"run.out_dir={d}/concurrent-rotated"])
    out["concurrent-lr"] = (f"{d}/cfg/protocol.yaml", short + ["protocol.schedule=concurrent", f"train.expert_lr_scale={expert_lr}",
                                                               f"run.out_dir={d}/concurrent-lr"])
    out["central-eq"] = (f"{d}/cfg/mix.yaml", short + ["protocol.mix=all", f"run.out_dir={d}/central-eq"])
    out["union"] = (f"{d}/cfg/union.yaml", long)
    out["equal-mix"] = (f"{d}/cfg/mix.yaml", long + ["protocol.mix=rotate", f"run.out_dir={d}/equal-mix"])
    return {k: (cfg, common + sets) for k, (cfg, sets) in out.items()}


def model_of(d, row, party):
    if row.startswith("isolated"):
        return f"{d}/{row}-{party}/model.pcmoe"
    if row in PER_PARTY:
        return f"{d}/{row}/model-{party}.pcmoe"
    return f"{d}/{row}/model.pcmoe"


def run(cmd, out_path, err_path, deadline):
    with open(err_path, "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.time()) if deadline else None)
        except subprocess.TimeoutExpired:
            p.kill()  # a partial model would be a wrong row: none at all
            p.communicate()
            return "past DEADLINE_S: killed"
    if p.returncode != 0:
        tail = open(err_path).read().splitlines()[-3:]
        return f"exit {p.returncode}: " + " | ".join(tail)
    open(out_path, "w").write(out)
    try:  # the exported model is what is evaluated; the checkpoint (3x its size) is not needed
        ckpt = json.loads(out.strip().splitlines()[-1]).get("checkpoint")
        if ckpt:
            os.remove(ckpt)
    except (KeyError, ValueError, OSError, IndexError):
        pass
    return ""


def study(build, out, setting, root, env):
    d = f"{out}/quality-{setting}"
    preset, device = env["PRESET"], env["DEVICE"]
    s, batch, eval_batches = int(env["S"]), int(env["BATCH"]), int(env["EVAL_BATCHES"])
    n_experts = int(re.search(r"n_experts:\s*(\d+)", open(preset).read()).group(1))
    mem_experts = max(1, n_experts // 3)
    setup(d, setting, root, preset, device)
    todo = runs(d, s, batch, eval_batches, mem_experts, env["EXTRA"].split(), env["EXPERT_LR"])
    wanted = env["ROWS"].split() or ROWS
    bad = [r for r in wanted if r not in ROWS]
    if bad:
        sys.exit(f"quality_study: unknown row(s) in ROWS: {' '.join(bad)} (rows: {' '.join(ROWS)})")
    todo = {k: v for k, v in todo.items() if (k[:-2] if k.startswith("isolated") else k) in wanted}
    print(f"quality_study: {setting}: {len(todo)} runs, {env['JOBS']} at a time (S={s}, batch {batch})", flush=True)
    t0 = time.time()
    deadline = t0 + float(env["DEADLINE_S"]) if env["DEADLINE_S"] else None  # None: no deadline
    with cf.ThreadPoolExecutor(int(env["JOBS"])) as pool:
        jobs = {}
        for name, (cfg, sets) in todo.items():
            if os.path.exists(f"{d}/{name}.json"):
                continue
            cmd = [f"{build}/apps/pcmoe-central", "--config", cfg] + [x for v in sets for x in ("--set", v)]
            jobs[pool.submit(run, cmd, f"{d}/{name}.json", f"{d}/{name}.err", deadline)] = name
        for fut in cf.as_completed(jobs):
            why = fut.result()
            print(f"quality_study: {jobs[fut]} {'FAILED ' + why if why else 'done'} ({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0
    evals = []
    with cf.ThreadPoolExecutor(int(env["JOBS"])) as pool:
        jobs = {}
        for row in ROWS:
            for p in "abc" if row in PER_PARTY else "-":
                m = model_of(d, row, p)
                if not os.path.exists(m):
                    continue
                for dom in "abc":
                    cmd = [f"{build}/apps/pcmoe-eval", "--config", f"{d}/cfg/isolated-{dom}.yaml", "--checkpoint", m,
                           "--batches", str(eval_batches), "--set", "run.log_level=warn"]
                    if row == "isolated-mem":
                        cmd += ["--set", f"model.n_experts={mem_experts}"]
                    cmd += [x for v in env["EXTRA"].split() if v.startswith("model.") for x in ("--set", v)]
                    jobs[pool.submit(subprocess.run, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)] = (
                        row, p, dom)
        for fut in cf.as_completed(jobs):
            row, p, dom = jobs[fut]
            r = fut.result()
            if r.returncode != 0:
                print(f"quality_study: eval {row} {p} on {dom} failed: {r.stderr.strip()[-300:]}", flush=True)
                continue
            e = json.loads(r.stdout)
            e.update(row=row, party=p, domain=dom)
            evals.append(e)
    # A second run of the same setting (rows that failed the first time) keeps the evaluations of
    # the rows done before, whose models are gone (KEEP_MODELS).
    done = {(e["row"], e["party"], e["domain"]) for e in evals}
    if os.path.exists(f"{d}/evals.jsonl"):
        for line in open(f"{d}/evals.jsonl"):
            e = json.loads(line)
            if (e["row"], e["party"], e["domain"]) not in done:
                evals.append(e)
    with open(f"{d}/evals.jsonl", "w") as f:
        for e in evals:
            f.write(json.dumps(e) + "\n")
    if env["KEEP_MODELS"] != "1":
        for row in ROWS:
            for p in "abc":
                try:
                    os.remove(model_of(d, row, p))
                except OSError:
                    pass
    report(d, setting, s, batch, preset, mem_experts, train_s, evals)


def report(d, setting, s, batch, preset, mem_experts, train_s, evals):
    L = {(e["row"], e["party"], e["domain"]): e["loss"] for e in evals}
    names = NAMES[setting]

    def own(row, p):  # the model party p has after `row`, on p's own domain
        return L.get((row, p if row in PER_PARTY else "-", p))

    def union(row, p):
        v = [L.get((row, p if row in PER_PARTY else "-", dom)) for dom in "abc"]
        return sum(v) / 3 if None not in v else None

    print(f"\n== quality, {setting} ({os.path.basename(preset)}, batch {batch}, S = {s} steps per party; "
          f"held-out loss in nats/token, lower is better; trained in {train_s:.0f} s)")
    print("own: the party's model on its own domain's held-out text; union: mean over the three domains")
    head = f"{'row':<18}{'compute':>9}" + "".join(f"{names[p][:16] + ' own':>22}" for p in "abc") + f"{'mean own':>10}{'mean union':>12}"
    print(head)
    res = {"setting": setting, "steps_per_party": s, "batch": batch, "preset": os.path.basename(preset),
           "isolated_mem_experts": mem_experts, "rows": {}}
    for row in ROWS:
        o = [own(row, p) for p in "abc"]
        u = [union(row, p) for p in "abc"]
        if None in o:
            print(f"{row:<18}   (missing)")
            continue
        compute = "S" if row.startswith("isolated") or row == "sequential-wall" else "3S"
        line = f"{row:<18}{compute:>9}" + "".join(f"{x:>22.4f}" for x in o) + f"{sum(o) / 3:>10.4f}"
        line += f"{sum(u) / 3:>12.4f}" if None not in u else f"{'':>12}"
        print(line)
        res["rows"][row] = {"own": dict(zip("abc", o)), "union": dict(zip("abc", u)), "mean_own": sum(o) / 3}
    r = res["rows"]
    if "concurrent" in r and "isolated" in r:
        gains = {p: 1 - r["concurrent"]["own"][p] / r["isolated"]["own"][p] for p in "abc"}
        print("concurrent vs isolated (own domain, gain = 1 - concurrent / isolated): " +
              ", ".join(f"{p} {100 * g:+.1f}%" for p, g in gains.items()) +
              f"   goal >= 3% for every party: {'met' if min(gains.values()) >= 0.03 else 'missed'}")
        res["concurrent_gain_vs_isolated"] = gains
    for lever in ("concurrent-shared", "concurrent-rotated", "concurrent-lr"):  # the same two numbers for each lever's row
        key = lever.replace("-", "_")
        if lever in r and "isolated" in r:
            gains = {p: 1 - r[lever]["own"][p] / r["isolated"]["own"][p] for p in "abc"}
            print(f"{lever} vs isolated (own domain): " + ", ".join(f"{p} {100 * g:+.1f}%" for p, g in gains.items()))
            res[f"{key}_gain_vs_isolated"] = gains
        if lever in r and "central-eq" in r:
            ratio = r[lever]["mean_own"] / r["central-eq"]["mean_own"]
            print(f"{lever} / central of equal compute (mean own-domain loss): {ratio:.4f}")
            res[f"{key}_over_central_eq"] = ratio
    if "concurrent-lr" in r and "isolated-lr" in r:
        gains = {p: 1 - r["concurrent-lr"]["own"][p] / r["isolated-lr"]["own"][p] for p in "abc"}
        print("concurrent-lr vs isolated-lr (the same expert rate alone; own domain): " +
              ", ".join(f"{p} {100 * g:+.1f}%" for p, g in gains.items()))
        res["concurrent_lr_gain_vs_isolated_lr"] = gains
    if "concurrent" in r and "central-eq" in r:
        ratio = r["concurrent"]["mean_own"] / r["central-eq"]["mean_own"]
        print(f"concurrent / central of equal compute (mean own-domain loss): {ratio:.4f}"
              f"   goal <= 1.02: {'met' if ratio <= 1.02 else 'missed'}")
        res["concurrent_over_central_eq"] = ratio
    if "concurrent" in r and "sequential-wall" in r:
        gains = {p: 1 - r["concurrent"]["own"][p] / r["sequential-wall"]["own"][p] for p in "abc"}
        print("concurrent vs sequential in the same wall-clock time on 3 GPUs (own domain): " +
              ", ".join(f"{p} {100 * g:+.1f}%" for p, g in gains.items()))
        res["concurrent_gain_vs_sequential_wall"] = gains
    if "sequential" in r and "isolated" in r:
        gains = {p: 1 - r["sequential"]["own"][p] / r["isolated"]["own"][p] for p in "abc"}
        print("sequential vs isolated (own domain): " + ", ".join(f"{p} {100 * g:+.1f}%" for p, g in gains.items()))
        res["sequential_gain_vs_isolated"] = gains
    json.dump(res, open(f"{d}.json", "w"), indent=1)


def main():
    build, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    settings = sys.argv[3:] or os.environ.get("SETTINGS", "fortunes3 demo").split()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {"PRESET": os.path.abspath(os.environ.get("PRESET", f"{root}/configs/models/small.yaml")),
           "DEVICE": os.environ.get("DEVICE", "cuda:0"), "S": os.environ.get("S", "400"),
           "BATCH": os.environ.get("BATCH", "16"), "JOBS": os.environ.get("JOBS", "6"),
           "EVAL_BATCHES": os.environ.get("EVAL_BATCHES", "4"), "EXTRA": os.environ.get("EXTRA", ""),
           "DEADLINE_S": os.environ.get("DEADLINE_S", ""), "KEEP_MODELS": os.environ.get("KEEP_MODELS", "0"),
           "ROWS": os.environ.get("ROWS", ""), "EXPERT_LR": os.environ.get("EXPERT_LR", "3")}
    for setting in settings:
        if setting not in NAMES:
            sys.exit(f"quality_study: unknown setting '{setting}' (demo, fortunes3)")
        study(build, out, setting, root, env)


if __name__ == "__main__":
    main()
