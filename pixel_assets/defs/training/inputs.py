"""The published dataset as the training graph reads it: `training_inputs/<stage>`, one asset per
stage (plus `training_inputs/evaluation` for the test split), each with a data version of its own.

Why: Dagster marks an asset stale when the data version of a *direct* dependency changed since it
was materialized (staleness does not travel further on its own in Dagster 1.13). If every stage read
`compiled_dataset` directly, any nightly re-compile would mark the whole chain stale; and a change in
stage 3's families would mark only stage 3's data stale until someone retrained it. So the version
of `training_inputs/<stage k>` is a hash of the content hashes of the train and val records of every
family that stages 1..k read (cumulative, in chain order); stage k's data and checkpoint depend on
it. A re-compile that changes nothing leaves every version, and so every stage, fresh; a change in a
stage-3 family changes the versions of stage 3 and every later stage, and nothing before. These
assets are part of the data side (group `compiled`, materialized by the compile job right after the
gates pass); they read the published files and train nothing.
"""

from collections import defaultdict
from typing import Any

import dagster as dg

from pixel_assets.defs.keys import GROUP_VERIFICATION, PUBLISHED_DATASET_KEY
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import settings as s
from pixel_assets.lib.storage import DataRoot
from pixel_assets.lib.training.curriculum import Curriculum, StageConfig
from pixel_assets.lib.training.plan import read_published_split as read_split

UPSTREAM_KEY = PUBLISHED_DATASET_KEY  # verify-then-publish: training reads what `published_dataset` promoted

TRAINING_SPLITS = ("train", "val")  # what training reads; the test split is evaluation's only


def records_by_family(root: DataRoot, splits: tuple[str, ...]) -> dict[str, dict[str, list[dict]]]:
    """family -> split -> records."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {s: [] for s in splits})
    for split in splits:
        for record in read_split(root, split):
            out[record["metadata"]["source_family"]][split].append(record)
    return out


def family_version(splits: dict[str, list[dict]]) -> str:
    """Hash of the (split, content_hash) pairs of a family's training records, order-free."""
    pairs = sorted((split, r["metadata"]["content_hash"]) for split, recs in splits.items() for r in recs)
    return s.version_hash("family", pairs)


EVALUATION_INPUTS = "evaluation"


def stage_families(stage: StageConfig) -> list[str]:
    """The registry families a stage reads (preference: its pair sources' families)."""
    fams = {f for group in (stage.source_families or {}).values() for f in group} if stage.kind == "preference" else set()
    return sorted(fams or set(stage.families))


def cumulative_families(cur: Curriculum) -> dict[str, list[str]]:
    """stage -> every family read by it and by the stages before it in the chain."""
    out, seen = {}, set()
    for stage in s.chain(cur):
        seen |= set(stage_families(stage))
        out[stage.name] = sorted(seen)
    return out


def build_training_inputs(cur: Curriculum, upstream: dg.AssetKey = UPSTREAM_KEY) -> dg.AssetsDefinition:
    cumulative = cumulative_families(cur)
    stages = {st.name: st for st in s.chain(cur)}
    specs = [dg.AssetSpec(s.training_inputs_key(name), deps=[upstream], group_name=GROUP_VERIFICATION, kinds={"json"},
                          description=f"Version of the published train/val records of the families {name} and the "
                                      f"stages before it read ({', '.join(fams)}): {name} goes stale when it changes.")
             for name, fams in cumulative.items()]
    specs.append(dg.AssetSpec(s.training_inputs_key(EVALUATION_INPUTS), deps=[upstream], group_name=GROUP_VERIFICATION,
                              kinds={"json"}, description="Version of the published test split (final_evaluation reads it)."))

    @dg.multi_asset(name="training_inputs", specs=specs,
                    description="What each training stage reads from the published dataset, as data versions.")
    def training_inputs(context: dg.AssetExecutionContext, data_root: DataRootResource):
        root = data_root.root()
        by_family = records_by_family(root, TRAINING_SPLITS)
        versions = {f: family_version(splits) for f, splits in by_family.items()}
        for name, fams in cumulative.items():
            own = stage_families(stages[name])
            yield dg.MaterializeResult(
                asset_key=s.training_inputs_key(name),
                data_version=dg.DataVersion(s.version_hash("inputs", [(f, versions.get(f)) for f in fams])),
                metadata={"families": ", ".join(own), "families_including_earlier_stages": len(fams),
                          **{f"{split}_records": sum(len(by_family[f][split]) for f in own if f in by_family)
                             for split in TRAINING_SPLITS}},
            )
        test = read_split(root, "test")
        yield dg.MaterializeResult(
            asset_key=s.training_inputs_key(EVALUATION_INPUTS),
            data_version=dg.DataVersion(s.version_hash("test", sorted(r["metadata"]["content_hash"] for r in test))),
            metadata={"test_records": len(test)},
        )

    return training_inputs
