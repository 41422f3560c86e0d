"""`pixel bench validate`: record-schema validation, fast path against plain jsonschema."""

from __future__ import annotations

import json

from pixel_assets.cli._common import add_repeats, positive_int


def register(commands, bench) -> None:
    parser = bench.add_parser(
        "validate",
        help="record-schema validation: compiled fast path vs plain jsonschema, same records",
    )
    # 60k records: the project side runs for seconds too (at 20k it took well under one).
    parser.add_argument("--records", type=positive_int, default=60_000, help="records to validate (default 60000)")
    add_repeats(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_bench_validate)


def run_bench_validate(args) -> int:
    import time

    from pixel_assets.lib.compiled.synthetic import synthetic_records_frame
    from pixel_assets.lib.contract import frame_to_records, record_errors, record_errors_reference
    from pixel_assets.lib.registry import load_registry

    from pixel_assets.lib.benchmarking import repeat_ratio

    records = frame_to_records(synthetic_records_frame(args.records, load_registry(), seed=0))

    def once() -> dict:
        timings = {}
        for name, validate in (("jsonschema", record_errors_reference), ("project", record_errors)):
            start = time.perf_counter()
            invalid = sum(bool(validate(r, compiled=False)) for r in records)
            seconds = time.perf_counter() - start
            timings[name] = {"seconds": round(seconds, 3), "invalid": invalid, "records_per_s": round(len(records) / seconds)}
        return {"records": len(records), **timings,
                "speedup": round(timings["jsonschema"]["seconds"] / timings["project"]["seconds"], 2)}

    result, spread = repeat_ratio(once, lambda r: r["speedup"], args.repeats)
    result["speedup_spread"] = spread.as_dict()
    timings = result
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(records)} records: jsonschema {timings['jsonschema']['records_per_s']}/s, "
              f"project {timings['project']['records_per_s']}/s (median run), speedup {spread.text()}")
    return 0
