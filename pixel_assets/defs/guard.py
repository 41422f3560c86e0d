"""The training guard: training assets refuse to run unless every gate passed on the current
compiled dataset, and that dataset is the one published.

A blocking asset check only stops the run it is part of; a later run that selects only training
assets would otherwise train on a dataset whose gates failed. So before training, read the latest
evaluation of each gate from the instance and require that it passed and that it targets the
latest materialization of ``compiled_dataset``. Given the data root, the guard also requires that
the published bytes (final_dataset/) are the ones the gates verified on staging
(``dataset_fingerprint``, recorded in each check's metadata, relative keys so staged and promoted
copies agree): a compile that was verified but not promoted, or shards replaced after promotion,
are not trained on.
"""

from __future__ import annotations

import dagster as dg

from pixel_assets.dagster_internals import AssetCheckExecutionRecordStatus
from pixel_assets.defs.keys import COMPILED_DATASET_KEY, DATASET_VERSION_KEY, FINGERPRINT_KEY
from pixel_assets.lib.gates import GATE_NAMES
from pixel_assets.lib.storage import DataRoot



def gate_problems(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey = COMPILED_DATASET_KEY,
    gate_names: tuple[str, ...] = GATE_NAMES,
    current_fingerprint: str | None = None,
) -> dict[str, str]:
    """Gate name -> why it does not clear the current compiled dataset (empty dict = all clear).
    With ``current_fingerprint`` (the dataset as stored now), a gate whose verified fingerprint
    differs does not clear it either."""
    latest = instance.fetch_materializations(asset_key, limit=1).records
    if not latest:
        return {name: f"{asset_key.to_user_string()} has never been materialized" for name in gate_names}
    materialization = latest[0]
    mat_run = materialization.event_log_entry.run_id
    check_keys = [dg.AssetCheckKey(asset_key, name) for name in gate_names]
    executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    problems: dict[str, str] = {}
    for key in check_keys:
        record = executions.get(key)
        if record is None:
            problems[key.name] = "never evaluated"
            continue
        evaluation = record.evaluation
        if record.status == AssetCheckExecutionRecordStatus.PLANNED or evaluation is None:
            problems[key.name] = f"no result (planned in run {record.run_id[:8]}, not evaluated)"
            continue
        target = evaluation.target_materialization_data
        if target is not None:
            current = target.storage_id == materialization.storage_id
        else:  # evaluated without a recorded target: same run, or evaluated after the materialization
            current = record.run_id == mat_run or record.create_timestamp > materialization.event_log_entry.timestamp
        if not current:
            problems[key.name] = (f"last evaluated (run {record.run_id[:8]}) on an earlier materialization, "
                                  f"not the current one (run {mat_run[:8]})")
        elif record.status != AssetCheckExecutionRecordStatus.SUCCEEDED or not evaluation.passed:
            problems[key.name] = f"FAILED in run {record.run_id[:8]}: {evaluation.description or 'no description'}"
        elif current_fingerprint is not None:
            verified = evaluation.metadata.get(FINGERPRINT_KEY)
            verified = getattr(verified, "value", verified)
            if verified != current_fingerprint:
                problems[key.name] = (f"passed in run {record.run_id[:8]} on {str(verified)[:19]}, but the dataset "
                                      f"is now {current_fingerprint[:19]}: the published dataset changed since, or "
                                      "the verified compile was not promoted (materialize published_dataset)")
    return problems


def staged_version(instance: dg.DagsterInstance) -> str | None:
    """The dataset version the latest compiled_dataset materialization staged."""
    event = instance.get_latest_materialization_event(COMPILED_DATASET_KEY)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(DATASET_VERSION_KEY)
    return getattr(value, "value", value)


def staged_prefix(root: DataRoot, version: str | None) -> str:
    """Where that version is to be verified: its staging folder, or final_dataset/ once promoted
    (the staging folder is removed on promotion)."""
    from pixel_assets.lib.compiled import DEFAULT_PREFIX, read_manifest
    from pixel_assets.lib.compiled.promote import staging_prefix

    if version is None:
        return DEFAULT_PREFIX
    prefix = staging_prefix(version)
    if not root.exists(f"{prefix}/manifest.json"):
        try:
            if read_manifest(root, validate=False).get("dataset_version") == version:
                return DEFAULT_PREFIX
        except ValueError:
            pass
    return prefix


def require_passed_gates(context: dg.AssetExecutionContext | dg.OpExecutionContext,
                         data_root: DataRoot | None = None) -> None:
    """Raise dg.Failure naming every failed or missing gate unless all eight passed on the current
    compiled_dataset materialization (and, given ``data_root``, on exactly the bytes published
    under final_dataset/ now: verified on staging, then promoted).
    Call it first thing in every training asset."""
    fingerprint = None
    if data_root is not None:
        from pixel_assets.lib.compiled import dataset_fingerprint

        fingerprint = dataset_fingerprint(data_root)
    # First whether every gate passed at all; only then whether it was on the published bytes
    # (so a failed gate is named alone, not among seven "not promoted" lines).
    problems = gate_problems(context.instance)
    if not problems and fingerprint is not None:
        problems = gate_problems(context.instance, current_fingerprint=fingerprint)
    if problems:
        lines = [f"{name}: {why}" for name, why in problems.items()]
        raise dg.Failure(
            description=(
                f"refusing to train: {len(problems)} of {len(GATE_NAMES)} verification gates have not passed "
                f"on the current compiled_dataset ({', '.join(problems)}). Fix the dataset, re-materialize "
                "compiled_dataset with its checks, and retry.\n" + "\n".join(lines)
            ),
            metadata={"failed_or_missing_gates": ", ".join(problems), "details": dg.MetadataValue.md(
                "| gate | problem |\n|---|---|\n" + "\n".join(f"| {n} | {w.replace('|', '/')} |" for n, w in problems.items()))},
        )
    context.log.info(f"training guard: all {len(GATE_NAMES)} gates passed on the current compiled_dataset")


# For declaratively automated training assets, combine their condition with this one, e.g.
# ``dg.AutomationCondition.on_missing() & GATES_PASSED_CONDITION`` (it only sees direct deps'
# blocking checks, so require_passed_gates stays the guard inside the asset).
GATES_PASSED_CONDITION = dg.AutomationCondition.all_deps_blocking_checks_passed()
