"""`pixel dedup ...` and `pixel bench dedup`: LSH banding figures and dedup benchmarks."""

from __future__ import annotations

import argparse
import json

from pixel_assets.cli._common import CliError, add_repeats, non_negative_int, open_unit_float, positive_int


def register(commands: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    dedup = commands.add_parser("dedup", help="exact + near-duplicate detection tools")
    sub = dedup.add_subparsers(dest="dedup_command", metavar="DEDUP", required=True)

    banding = sub.add_parser(
        "banding", help="LSH banding chosen for a threshold, with its S-curve 1-(1-t^r)^b"
    )
    banding.add_argument("--threshold", type=open_unit_float, default=0.8, help="Jaccard threshold in (0, 1)")
    banding.add_argument("--num-perm", type=positive_int, default=128)
    banding.add_argument("--bands", type=positive_int, default=None, help="override the chosen bands")
    banding.add_argument("--rows", type=positive_int, default=None, help="override the chosen rows per band")
    banding.add_argument("--json", action="store_true", help="print one JSON object")
    banding.set_defaults(handler=_banding)

    near = bench.add_parser(
        "dedup", help="near-dup path vs a plain datasketch baseline (throughput, recall, precision)"
    )
    # 50k documents: each side runs for seconds (at 20k the project's took under a second).
    near.add_argument("--docs", type=positive_int, default=50_000, help="documents in the generated corpus")
    near.add_argument("--threshold", type=open_unit_float, default=0.8, help="Jaccard threshold in (0, 1)")
    near.add_argument("--num-perm", type=positive_int, default=128)
    near.add_argument("--seed", type=int, default=0)
    near.add_argument(
        "--records", type=non_negative_int, default=0,
        help="also time dedup_records on a generated records frame of this many records (0 = skip)",
    )
    add_repeats(near)
    near.add_argument("--json", action="store_true", help="print one JSON object")
    near.set_defaults(handler=_bench)


def _banding(args: argparse.Namespace) -> int:
    from pixel_assets.lib.dedup import choose_banding, recall_at

    if args.bands is None and args.rows is None:
        bands, rows = choose_banding(args.threshold, args.num_perm)
    else:
        rows = args.rows or args.num_perm // args.bands
        bands = args.bands or (args.num_perm // rows if rows else 0)
        if rows < 1 or bands < 1 or bands * rows > args.num_perm:
            raise CliError(f"--bands x --rows must be at most --num-perm "
                           f"(got {args.bands or '?'} x {args.rows or '?'} with --num-perm {args.num_perm})")
    curve = {f"{j:.2f}": round(recall_at(j, bands, rows), 4) for j in
             (0.3, 0.5, 0.6, 0.7, 0.75, args.threshold, 0.85, 0.9, 0.95)}
    out = {
        "threshold": args.threshold, "num_perm": args.num_perm, "bands": bands, "rows": rows,
        "recall_at_threshold": round(recall_at(args.threshold, bands, rows), 4),
        "candidate_probability_by_jaccard": dict(sorted(curve.items())),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"bands={bands} rows={rows} (num_perm={args.num_perm}); recall at "
          f"{args.threshold}: {out['recall_at_threshold']}")
    print("jaccard  P(candidate)")
    for j, p in out["candidate_probability_by_jaccard"].items():
        print(f"  {j}   {p:.4f}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import sys

    from pixel_assets.lib.benchmarking import repeat_ratio
    from pixel_assets.lib.dedup.bench import bench_dedup_records, bench_near_dup

    out, spread = repeat_ratio(
        lambda: bench_near_dup(args.docs, threshold=args.threshold, num_perm=args.num_perm, seed=args.seed),
        lambda r: r["speedup"], args.repeats, log=lambda m: print(f"bench dedup: {m}", file=sys.stderr))
    out["speedup_spread"] = spread.as_dict()
    if args.records:
        out["dedup_records"] = bench_dedup_records(args.records, seed=args.seed)
    if args.json:
        print(json.dumps(out))
        return 0
    ours, base = out["project"], out["datasketch_baseline"]
    print(f"corpus: {out['docs']} docs (~{out['mean_doc_chars']:.0f} chars), "
          f"{out['planted_pairs']} planted near-dups, {out['true_pairs_at_threshold']} true pairs "
          f"at Jaccard >= {out['threshold']}; banding {out['bands']}x{out['rows']}")
    for name, r in (("project (rensa + numpy LSH, exact confirm)", ours),
                    ("datasketch baseline (MinHash + MinHashLSH)", base)):
        print(f"  {name}: {r['docs_per_s']:.0f} docs/s, recall {r['recall']:.4f}, "
              f"precision {r['precision']:.4f}")
    print(f"speedup: {spread.text()} (goal >= {out['goal']['speedup']}x); figures above from the median run")
    if args.records:
        r = out["dedup_records"]
        print(f"dedup_records on {r['records']} records: {r['dedup_seconds']} s "
              f"({r['records_per_s']:.0f}/s), RSS {r['rss_before_dedup_mb']:.0f} MB before, "
              f"{r['peak_rss_during_dedup_mb']:.0f} MB peak")
    return 0
