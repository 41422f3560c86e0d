"""`pixel verify PATH_OR_S3_URI`: the eight verification gates outside Dagster (same code as the
blocking asset checks), exit status 1 when any gate fails."""

from __future__ import annotations

import argparse
import os
import sys

from pixel_assets.cli._common import CliError, add_repeats, positive_int


def register(commands, bench) -> None:
    parser = commands.add_parser(
        "verify",
        help="run the eight verification gates on a compiled dataset (local dir or s3:// prefix)",
        description="Runs the SPEC §6 gates on the compiled dataset whose manifest.json is at "
        "LOCATION (or at LOCATION/final_dataset/), recomputing every figure from the shards. "
        "Exit status: 0 all gates passed, 1 a gate failed, 2 no readable manifest. Thresholds: "
        "the options below or PIXEL_GATE_<FIELD> environment variables (e.g. PIXEL_GATE_MIN_PRESENT).",
    )
    parser.add_argument("location", metavar="PATH_OR_S3_URI",
                        help="directory or s3://bucket/prefix holding manifest.json (or a data root holding final_dataset/)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--write-report", action="store_true",
                        help="also write verification_report.json next to the manifest")
    parser.add_argument("--registry", help="family registry YAML (default: the packaged one or $PIXEL_REGISTRY)")
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (default $PIXEL_S3_ENDPOINT_URL)")
    parser.add_argument("--min-present", type=positive_int, help="coverage: conversations for 'present'")
    parser.add_argument("--min-partial", type=positive_int,
                        help="coverage: conversations below which a family is 'missing'")
    parser.set_defaults(handler=run_verify)

    bench_parser = bench.add_parser(
        "verify",
        help="time the eight gates on N synthetic conversations against a read+parse baseline",
        description="Compiles N synthetic ~1 KB conversations (compile engineer's generator, dedup, "
        "splits, build, publish) into a temporary local data root, then times each gate and the "
        "whole verification against the baseline of reading and JSON-parsing every shard once.",
    )
    # 50k: the read+parse baseline runs for seconds too (at 20k it took well under one).
    bench_parser.add_argument("--conversations", type=positive_int, default=50_000, metavar="N")
    bench_parser.add_argument("--seed", type=int, default=0)
    add_repeats(bench_parser)
    bench_parser.add_argument("--json", action="store_true", help="print one JSON object")
    bench_parser.set_defaults(handler=run_bench)


def gate_config_from_env():
    """GateConfig.from_env(), with a clear error naming the PIXEL_GATE_* variable that is not a number."""
    import dataclasses

    from pixel_assets.lib.gates import GateConfig

    for f in dataclasses.fields(GateConfig):
        var = f"PIXEL_GATE_{f.name.upper()}"
        raw = os.environ.get(var)
        kind = {"int": int, "float": float}.get(str(f.type))
        if raw in (None, "") or kind is None:
            continue
        try:
            kind(raw)
        except ValueError:
            raise CliError(f"{var} must be {'an integer' if kind is int else 'a number'}") from None
    return GateConfig.from_env()


def run_verify(args: argparse.Namespace) -> int:
    import dataclasses

    from pixel_assets.lib.gates import verify_compiled_dataset, write_report
    from pixel_assets.lib.registry import load_registry
    from pixel_assets.lib.storage import open_root

    config = gate_config_from_env()
    overrides = {k: v for k, v in (("min_present", args.min_present), ("min_partial", args.min_partial)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    if not args.location.startswith("s3://") and not os.path.isdir(args.location):
        what = "not a directory" if os.path.exists(args.location) else "no such directory"
        raise CliError(f"{args.location}: {what} (give the compiled dataset's directory, a data root, or s3://bucket/prefix)")
    root = open_root(args.location, endpoint_url=args.endpoint_url)
    report = verify_compiled_dataset(root, registry=load_registry(args.registry), config=config)
    if not report.manifest_sha256:  # no manifest: nothing was verified; one error, not eight FAIL lines
        raise CliError(report.gates[0].message if report.gates else f"no manifest.json under {args.location}")
    if args.write_report:
        write_report(root, report)
    print(report.to_json() if args.json else report.text())
    return 0 if report.passed else 1


def run_bench(args: argparse.Namespace) -> int:
    import json
    import tempfile
    import time

    from pixel_assets.lib import gates
    from pixel_assets.lib.benchmarking import repeat_ratio
    from pixel_assets.lib.compiled import build_compiled_dataset, publish_compiled_dataset
    from pixel_assets.lib.compiled.synthetic import synthetic_records_frame
    from pixel_assets.lib.dedup import dedup_records
    from pixel_assets.lib.gates.pii_gazetteer import gazetteer_names
    from pixel_assets.lib.gates.pii_structured import find_structured
    from pixel_assets.lib.process_memory import peak_rss_bytes
    from pixel_assets.lib.registry import load_registry
    from pixel_assets.lib.splits import assign_splits
    from pixel_assets.lib.storage import LocalDataRoot

    registry = load_registry()
    with tempfile.TemporaryDirectory() as tmp:
        root = LocalDataRoot(tmp)
        frame = synthetic_records_frame(args.conversations, registry, seed=args.seed)
        frame = assign_splits(dedup_records(frame, family_order=registry.names).kept, registry)
        publish_compiled_dataset(build_compiled_dataset(frame, registry), root)
        # the PII gate's set-up (name lists, phone metadata) is not part of the figures
        gazetteer_names("warm-up: my friend dawn")
        find_structured("warm-up a@b.example +44 20 7946 0958", ("GB",))

        def once() -> dict:
            start = time.perf_counter()  # baseline: read and parse every shard once
            for key in root.glob("final_dataset/*/*.jsonl"):
                if "/compiled/" not in key:
                    [json.loads(line) for line in root.read_bytes(key).splitlines()]
            baseline = time.perf_counter() - start
            timings: dict[str, float] = {}
            start = time.perf_counter()
            ds = gates.load_compiled_dataset(root, "final_dataset")
            timings["load"] = time.perf_counter() - start
            verdicts = {}
            for name, gate in gates.GATES.items():
                t = time.perf_counter()
                verdicts[name] = gate(ds, registry, gates.GateConfig()).passed
                timings[name] = time.perf_counter() - t
            total = sum(timings.values())
            return {"records": len(ds.records), "shards": len(ds.shards), "baseline": baseline, "timings": timings, "verdicts": verdicts, "total": total,
                    "ratio": total / baseline if baseline else float("nan")}

        run, spread = repeat_ratio(once, lambda r: r["ratio"], args.repeats)
        baseline, timings, verdicts, total = (run[k] for k in ("baseline", "timings", "verdicts", "total"))
    result = {
        "conversations_compiled": run["records"], "shards": run["shards"],
        "baseline_read_parse_s": round(baseline, 5), "verify_total_s": round(total, 5),
        "ratio_verify_to_baseline": round(total / baseline, 2) if baseline else None,
        "ratio_spread": spread.as_dict(),
        "records_per_s": round(run["records"] / total) if total else None,
        "seconds": {k: round(v, 5) for k, v in timings.items()}, "passed": verdicts,
        "peak_rss_mb": round(peak_rss_bytes() / 2**20),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['conversations_compiled']} compiled conversations in {result['shards']} shards")
        print(f"baseline (read + parse every shard): {baseline:.2f}s")
        print(f"verify (load + 8 gates): {total:.2f}s = {spread.text()} baseline, "
              f"{result['records_per_s']} records/s, peak RSS {result['peak_rss_mb']} MB")
        for name, seconds in timings.items():
            print(f"  {name:12s} {seconds:7.2f}s" + ("" if name == "load" else f"  passed={verdicts[name]}"))
    return 0


if __name__ == "__main__":
    from pixel_assets.cli import main

    sys.exit(main(["verify", *sys.argv[1:]]))
