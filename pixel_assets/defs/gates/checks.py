"""The eight verification gates as blocking asset checks on compiled_dataset (run on the STAGED
bytes, before anything is published), and the verification report asset of the published dataset.
Both call pixel_assets.lib.gates (the same code as `pixel verify`)."""


from typing import Any

import dagster as dg

from pixel_assets.defs.guard import staged_prefix, staged_version
from pixel_assets.defs.keys import COMPILED_DATASET_KEY, FINGERPRINT_KEY, GROUP_REPORTS, PUBLISHED_DATASET_KEY
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.gates import (
    DEFAULT_PREFIX,
    GATE_NAMES,
    GATE_TITLES,
    GateConfig,
    GateResult,
    VerificationReport,
    current_report,
    report_key,
    verify_compiled_dataset,
    write_report,
)

GATE_CHECK_SPECS = [
    dg.AssetCheckSpec(name=name, asset=COMPILED_DATASET_KEY, blocking=True, description=GATE_TITLES[name])
    for name in GATE_NAMES
]


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def gate_metadata(report: VerificationReport, gate: GateResult) -> dict[str, Any]:
    return {
        "report": dg.MetadataValue.md(gate.markdown()),
        FINGERPRINT_KEY: report.dataset_fingerprint,  # what the training guard compares with the storage
        "manifest_sha256": report.manifest_sha256,
        "manifest_generated_at": report.manifest_generated_at or "",
        "offenders": gate.offender_count,
        **{k: _scalar(v) for k, v in gate.figures.items()},  # measured: plotted over runs
        # What the gate judged against (GateConfig, registry policy) as text: the UI plots every
        # numeric value, and a setting is not a trend.
        **{k: str(v) for k, v in gate.settings.items()},
    }


@dg.multi_asset_check(specs=GATE_CHECK_SPECS, name="verification_gates",
                      description="SPEC §6: the eight gates, recomputed from the staged shards as written.")
def verification_gates(context: dg.AssetCheckExecutionContext, data_root: DataRootResource):
    root = data_root.root()
    prefix = staged_prefix(root, staged_version(context.instance))
    report = verify_compiled_dataset(root, prefix, config=GateConfig.from_env())
    # The report file is written here too, so it exists when a failed gate skips the report asset.
    key = write_report(root, report)
    context.log.info(f"gates: {len(GATE_NAMES) - len(report.failed_gates)}/{len(GATE_NAMES)} passed; report at {root.uri(key)}")
    for gate in report.gates:
        yield dg.AssetCheckResult(
            asset_key=COMPILED_DATASET_KEY, check_name=gate.name, passed=gate.passed,
            severity=dg.AssetCheckSeverity.ERROR, description=gate.message, metadata=gate_metadata(report, gate),
        )


@dg.asset(key="verification_report", deps=[PUBLISHED_DATASET_KEY], group_name=GROUP_REPORTS, kinds={"json"})
def verification_report(context: dg.AssetExecutionContext, data_root: DataRootResource) -> dict:
    """All eight verdicts on the PUBLISHED dataset with their figures and the manifest they refer
    to (sha256, generated_at), in final_dataset/verification_report.json next to the manifest. The
    report the gate checks wrote on staging (copied on promotion) is reused when it verified the
    same bytes with the same thresholds; otherwise the gates run."""
    root = data_root.root()
    report, reused = current_report(root, DEFAULT_PREFIX, config=GateConfig.from_env())
    key = report_key(report.manifest_key)
    context.log.info(f"verification report {'from the gate checks' if reused else 'recomputed'}: {root.uri(key)}")
    context.add_output_metadata({
        "source": "gate checks' report (same manifest and thresholds)" if reused else "recomputed from the shards",
        "verified_at": report.verified_at,
        "passed": report.passed,
        "failed_gates": ", ".join(report.failed_gates) or "none",
        "gates_passed": len(GATE_NAMES) - len(report.failed_gates),
        "manifest_sha256": report.manifest_sha256,
        "manifest_generated_at": report.manifest_generated_at or "",
        "report_uri": root.uri(key),
        "verdicts": dg.MetadataValue.md(report.markdown()),
    })
    return report.to_dict()
