#!/usr/bin/env python3
"""Step time of data parallel training versus nodes and network bandwidth: the model of
docs/scaling.md, computed from a model's parameter table (`anetrain info MODEL`).

Per optimizer step every node all-reduces the fp32 gradients, S = 4·P bytes, in buckets of one
layer each (the head first, the embedding last). A ring all-reduce moves 2(N−1)/N·S bytes through
each node's link and takes 2(N−1) latency-bound rounds per bucket:
    T_ar(N) = 2(N−1)/N · S / BW + (L+2) · 2(N−1) · α
A bucket can travel while the backward pass computes the layers before it, so up to the backward
time after the first bucket is ready can be hidden — except the embedding's bucket, which is
only final when the backward pass ends (a tied embedding also takes the classifier's gradient):
    exposed(N) = max(T_ar(N) − h·T_bwd, e·T_ar(N))       e = embedding share of S
where h is the fraction of the backward pass that the overlap achieves in practice (1 = ideal,
0 = none; docs/scaling.md measures it). Step time: T(N) = T_fwd + T_bwd + T_opt + exposed(N).

Weak scaling keeps the per-node batch: efficiency T(1)/T(N). Strong scaling splits a fixed global
batch: compute shrinks as 1/N while the all-reduce does not, so the speed-up peaks.

Usage: bench/scaling_model.py BIN MODEL --fwd MS --bwd MS --opt MS [--hidden 0.5] [--alpha-us 30]
       [--global-batch 64]   (per-node B=1 times: fwd/bwd/opt of one sequence step)
"""
import argparse
import re
import subprocess

NODES = [1, 2, 4, 8, 16, 32, 64]
LINKS_GBIT = [10, 25, 100]


def table_of(bin_path, model):
    out = subprocess.run([bin_path, "info", model], check=True, capture_output=True, text=True).stdout
    total = int(re.search(r"total parameters: ([\d,]+)", out).group(1).replace(",", ""))
    emb = int(re.search(r"model\.embed_tokens\.weight\s+\[[^\]]*\]\s+(\d+)", out).group(1))
    layers = int(re.search(r"layers (\d+)", out).group(1))
    return total, emb, layers


def all_reduce_ms(n, nbytes, link_gbit, layers, alpha_us):
    if n == 1:
        return 0.0
    bw = link_gbit * 1e9 / 8  # bytes/s
    return 1e3 * (2 * (n - 1) / n * nbytes / bw + (layers + 2) * 2 * (n - 1) * alpha_us * 1e-6)


def step_ms(n, a, nbytes, e, layers, link, fwd, bwd, opt):
    ar = all_reduce_ms(n, nbytes, link, layers, a.alpha_us)
    exposed = max(ar - a.hidden * bwd, e * ar)
    return fwd + bwd + opt + exposed, ar, exposed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("model")
    ap.add_argument("--fwd", type=float, required=True)
    ap.add_argument("--bwd", type=float, required=True)
    ap.add_argument("--opt", type=float, required=True)
    ap.add_argument("--hidden", type=float, default=0.5, help="share of the backward pass the overlap uses")
    ap.add_argument("--alpha-us", type=float, default=30.0, help="per-message latency (TCP over Ethernet)")
    ap.add_argument("--global-batch", type=int, default=64, help="sequences per step, strong scaling")
    a = ap.parse_args()
    total, emb, layers = table_of(a.bin, a.model)
    nbytes = 4 * total
    e = emb / total
    print("%s: %.1fM parameters, %.1f MB of fp32 gradients per step (embedding %.0f%% of it, all-reduced last); "
          "per node B=1: fwd %.0f + bwd %.0f + opt %.0f ms; overlap hides up to %.0f%% of the backward pass; "
          "α = %.0f µs\n" % (a.model, total / 1e6, nbytes / 1e6, 100 * e, a.fwd, a.bwd, a.opt, 100 * a.hidden,
                              a.alpha_us))
    print("Weak scaling (B=1 per node): step ms (all-reduce ms, exposed ms) and efficiency T(1)/T(N)\n")
    print("| nodes | " + " | ".join("%d Gb/s" % g for g in LINKS_GBIT) + " |")
    print("|---|" + "---|" * len(LINKS_GBIT))
    t1 = a.fwd + a.bwd + a.opt
    for n in NODES:
        cells = []
        for g in LINKS_GBIT:
            t, ar, ex = step_ms(n, a, nbytes, e, layers, g, a.fwd, a.bwd, a.opt)
            cells.append("%.0f (%.0f, %.0f) %.0f%%" % (t, ar, ex, 100 * t1 / t))
        print("| %d | %s |" % (n, " | ".join(cells)))
    print("\nStrong scaling (global batch %d sequences split over the nodes; per-node time ∝ its share):\n"
          % a.global_batch)
    print("| nodes | " + " | ".join("%d Gb/s: step ms, speed-up" % g for g in LINKS_GBIT) + " |")
    print("|---|" + "---|" * len(LINKS_GBIT))
    crossover = {}
    for n in NODES:
        if n > a.global_batch:
            break
        share = a.global_batch / n
        cells = []
        for g in LINKS_GBIT:
            t, _, exposed = step_ms(n, a, nbytes, e, layers, g, a.fwd * share, a.bwd * share, a.opt)
            tn1 = (a.fwd + a.bwd) * a.global_batch + a.opt
            cells.append("%.0f, %.1f×" % (t, tn1 / t))
            if g not in crossover and exposed >= 0.25 * (a.fwd + a.bwd) * share:
                crossover[g] = n
        print("| %d | %s |" % (n, " | ".join(cells)))
    # Where the exposed all-reduce reaches a quarter of the computation, each doubling of the nodes
    # gains visibly less than 2×: that is where adding nodes stops paying for itself.
    print("\nStrong scaling stops paying (exposed all-reduce ≥ 25%% of a node's computation) from: %s" %
          ", ".join("%d Gb/s: %s" % (g, ("%d nodes" % crossover[g]) if g in crossover else "beyond %d nodes" % NODES[-1])
                    for g in LINKS_GBIT))


if __name__ == "__main__":
    main()
