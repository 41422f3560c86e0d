"""Running the gates on a compiled dataset, writing and reusing the verification report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import COMPILED_EXPORT, DEFAULT_PREFIX, GATE_NAMES, MANIFEST_NAME, REPORT_NAME, GateConfig, VerificationError
from pixel_assets.lib.gates.coverage import gate_coverage
from pixel_assets.lib.gates.distribution import gate_distribution
from pixel_assets.lib.gates.hash import gate_hash
from pixel_assets.lib.gates.leakage import gate_leakage
from pixel_assets.lib.gates.loading import CompiledDataset, find_dataset_prefix, load_compiled_dataset
from pixel_assets.lib.gates.pii import gate_pii
from pixel_assets.lib.gates.provenance import gate_provenance
from pixel_assets.lib.gates.report import GateResult, VerificationReport
from pixel_assets.lib.gates.split import gate_split
from pixel_assets.lib.gates.stats import gate_stats
from pixel_assets.lib.registry import Registry, load_registry
from pixel_assets.lib.storage import DataRoot


GATES: dict[str, Callable[[CompiledDataset, Registry, GateConfig], GateResult]] = {
    "coverage": gate_coverage, "leakage": gate_leakage, "distribution": gate_distribution,
    "pii": gate_pii, "provenance": gate_provenance, "hash": gate_hash, "split": gate_split,
    "stats": gate_stats,
}


def run_gates(ds: CompiledDataset, registry: Registry | None = None, config: GateConfig | None = None) -> list[GateResult]:
    """All eight gates; a gate that crashes fails with the exception type (no content in it)."""
    registry = registry or load_registry()
    config = config or GateConfig()
    results = []
    for name, gate in GATES.items():
        try:
            results.append(gate(ds, registry, config))
        except Exception as exc:  # a gate that cannot decide must not pass
            # The type only: an exception text can quote the record that caused it (polars does).
            results.append(GateResult(name=name, passed=False, message=(
                f"gate crashed: {type(exc).__name__} (details withheld, they may quote record text; "
                "a record that breaks the record contract is the usual cause: see the provenance gate)")))
    return results


def failed_report(root: DataRoot, manifest_key: str, reason: str, config: GateConfig | None = None) -> VerificationReport:
    """Every gate failed with one reason (no manifest / unreadable manifest)."""
    return VerificationReport(manifest_key=manifest_key, manifest_uri=root.uri(manifest_key),
                              manifest_sha256="", manifest_generated_at=None, verified_at=contract.utc_now_iso(),
                              gates=[GateResult(name=n, passed=False, message=reason) for n in GATE_NAMES],
                              config=asdict(config or GateConfig()))


def verify_compiled_dataset(root: DataRoot, prefix: str | None = None, *, registry: Registry | None = None,
                            config: GateConfig | None = None) -> VerificationReport:
    """Run the eight gates on the compiled dataset under `prefix` (default: found automatically).

    A missing or unreadable manifest yields a report in which every gate failed with the reason.
    """
    try:
        prefix = find_dataset_prefix(root) if prefix is None else prefix.strip("/")
        ds = load_compiled_dataset(root, prefix)
        fingerprint = _verified_fingerprint(root, ds)
    except VerificationError as exc:
        p = DEFAULT_PREFIX if prefix is None else prefix.strip("/")
        return failed_report(root, f"{p}/{MANIFEST_NAME}" if p else MANIFEST_NAME, str(exc), config)
    manifest_key = ds.manifest_key
    config = config or GateConfig()
    return VerificationReport(
        manifest_key=manifest_key, manifest_uri=root.uri(manifest_key), manifest_sha256=ds.manifest_sha256,
        manifest_generated_at=ds.manifest.get("generated_at"), verified_at=contract.utc_now_iso(),
        gates=run_gates(ds, registry, config), config=asdict(config), dataset_fingerprint=fingerprint,
    )


def _verified_fingerprint(root: DataRoot, ds: CompiledDataset) -> str:
    """The dataset fingerprint of exactly the bytes the gates read (compiled.dataset_fingerprint
    reads storage for the same value). Built from the digests taken while loading, so the shards
    are not read twice; should anything change meanwhile, storage no longer matches it, and report
    reuse and the training guard refuse to trust this verification."""
    from pixel_assets.lib.compiled.publish import fingerprint_of, published_files

    # Keys relative to the dataset prefix: staged and promoted copies have the same fingerprint.
    files: dict[str, str | None] = {ds.rel_to_prefix(s.path): s.sha256 for s in ds.shards if s.exists}
    export_rel = ds.rel_to_prefix(COMPILED_EXPORT)
    for rel in published_files(root, ds.prefix, ds.manifest):
        if rel not in files:  # the export, or a stray file in compiled/ that the gates do not read
            files[rel] = (ds.export_sha256 if rel == export_rel
                          else contract.sha256_digest(root.read_bytes(f"{ds.prefix}/{rel}" if ds.prefix else rel)))
    return fingerprint_of(MANIFEST_NAME, ds.manifest_sha256, files)


def report_key(manifest_key: str) -> str:
    return manifest_key.rsplit("/", 1)[0] + "/" + REPORT_NAME if "/" in manifest_key else REPORT_NAME


def write_report(root: DataRoot, report: VerificationReport) -> str:
    """Write the report next to the manifest; returns its key."""
    key = report_key(report.manifest_key)
    root.write_text(key, report.to_json())
    return key


def current_report(root: DataRoot, prefix: str = DEFAULT_PREFIX, *,
                   config: GateConfig | None = None) -> tuple[VerificationReport, bool]:
    """The written report when it verified the published bytes as they are now (same dataset
    fingerprint: manifest and every shard) with the same thresholds; otherwise a fresh
    verification, written. Returns (report, reused).

    The gate checks write their report as they run, so the report asset of the same run reuses it
    instead of running the gates a second time (hashing the files is far cheaper than the gates).
    """
    from pixel_assets.lib.compiled.publish import dataset_fingerprint

    config = config or GateConfig()
    manifest_key = f"{prefix.strip('/')}/{MANIFEST_NAME}" if prefix.strip("/") else MANIFEST_NAME
    key = report_key(manifest_key)
    if root.exists(key) and root.exists(manifest_key):
        try:
            written = VerificationReport.from_dict(json.loads(root.read_bytes(key)))
        except (ValueError, KeyError, TypeError):
            written = None  # unreadable or from an older layout: verify again
        if (written is not None and written.dataset_fingerprint
                and written.dataset_fingerprint == dataset_fingerprint(root, prefix)
                and written.config == asdict(config) and [g.name for g in written.gates] == list(GATE_NAMES)):
            return written, True
    report = verify_compiled_dataset(root, prefix, config=config)
    write_report(root, report)
    return report, False
