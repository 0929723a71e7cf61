#!/usr/bin/env python3
"""The peer of pcmoe-central for bench/central_vs_torch.sh: a plain PyTorch (eager, Python)
implementation of the identical model — pre-norm RMSNorm, RoPE, fused causal attention, top-k
softmax router with Switch load-balancing and z losses, SwiGLU experts computed grouped (rows
sorted by expert, one matmul chain per expert, one device sync per layer for the split sizes),
tied embeddings — trained with torch.optim.AdamW (its default CUDA implementation), warmup +
cosine LR, global-norm clipping and bf16 autocast, on the same batch shape. Prints one JSON line.

usage: torch_peer.py --preset configs/models/small.yaml --text corpus.txt --steps 200 [--batch N]
"""
import argparse, json, math, time

import torch
import torch.nn.functional as F
import yaml


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight).to(x.dtype)


def rope_tables(c, device):
    half = c["d_model"] // c["n_heads"] // 2
    inv = c.get("rope_theta", 10000.0) ** (-torch.arange(0, half, dtype=torch.float64) / half)
    ang = torch.outer(torch.arange(c["seq_len"], dtype=torch.float64), inv)
    return ang.cos().float().to(device), ang.sin().float().to(device)


def rope(x, cos, sin):
    t, half = x.shape[2], x.shape[3] // 2
    cos, sin = cos[:t].to(x.dtype), sin[:t].to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, m, f, std = c["d_model"], c["n_experts"], c["d_ff"], 0.02
        out_std = std / math.sqrt(2 * c["n_layers"])
        self.h = c["n_heads"]
        self.norm1, self.norm2 = RMSNorm(d, 1e-5), RMSNorm(d, 1e-5)
        self.wqkv = torch.nn.Parameter(torch.randn(3 * d, d) * std)
        self.wo = torch.nn.Parameter(torch.randn(d, d) * out_std)
        self.gate = torch.nn.Parameter(torch.randn(m, d) * std)
        self.w1 = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(f, d) * std) for _ in range(m)])
        self.w3 = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(f, d) * std) for _ in range(m)])
        self.w2 = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(d, f) * out_std) for _ in range(m)])
        self.c = c

    def forward(self, x, cos, sin, aux):
        b, t, d = x.shape
        qkv = F.linear(self.norm1(x), self.wqkv).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        q, k, v = rope(qkv[0], cos, sin), rope(qkv[1], cos, sin), qkv[2]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        h = x + F.linear(y, self.wo)
        n = self.norm2(h).reshape(-1, d)
        return h + self.moe(n, aux).view(b, t, d)

    def moe(self, x, aux):
        c, m, k = self.c, self.c["n_experts"], self.c["top_k"]
        with torch.autocast("cuda", enabled=False):
            logits = F.linear(x.float(), self.gate)
            z = torch.logsumexp(logits, -1).pow(2).mean()
            probs = torch.softmax(logits, -1)
            idx = torch.topk(probs.detach(), k, -1).indices
            gates = probs.gather(1, idx)
            f = torch.zeros_like(probs).scatter_(1, idx, 1.0).sum(0) / (x.shape[0] * k)
            aux.append(c["router"]["aux_loss_coef"] * m * (f * probs.mean(0)).sum() + c["router"]["z_loss_coef"] * z)
        n = x.shape[0]
        flat_e = idx.reshape(-1)
        flat_t = torch.arange(n, device=x.device).unsqueeze(1).expand(n, k).reshape(-1)
        order = torch.sort(flat_e, stable=True).indices
        tok, gate = flat_t[order], gates.reshape(-1)[order]
        counts = torch.bincount(flat_e, minlength=m).tolist()  # the one sync per layer
        xs = x.index_select(0, tok)
        outs, off = [], 0
        for e in range(m):
            if counts[e]:
                s = xs[off:off + counts[e]]
                outs.append(F.linear(F.silu(F.linear(s, self.w1[e])) * F.linear(s, self.w3[e]), self.w2[e]))
                off += counts[e]
        y = torch.cat(outs).float() * gate.unsqueeze(1)
        return torch.zeros(n, x.shape[1], device=x.device, dtype=torch.float32).index_add(0, tok, y).to(x.dtype)


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_emb = torch.nn.Parameter(torch.randn(c["vocab_size"], c["d_model"]) * 0.02)
        self.blocks = torch.nn.ModuleList([Block(c) for _ in range(c["n_layers"])])
        self.norm_f = RMSNorm(c["d_model"], 1e-5)

    def forward(self, tokens, cos, sin):
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        x, aux = F.embedding(inp, self.tok_emb), []
        for blk in self.blocks:
            x = blk(x, cos, sin, aux)
        logits = F.linear(self.norm_f(x), self.tok_emb)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1))
        return ce, sum(aux)


def lr_at(t, step):
    if t["warmup_steps"] > 0 and step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    p = min(1.0, (step - t["warmup_steps"]) / max(1, t["steps"] - t["warmup_steps"]))
    lo = t["lr"] * t["min_lr_ratio"]
    return lo + 0.5 * (t["lr"] - lo) * (1 + math.cos(math.pi * p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20, help="steps excluded from the timing")
    ap.add_argument("--batch", type=int, default=0)
    a = ap.parse_args()
    cfg = yaml.safe_load(open(a.preset))
    c, t = cfg["model"], cfg["train"]
    c.setdefault("router", {"aux_loss_coef": 0.01, "z_loss_coef": 0.001})
    B = a.batch or t["batch_size"]
    T = c["seq_len"]
    dev = torch.device("cuda")
    torch.manual_seed(0)
    data = torch.frombuffer(bytearray(open(a.text, "rb").read()), dtype=torch.uint8).long().to(dev)
    model = Model(c).to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]}, {"params": other, "weight_decay": 0.0}],
                            lr=t["lr"], betas=(t.get("beta1", 0.9), t.get("beta2", 0.95)), eps=t.get("adam_eps", 1e-8))
    cos, sin = rope_tables(c, dev)
    bf16 = t.get("dtype", "fp32") == "bf16"
    torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        starts = torch.randint(0, data.numel() - T - 1, (B,), device=dev)
        tokens = data[starts.unsqueeze(1) + torch.arange(T + 1, device=dev)]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            ce, aux = model(tokens, cos, sin)
        (ce + aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        for g in opt.param_groups:
            g["lr"] = lr_at(t, step)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(ce.item())  # one sync per step, like pcmoe-central's metrics
        times.append(time.perf_counter() - t0)
    steady = sorted(times[a.warmup:])
    med = steady[len(steady) // 2]
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "steps": a.steps, "batch": B, "seq_len": T,
                      "dtype": "bf16" if bf16 else "fp32", "median_step_ms": med * 1e3,
                      "tokens_per_s": B * T / med, "peak_memory_bytes": torch.cuda.max_memory_allocated(),
                      "peak_reserved_bytes": torch.cuda.max_memory_reserved(), "final_loss": losses[-1]}))


if __name__ == "__main__":
    main()
