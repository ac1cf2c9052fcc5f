"""Accuracy of the latency model: measured vs predicted latency of the zoo's models.

Run: python benchmarks/bench_latency.py [--profile P.yaml | --method context,layers] [--quick]
[--networks N] [--threads N] [--min-time S] [--sweeps N] [--clock wall|thread] [--models a,b,…]

Builds every zoo model (torch builder, eval mode) and calibrates with each method asked for
(``costmodel.measure.calibrate``: ``context``, synthetic networks timed per layer in real
passes; ``layers``, single layers timed alone; the first listed is the one the per-model table
shows) unless a profile is given. The zoo models are timed with the one timing rule inside the
context calibration's own ``--sweeps`` round-robin sweeps (without one, in sweeps of their
own), each model's figure its fastest sweep's median, as calibration times its networks; then
each is predicted from each profile. No zoo model is used to fit anything: every one is held
out (the synthetic networks are random, drawn from the spec vocabulary).

The FLOPs-only baseline (latency = k · FLOPs) has its one constant from the same calibration:
k = median seconds per multiply-add over the single-layer conv and linear points (with
``layers``), else the first profile's dense-conv rate (the fairest "FLOPs is a proxy" a user
would make without timing models). Its rank correlation does not depend on k. Prints, for
each: % of models within ±10% and ±20%, median |error|, and Spearman's rank correlation of
predicted vs measured; and the same for the measurement against itself (the even sweeps' figure
against the odd sweeps'): what no predictor can beat on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def ranks(xs: list[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions)."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a: list[float], b: list[float]) -> float:
    """Pearson's correlation of the ranks."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb)


def summary(pred: list[float], meas: list[float]) -> dict[str, float]:
    errs = [abs(p / m - 1) for p, m in zip(pred, meas)]
    return {"within10": sum(e <= 0.10 for e in errs) / len(errs),
            "within20": sum(e <= 0.20 for e in errs) / len(errs),
            "median": statistics.median(errs), "spearman": spearman(pred, meas)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile")
    ap.add_argument("--method", default="context,layers",
                    help="calibration methods to compare, comma-separated (first: the table's)")
    ap.add_argument("--quick", action="store_true",
                    help="the single-layer method's quick grid (a third of the shapes)")
    ap.add_argument("--networks", type=int, default=None,
                    help="synthetic networks the context method times (calibrate's default)")
    ap.add_argument("--save-profile", help="write the calibrated profile here")
    ap.add_argument("--per-class", type=int, help="calibrate only N shapes per class")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.8,
                    help="seconds per model, over all sweeps")
    ap.add_argument("--sweeps", type=int, default=4,
                    help="round-robin passes over all models (with --method context, the "
                         "calibration's rounds); each model's figure is its fastest sweep's "
                         "median")
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="thread: the thread's CPU time (one thread only), for a loaded machine")
    ap.add_argument("--models", help="comma-separated zoo names (default: the whole zoo)")
    args = ap.parse_args()

    def note(message: str) -> None:
        print(f"calibrate: {message}", file=sys.stderr)

    import torch

    from costmodel import api
    from costmodel.crosscheck.builder import build, example_input
    from costmodel.latency.roofline import features, predict
    from costmodel.latency.profile import load_profile
    from costmodel.measure import calibrate as cal
    from costmodel.measure.timing import time_callable

    torch.set_num_threads(args.threads)
    if args.clock == "thread":
        if args.threads != 1:
            sys.exit("--clock thread needs --threads 1")
        cal.thread_clock().__enter__()  # for the whole run: calibration and models alike
    start = time.perf_counter()
    names = args.models.split(",") if args.models else [e.name for e in api.zoo()]
    models = {}
    for name in names:
        result = api.evaluate_model(name)
        models[name] = (result, build(result), example_input(result))
    calls = {name: (lambda m=module, x=x: m(x)) for name, (_, module, x) in models.items()}
    times: dict[str, list[float]] | None = None  # per zoo model, its median in each sweep
    per_madd = None
    if args.profile:
        profiles = {"profile (given)": load_profile(args.profile)}
    else:
        profiles = {}
        for method in args.method.split(","):
            began = time.perf_counter()
            if method == "layers":
                points = cal.measure(threads=args.threads, quick=args.quick,
                                     per_class=args.per_class, progress=note)
                profile = cal.profile_of(points, threads=args.threads, quick=args.quick)
                other = "sum" if profile.combine == "max" else "max"
                profiles[f"single layers ({profile.combine} form)"] = profile
                profiles[f"single layers ({other} form)"] = cal.profile_of(
                    points, threads=args.threads, combine=other)
                # the baseline's constant: seconds per multiply-add of single conv/linear layers
                per_madd = statistics.median(p.seconds / p.madds for p in points if p.madds)
            else:
                # the zoo is timed in the calibration's own sweeps: the machine's slow
                # minutes fall on both alike
                nets, swept = cal.measure_networks(
                    threads=args.threads, networks=args.networks, rounds=args.sweeps,
                    min_time=cal.MIN_TIME * args.sweeps / cal.ROUNDS, progress=note,
                    also=calls if times is None else None)
                times = times or swept
                profile = cal.profile_in_context(nets, threads=args.threads)
                profiles[f"in context ({profile.combine} form)"] = profile
            note(f"{method}: calibrated in {time.perf_counter() - began:.0f} s: "
                 f"{profile.fit.get('forms')}")
        if args.save_profile:
            from costmodel.files import write_atomic
            from costmodel.latency.profile import dump_profile

            write_atomic(args.save_profile, dump_profile(next(iter(profiles.values()))))
    profile = next(iter(profiles.values()))
    if times is None:
        # Round robin: every sweep times every model once, so that the machine's slow minutes
        # (measured here: the same model's median moves 15-25% between minutes, with no
        # steal time and no other process) fall on all models alike.
        times = {name: [] for name in names}
        for sweep in range(args.sweeps):
            for name, fn in calls.items():
                with torch.inference_mode():
                    times[name].append(time_callable(fn, warmup=1, min_runs=3,
                                                     min_time=args.min_time / args.sweeps
                                                     ).median)
            note(f"sweep {sweep + 1}/{args.sweeps} done")
    rows = []
    for name, (result, _, _) in models.items():
        t = min(times[name])  # the fastest sweep's median, as calibration times its networks
        _, predicted = predict(result, profile)
        madds = sum(features(r).madds for r in result.rows)
        rows.append((name, result.totals.flops, t, predicted, madds,
                     [predict(result, p)[1] for p in profiles.values()],
                     (min(times[name][0::2]), min(times[name][1::2] or times[name]))))
        print(f"{name:22s} {t * 1e3:9.2f} ms measured {predicted * 1e3:9.2f} ms "
              f"predicted ({predicted / t - 1:+.0%})", file=sys.stderr)
    if per_madd is None:  # no single-layer points: the constant from the profile's conv class
        per_madd = 1 / (profile.classes["conv"].gmadds_per_s * 1e9)
    meas = [r[2] for r in rows]
    base = summary([r[4] * per_madd for r in rows], meas)
    again = summary([r[6][1] for r in rows], [r[6][0] for r in rows])
    print(f"\n{len(rows)} zoo models, all held out (calibration never times a zoo model); "
          f"{args.threads} thread(s), batch 1, {args.clock} clock, "
          f"{time.perf_counter() - start:.0f} s in all\n")
    print("| predictor | within ±10% | within ±20% | median abs. error | Spearman |")
    print("|---|---|---|---|---|")
    results = [(label, summary([r[5][i] for r in rows], meas))
               for i, label in enumerate(profiles)]
    floor = (f"measured again (the noise floor: sweeps {'2, 4, …' if args.sweeps > 1 else '1'}"
             " vs 1, 3, …)", again)
    for label, s in (*results, ("FLOPs only (k·FLOPs)", base), floor):
        print(f"| {label} | {s['within10']:.0%} | {s['within20']:.0%} | {s['median']:.1%} | "
              f"{s['spearman']:.3f} |")
    print("\n| model | FLOPs | measured ms | predicted ms | error | FLOPs-only ms | error |")
    print("|---|---|---|---|---|---|---|")
    for name, flops, m, p, madds, _, _ in rows:
        b = madds * per_madd
        print(f"| {name} | {flops / 1e6:.0f}M | {m * 1e3:.2f} | {p * 1e3:.2f} | {p / m - 1:+.0%} "
              f"| {b * 1e3:.2f} | {b / m - 1:+.0%} |")


if __name__ == "__main__":
    main()
