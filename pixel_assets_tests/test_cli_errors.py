"""`pixel` error handling: bad input ends in one line `pixel CMD: error: REASON` and exit status 2
(no traceback, no input data quoted), argparse rejects meaningless sizes, unknown families are
refused, and `pixel manifest` defaults to the pipeline's data root (S3 when configured)."""

from __future__ import annotations

import io
import json

import pytest

from pixel_assets.cli import build_parser, main
from pixel_assets.cli._common import describe
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import S3DataRoot
from pixel_assets_tests import test_gates_helpers as h
from pixel_assets_tests.helpers import free_port

SECRET = "Jane Secretname 555-0100"  # stands for input data: must never reach the error line


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pixel {command}: error: "), err
    assert "Traceback" not in err and SECRET not in err
    return lines[0]


def usage_error(capsys, argv: list[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and fragment in err, err


# --- 1. one line, exit 2 --------------------------------------------------------------------------

def test_bad_s3_uri_is_one_line_and_debug_keeps_the_traceback(monkeypatch, capsys):
    monkeypatch.delenv("PIXEL_DEBUG", raising=False)
    assert main(["verify", "s3://"]) == 2
    assert "s3 URI without a bucket" in one_error_line(capsys, "verify")
    monkeypatch.setenv("PIXEL_DEBUG", "1")
    with pytest.raises(ValueError, match="without a bucket"):
        main(["verify", "s3://"])
    monkeypatch.delenv("PIXEL_DEBUG")
    with pytest.raises(ValueError, match="without a bucket"):
        main(["--debug", "verify", "s3://"])


def test_help_epilog_documents_exit_status_and_debug():
    text = build_parser().format_help()
    assert "PIXEL_DEBUG=1" in text and "pixel COMMAND: error: REASON" in text


def test_a_missing_command_module_stops_pixel(monkeypatch):
    """A listed command module that is not installed is a broken install: `pixel` says which one
    instead of starting without its commands (they used to vanish from --help silently)."""
    import pixel_assets.cli as cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "no_such_concern"))
    with pytest.raises(cli.CommandModuleMissing, match=r"pixel_assets\.cli\.no_such_concern"):
        build_parser()


def test_labeled_file_malformed_json_gives_position_only(tmp_path, capsys):
    path = tmp_path / "labeled.json"
    path.write_text(f'[{{"full_text": "{SECRET}", "spans": [\n  {SECRET}\n')
    assert main(["pii-eval", "--labeled", str(path), "--clean", "0"]) == 2
    line = one_error_line(capsys, "pii-eval")
    assert "not valid JSON (line 2, column 3)" in line


def test_labeled_file_missing(tmp_path, capsys):
    assert main(["pii-eval", "--labeled", str(tmp_path / "nope.json")]) == 2
    assert "No such file or directory" in one_error_line(capsys, "pii-eval")


@pytest.mark.parametrize("samples, problem", [
    ({"full_text": SECRET}, "top level is a JSON object, not a list"),
    ([], "empty"),
    ([{"full_text": SECRET, "spans": []}, SECRET], "item 1 is a JSON string"),
    ([{"full_text": SECRET, "spans": []}, {"spans": []}], "item 1: full_text is missing"),
    ([{"full_text": SECRET}], "item 0: spans is missing"),
    ([{"full_text": SECRET, "spans": []},
      {"full_text": SECRET, "spans": [{"entity_value": "Jane", "start_position": 0, "end_position": 4}]}],
     "item 1, span 0: lacks entity_type"),
    ([{"full_text": SECRET, "spans": [{"entity_type": "PERSON", "entity_value": "Jane",
                                      "start_position": SECRET, "end_position": 4}]}],
     "item 0, span 0: start_position is not an integer"),
    ([{"full_text": "Hi", "spans": [{"entity_type": "PERSON", "entity_value": "Jane",
                                     "start_position": 0, "end_position": 40}]}],
     "item 0, span 0: positions are not within full_text"),
])
def test_labeled_file_is_validated_up_front(tmp_path, capsys, samples, problem):
    path = tmp_path / "labeled.json"
    path.write_text(json.dumps(samples))
    assert main(["pii-eval", "--labeled", str(path), "--clean", "0"]) == 2
    line = one_error_line(capsys, "pii-eval")
    assert problem in line and "entity_type, entity_value, start_position, end_position" in line


def test_pii_detect_missing_or_malformed_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "hi"}\n'))
    assert main(["pii-detect", "--config", str(tmp_path / "nonexistent.yaml")]) == 2
    assert "No such file or directory" in one_error_line(capsys, "pii-detect")
    bad = tmp_path / "pii.yaml"
    bad.write_text(f'allow_list:\n  global: ["{SECRET}\n')
    assert main(["pii-detect", "--config", str(bad)]) == 2
    assert "not valid YAML (line" in one_error_line(capsys, "pii-detect")


def test_malformed_registry_yaml_is_reduced_to_a_position(tmp_path, capsys):
    reg = tmp_path / "registry.yaml"
    reg.write_text(f'families:\n  - name: "{SECRET}\n')
    assert main(["verify", str(tmp_path), "--registry", str(reg)]) == 2
    assert "registry is not valid YAML: line" in one_error_line(capsys, "verify")


@pytest.fixture
def offline_s3(no_aws_credentials, monkeypatch, tmp_path):
    # A closed port: should anything get as far as connecting, it fails at once.
    monkeypatch.setenv("PIXEL_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.chdir(tmp_path)


def test_manifest_on_s3_without_credentials(offline_s3, capsys):
    assert main(["manifest", "--root", "s3://bucket/x"]) == 2
    assert "credentials" in one_error_line(capsys, "manifest")


def test_gate_threshold_env_not_a_number(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PIXEL_GATE_MIN_PRESENT", "abc")
    assert main(["verify", str(tmp_path)]) == 2
    line = one_error_line(capsys, "verify")
    assert "PIXEL_GATE_MIN_PRESENT must be an integer" in line and "abc" not in line


def test_banding_out_of_range(capsys):
    usage_error(capsys, ["dedup", "banding", "--threshold", "1.5"], "strictly between 0 and 1")
    usage_error(capsys, ["dedup", "banding", "--bands", "0"], "positive integer")
    assert main(["dedup", "banding", "--bands", "200"]) == 2  # rows would be 0
    assert "at most --num-perm" in one_error_line(capsys, "dedup banding")
    assert main(["dedup", "banding", "--bands", "20", "--rows", "20"]) == 2
    assert "at most --num-perm" in one_error_line(capsys, "dedup banding")


def test_describe_withholds_third_party_messages():
    try:
        int(SECRET)
    except ValueError as exc:
        assert SECRET not in describe(exc) and "ValueError" in describe(exc)
    try:
        {}[SECRET]
    except KeyError as exc:
        assert SECRET not in describe(exc)
    try:
        {}["entity_type"]
    except KeyError as exc:
        assert describe(exc) == "missing key 'entity_type'"


# --- 2. sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, fragment", [
    (["bench", "validate", "--records", "-5"], "--records"),
    (["bench", "dedup", "--docs", "-5"], "--docs"),
    (["bench", "dedup", "--records", "-1"], "--records"),
    (["bench", "verify", "--conversations", "-1"], "--conversations"),
    (["bench", "compile", "--conversations", "10", "-1"], "--conversations"),
    (["bench", "compile", "--pii-sample", "-1"], "--pii-sample"),
    (["bench", "pii", "--conversations", "-1"], "--conversations"),
    (["bench", "pii", "--recompile-conversations", "0"], "--recompile-conversations"),
    (["pii-labeled-set", "--n", "-3", "--out", "x.json"], "--n"),
    (["pii-eval", "--generate", "-3"], "--generate"),
    (["pii-eval", "--generate", "0"], "--generate"),
    (["pii-eval", "--clean", "-1"], "--clean"),
    (["verify", ".", "--min-present", "0"], "--min-present"),
    (["demo", "--scale", "0"], "--scale"),
])
def test_meaningless_sizes_are_usage_errors(capsys, argv, fragment):
    usage_error(capsys, argv, fragment)


def test_zero_means_skip_where_documented():
    parser = build_parser()
    assert parser.parse_args(["pii-eval", "--clean", "0"]).clean == 0
    assert parser.parse_args(["pii-eval"]).generate is None  # default 2000, applied in the handler
    assert parser.parse_args(["bench", "compile", "--pii-sample", "0", "--normalize-sample", "0"]).pii_sample == 0
    assert parser.parse_args(["bench", "dedup", "--records", "0"]).records == 0
    usage_error_args = ["bench", "validate", "--records", "0"]
    with pytest.raises(SystemExit):
        parser.parse_args(usage_error_args)


# --- 3. manifest default root -------------------------------------------------------------------

def test_manifest_default_root_follows_s3_settings(monkeypatch, tmp_path, s3_server, s3_client, capsys):
    s3_client.create_bucket(Bucket="pixel-manifest-test")
    h.build_clean_dataset(S3DataRoot(s3_client, "pixel-manifest-test", "nightly"), load_registry())
    monkeypatch.chdir(tmp_path)  # a local ./.pixel must not be what is read
    monkeypatch.setenv("PIXEL_S3_BUCKET", "pixel-manifest-test")
    monkeypatch.setenv("PIXEL_S3_PREFIX", "nightly")
    monkeypatch.setenv("PIXEL_S3_ENDPOINT_URL", s3_server)
    assert main(["manifest", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["manifest"] == "s3://pixel-manifest-test/nightly/final_dataset/manifest.json"


def test_manifest_default_root_on_s3_without_credentials(offline_s3, monkeypatch, capsys):
    monkeypatch.setenv("PIXEL_S3_BUCKET", "bucket")
    assert main(["manifest"]) == 2
    assert "credentials" in one_error_line(capsys, "manifest")


# --- 4. unknown families ------------------------------------------------------------------------

def test_pii_detect_rejects_an_unknown_family(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "hi"}\n'))
    assert main(["pii-detect", "--family", "nosuch"]) == 2
    line = one_error_line(capsys, "pii-detect")
    assert "unknown family 'nosuch'" in line and all(name in line for name in load_registry().names)


def test_pii_eval_rejects_an_unknown_family(capsys):
    assert main(["pii-eval", "--generate", "5", "--clean", "0", "--family", "cptsdd"]) == 2
    line = one_error_line(capsys, "pii-eval")
    assert "unknown family 'cptsdd'" in line and "cptsd" in line


def _hint_command(hint: str) -> str:
    return next(line.strip() for line in hint.splitlines() if " dev -h 127.0.0.1" in line)


def test_demo_ui_hint_is_a_command_that_works_in_a_fresh_shell(monkeypatch, tmp_path):
    """`dagster dev` must be started with the demo's data root and instance, and the printed command
    must work in a shell where nothing was activated (dagster lives in .venv only)."""
    import os
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    from pixel_assets.cli.demo import ui_hint

    repo = Path(__file__).resolve().parents[1]
    venv_bin = Path(sys.executable).parent
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")]))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("PIXEL_CURRICULUM_PROFILE", raising=False)
    work = tmp_path / "clone"
    work.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):
        (work / name).write_text((repo / name).read_text())
    monkeypatch.chdir(work)
    monkeypatch.setenv("PIXEL_DATA_ROOT", "/tmp/elsewhere")
    command = _hint_command(ui_hint())
    assert command.startswith("PIXEL_DATA_ROOT=/tmp/elsewhere ") and "-m pixel_assets" not in command
    # A fresh shell: no venv activated, a bare PATH. `--version` in place of `dev` starts nothing.
    fresh = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c",
                            command.replace(" dev -h 127.0.0.1", " --version")],
                           cwd=work, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0 and "dagster" in fresh.stdout.lower(), (command, fresh.stderr[-500:])
    # The clone's own venv (./scripts/demo.sh) is named by its relative path.
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "dagster").symlink_to(venv_bin / "dagster")
    monkeypatch.delenv("PIXEL_DATA_ROOT")
    assert _hint_command(ui_hint()).split()[0] == ".venv/bin/dagster"
    assert shlex.split(_hint_command(ui_hint()))[:4] == [".venv/bin/dagster", "dev", "-h", "127.0.0.1"]
    monkeypatch.chdir(tmp_path)  # no dagster.yaml here: the run went to a temporary instance
    assert "temporary Dagster instance" in ui_hint()
    (tmp_path / "dagster.yaml").write_text((repo / "dagster.yaml").read_text())
    assert "-m pixel_assets.definitions" in ui_hint()  # no workspace.yaml here
