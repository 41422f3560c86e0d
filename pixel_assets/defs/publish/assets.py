"""published_dataset: promote the staged compile to final_dataset/ once every gate passed on it.

Downstream of compiled_dataset (whose eight blocking gate checks skip this step in a run where a
gate failed) and of dataset_accounting (whose blocking check `balanced` does the same). A run that
selects published_dataset alone is no way around them: before promoting, the asset reads the
latest evaluation of every gate and of the accounting check from the instance and requires that
each passed, on the latest materialization, for exactly the staged bytes (dataset fingerprint).
"""

import dagster as dg

from pixel_assets.defs.guard import gate_problems, staged_prefix, staged_version
from pixel_assets.defs.keys import COMPILED_DATASET_KEY, DATASET_ACCOUNTING_KEY, GROUP_VERIFICATION, PUBLISHED_DATASET_KEY
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.report import markdown_table


class PublishConfig(dg.Config):
    keep_versions: int = 3  # published versions kept (the current one included); older ones pruned


@dg.asset(key=PUBLISHED_DATASET_KEY, deps=[COMPILED_DATASET_KEY, DATASET_ACCOUNTING_KEY], group_name=GROUP_VERIFICATION,
          kinds={"json"})
def published_dataset(context: dg.AssetExecutionContext, config: PublishConfig, data_root: DataRootResource) -> dict:
    """final_dataset/manifest.json (written last) over immutable files in final_dataset/data/<version>/,
    the split ledger committed with it, versions beyond keep_versions pruned."""
    from pixel_assets.lib.compiled import dataset_fingerprint
    from pixel_assets.lib.compiled.promote import promote_staged_dataset, staging_prefix

    root = data_root.root()
    version = staged_version(context.instance)
    if version is None:
        raise dg.Failure("nothing staged: materialize compiled_dataset first")
    where = staged_prefix(root, version)
    staged_fingerprint = dataset_fingerprint(root, where)
    problems = {**gate_problems(context.instance, current_fingerprint=staged_fingerprint),
                **{f"accounting {k}": v for k, v in gate_problems(context.instance, DATASET_ACCOUNTING_KEY,
                                                                    ("balanced",)).items()}}
    if problems:
        raise dg.Failure(
            description=(f"not publishing {version}: {len(problems)} blocking checks have not passed on the staged "
                         f"dataset ({', '.join(problems)}); final_dataset/ is unchanged. Its report: "
                         f"{root.uri(staging_prefix(version) + '/verification_report.json')}"),
            metadata={"details": dg.MetadataValue.md(markdown_table(
                [{"check": k, "problem": v} for k, v in problems.items()]))},
        )
    if where != staging_prefix(version):  # promoted by an earlier run: nothing left to do
        context.log.info(f"{version} is already the published dataset")
        return {"dataset_version": version, "manifest_key": f"{where}/manifest.json", "fingerprint": staged_fingerprint}
    promotion = promote_staged_dataset(root, version, expected_fingerprint=staged_fingerprint,
                                       keep_versions=config.keep_versions, log=context.log)
    context.add_output_metadata({
        "dataset_version": version,
        "dataset_fingerprint": promotion.fingerprint,
        "manifest_uri": dg.MetadataValue.url(root.uri(promotion.manifest_key)),
        "files_written": promotion.files_written,
        "files_already_there": promotion.files_already_there,
        "ledger_committed": promotion.ledger_committed,
        "pruned_versions": len(promotion.pruned_versions),
        "pruned_files": promotion.pruned_files,
    })
    return {"dataset_version": version, "manifest_key": promotion.manifest_key, "fingerprint": promotion.fingerprint}
