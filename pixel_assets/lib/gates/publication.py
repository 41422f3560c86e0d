"""Verify, then publish, in one call (``pixel`` and tests; the Dagster assets run the same steps
as compiled_dataset -> gate checks -> published_dataset).

    outcome = publish_verified(compiled, root, ledger_parquet=...)
    outcome.report.passed  -> promoted to final_dataset/ (outcome.promotion)
    otherwise              -> final_dataset/ untouched; staging/<version>/ keeps the attempt and
                              its verification_report.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixel_assets.lib.compiled.build import CompiledDataset
from pixel_assets.lib.compiled.promote import (
    DEFAULT_KEEP_VERSIONS,
    Promotion,
    StagedDataset,
    promote_staged_dataset,
    stage_compiled_dataset,
)
from pixel_assets.lib.gates.config import DEFAULT_PREFIX, GateConfig
from pixel_assets.lib.gates.report import VerificationReport
from pixel_assets.lib.gates.verify import verify_compiled_dataset, write_report
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.storage import DataRoot


@dataclass
class PublishOutcome:
    staged: StagedDataset
    report: VerificationReport
    report_key: str  # the attempt's report, next to its staged manifest
    promotion: Promotion | None  # None: a gate failed, nothing published


def verify_staged(root: DataRoot, staged: StagedDataset, *, registry: Registry | None = None,
                  config: GateConfig | None = None) -> tuple[VerificationReport, str]:
    report = verify_compiled_dataset(root, staged.prefix, registry=registry, config=config)
    return report, write_report(root, report)


def publish_verified(compiled: CompiledDataset, root: DataRoot, *, registry: Registry | None = None,
                     config: GateConfig | None = None, ledger_parquet: bytes | None = None,
                     prefix: str = DEFAULT_PREFIX, keep_versions: int = DEFAULT_KEEP_VERSIONS,
                     log: Any = None) -> PublishOutcome:
    """Stage, run every gate on the staged bytes, promote only when all passed."""
    staged = stage_compiled_dataset(compiled, root, ledger_parquet=ledger_parquet, log=log)
    report, key = verify_staged(root, staged, registry=registry, config=config)
    promotion = None
    if report.passed:
        promotion = promote_staged_dataset(root, staged.version, prefix=prefix, keep_versions=keep_versions,
                                           expected_fingerprint=report.dataset_fingerprint, log=log)
    return PublishOutcome(staged=staged, report=report, report_key=key, promotion=promotion)
