"""`pixel verify PATH_OR_S3_URI`: the eight verification gates outside Dagster (same code as the
blocking asset checks), exit status 1 when any gate fails."""

from __future__ import annotations

import argparse
import sys


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
    parser.add_argument("--min-present", type=int, help="coverage: conversations for 'present'")
    parser.add_argument("--min-partial", type=int, help="coverage: conversations below which a family is 'missing'")
    parser.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    import dataclasses

    from pixel_assets.lib.gates import GateConfig, verify_compiled_dataset, write_report
    from pixel_assets.lib.registry import load_registry
    from pixel_assets.lib.storage import open_root

    config = GateConfig.from_env()
    overrides = {k: v for k, v in (("min_present", args.min_present), ("min_partial", args.min_partial)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    root = open_root(args.location, endpoint_url=args.endpoint_url)
    report = verify_compiled_dataset(root, registry=load_registry(args.registry), config=config)
    if args.write_report and report.manifest_sha256:
        write_report(root, report)
    print(report.to_json() if args.json else report.text())
    if not report.manifest_sha256:  # no manifest: nothing was verified
        return 2
    return 0 if report.passed else 1


if __name__ == "__main__":
    from pixel_assets.cli import main

    sys.exit(main(["verify", *sys.argv[1:]]))
