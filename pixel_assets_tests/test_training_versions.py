"""The training stack's tested versions: pyproject's bounds are the tested ranges, the installed stack
passes, an untested version fails before any trainer starts and when the definitions load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pixel_assets.lib.training.versions import TESTED, UntestedVersionError, require_tested_versions, version_problems

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_bounds_are_the_tested_ranges():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {d.split(">=")[0].split("<")[0].strip(): d.split("#")[0].strip() for d in deps}
    for name, (low, high) in TESTED.items():
        assert by_name[name] == f"{name}>={low},<{high}", by_name[name]


def test_the_installed_stack_is_the_tested_one():
    assert version_problems() == []


def test_an_untested_version_names_the_package_and_the_range():
    installed = {name: low for name, (low, _high) in TESTED.items()}
    assert version_problems({**installed, "torch": "2.13.0+cpu"}) == []  # a local build label is the release
    with pytest.raises(UntestedVersionError, match=r"trl 1\.0\.0 is outside the tested range >=1\.16,<1\.17"):
        require_tested_versions({**installed, "trl": "1.0.0"})
    with pytest.raises(UntestedVersionError, match=r"transformers 4\.56\.0 .*>=5\.25,<6"):
        require_tested_versions({**installed, "transformers": "4.56.0"})
    assert "peft is not installed" in version_problems({**installed, "peft": None})[0]


def test_definitions_and_trainers_check_first(monkeypatch, tmp_path):
    from pixel_assets.defs.training.checkpoints import checkpoint_assets
    from pixel_assets.lib.training import versions
    from pixel_assets.lib.training.curriculum import load_curriculum
    from pixel_assets.lib.training.sft import SFTStageConfig, build_trainer

    monkeypatch.setattr(versions, "version_problems", lambda installed=None: ["trl 1.0.0 is outside ..."])
    with pytest.raises(UntestedVersionError, match="trl 1.0.0"):
        checkpoint_assets(load_curriculum(profile="demo"))
    with pytest.raises(UntestedVersionError):
        build_trainer(base=tmp_path, parent_adapter=None, tokenizer=None, train_rows=[], val_rows=None,
                      out_dir=tmp_path, config=SFTStageConfig(stage="s"), evaluate=False)
