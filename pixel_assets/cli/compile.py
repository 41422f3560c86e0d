"""`pixel manifest` (validate and summarize a published manifest) and `pixel bench compile`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from pixel_assets.cli._common import CliError, add_repeats, non_negative_int, positive_int
from pixel_assets.lib.benchmarking import RatioSpread


def register(commands, bench) -> None:
    manifest = commands.add_parser(
        "manifest",
        help="validate a published compiled-dataset manifest and print its figures",
        description="Reads <root>/<prefix>/manifest.json, validates it against the manifest JSON "
        "Schema and its internal consistency, and prints the per-split and per-family counts.",
    )
    manifest.add_argument("--root", default=None,
                          help="data root: local path or s3://bucket/prefix (default: the pipeline's data root, "
                          "s3://$PIXEL_S3_BUCKET/$PIXEL_S3_PREFIX when PIXEL_S3_BUCKET is set, else "
                          "$PIXEL_DATA_ROOT or .pixel)")
    manifest.add_argument("--prefix", default="final_dataset", help="publication prefix (default final_dataset)")
    manifest.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    manifest.set_defaults(handler=run_manifest)

    parser = bench.add_parser(
        "compile",
        help="time dedup + split + shard + manifest on N synthetic conversations",
        description="Generates N synthetic ~1 KB conversations (with exact and near duplicates and "
        "shared first questions) and times the compile path into a temporary local data root. "
        "Several N values run one after another, each in its own process (clean peak RSS).",
    )
    parser.add_argument("--conversations", type=positive_int, nargs="+", default=[100_000], metavar="N")
    parser.add_argument("--shard-max-bytes", type=positive_int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-dedup-only", action="store_true",
                        help="skip near-duplicate detection (exact content-hash dedup only)")
    parser.add_argument("--pii-sample", type=non_negative_int, default=200,
                        help="records scrubbed to extrapolate the PII stage (0 = skip)")
    parser.add_argument("--normalize-sample", type=non_negative_int, default=20_000,
                        help="raw records normalized to extrapolate ingest normalization (0 = skip)")
    add_repeats(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_bench)


def run_manifest(args: argparse.Namespace) -> int:
    from pixel_assets.lib.compiled import ManifestError, read_manifest
    from pixel_assets.lib.storage import open_root

    if args.root is None:  # the data root the Dagster definitions use (S3 when PIXEL_S3_BUCKET is set)
        from pixel_assets.defs.storage.resources import data_root_from_env

        root = data_root_from_env().root()
    else:
        root = open_root(args.root)
    try:
        manifest = read_manifest(root, args.prefix)
    except ManifestError as exc:
        print(f"manifest invalid: {exc}", file=sys.stderr)
        return 1
    summary = {
        "manifest": root.uri(f"{args.prefix}/manifest.json"),
        "generated_at": manifest["generated_at"],
        "total_conversations": manifest["total_conversations"],
        "total_tokens_approx": manifest["total_tokens_approx"],
        "splits": {s: {"conversations": v["conversations"], "shards": len(v["shards"])} for s, v in manifest["splits"].items()},
        "source_families": {f: v["splits"] for f, v in manifest["source_families"].items()},
        "holdout_families": manifest["holdout_families"],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['manifest']}: valid; generated {summary['generated_at']}")
    print(f"{summary['total_conversations']} conversations, ~{summary['total_tokens_approx']} tokens")
    for split, v in summary["splits"].items():
        print(f"  {split:5s} {v['conversations']:>9d} conversations in {v['shards']} shards")
    for fam, counts in summary["source_families"].items():
        print(f"  {fam:32s} " + " ".join(f"{s}={n}" for s, n in counts.items()))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    if len(args.conversations) > 1:
        results = []
        for n in args.conversations:
            cmd = [sys.executable, "-c", "import sys; from pixel_assets.cli import main; sys.exit(main())", "bench", "compile", "--conversations", str(n),
                   "--shard-max-bytes", str(args.shard_max_bytes), "--seed", str(args.seed),
                   "--pii-sample", str(args.pii_sample), "--normalize-sample", str(args.normalize_sample),
                   "--repeats", str(args.repeats), "--json"]
            if args.exact_dedup_only:
                cmd.append("--exact-dedup-only")
            child = subprocess.run(cmd, capture_output=True, text=True)
            if child.returncode != 0:  # the child printed a one-line reason (no input data) last
                reason = (child.stderr.strip().splitlines() or [""])[-1].split(": error: ", 1)[-1]
                raise CliError(f"run with --conversations {n} exited with status {child.returncode}"
                               + (f": {reason}" if reason else ""))
            out = child.stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        base = results[0]
        for r in results:
            scale = r["conversations"] / base["conversations"]
            r["growth_vs_first"] = {
                "size_ratio": scale,
                "time_ratio": round(r["target_seconds"] / base["target_seconds"], 2),
                "per_record_time_ratio": round(r["target_seconds"] / base["target_seconds"] / scale, 2),
            }
        if args.json:
            print(json.dumps({"runs": results}))
        else:
            for r in results:
                _print_bench(r)
        return 0
    from pixel_assets.lib.benchmarking import repeat_ratio
    from pixel_assets.lib.compiled.bench import bench_compile

    # The ratio repeated is the split-patch baseline's; the phase times come from the median run.
    result, spread = repeat_ratio(lambda: bench_compile(
        args.conversations[0], shard_max_bytes=args.shard_max_bytes, seed=args.seed,
        near_dup=not args.exact_dedup_only, pii_sample=args.pii_sample,
        normalize_sample=args.normalize_sample,
        progress=None if args.json else (lambda msg: print(msg, flush=True)),
    ), lambda r: r["baseline"]["speedup"], args.repeats)
    result["baseline"]["speedup_spread"] = spread.as_dict()
    if args.json:
        print(json.dumps(result))
    else:
        _print_bench(result)
    return 0


def _print_bench(r: dict) -> None:
    print(f"\n== compile bench: {r['conversations']} synthetic conversations ({r['input_mb']} MB of record JSON)")
    print(f"   dedup: {r['dedup_mode']}; kept {r['kept']} ({r['removed_exact']} exact, {r['removed_near']} near removed)")
    for phase, seconds in r["phases"].items():
        print(f"   {phase:28s} {seconds:8.2f} s   peak RSS {r['peak_rss_mb_per_phase'][phase]:>6.0f} MB")
    print(f"   {'dedup+split+shard+manifest':28s} {r['target_seconds']:8.2f} s  (goal at 1M: < 600 s)")
    print(f"   peak RSS {r['peak_rss_mb']:.0f} MB (goal at 1M: < 8192 MB)")
    b = r["baseline"]
    print(f"   split-patch baseline on {b['records']} records: per-record json.loads/dumps {b['json_seconds']:.2f} s "
          f"vs string-level {b['string_seconds']:.2f} s -> "
          + (RatioSpread.from_dict(b["speedup_spread"]).text(1)
             if "speedup_spread" in b else f"{b['speedup']:.1f}x") + " faster")
    p = r.get("pii")
    if p and p.get("sample"):
        print(f"   PII (EXTRAPOLATED from {p['sample']} records, not part of the total): "
              f"{p['sample_seconds']:.1f} s -> ~{p['extrapolated_seconds']:.0f} s for {r['conversations']}")
    elif p:
        print(f"   PII: {p.get('note')}")
    nm = r.get("normalize")
    if nm and nm.get("sample"):
        print(f"   normalize (EXTRAPOLATED from {nm['sample']} raw ChatML lines, one process, not part of the total): "
              f"{nm['records_per_s']} records/s -> ~{nm['extrapolated_seconds']:.0f} s for {r['conversations']}")
    if "growth_vs_first" in r:
        g = r["growth_vs_first"]
        print(f"   growth vs first run: {g['size_ratio']:.0f}x records -> {g['time_ratio']}x time "
              f"(per-record time ratio {g['per_record_time_ratio']})")
