"""Where stage outputs go (infra/caching.py): a content-addressed folder per stage and inputs, one attempt folder
per run in it, and only output parameters may be placed."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import task

from replearn.infra.caching import STAGE_CACHE, StageOut, place_outputs, stage_key


@task(name="toy-stage", cache_policy=STAGE_CACHE)
def toy_stage(source: str, out_path: str, run_id: str, scale: int = 2) -> str:
    return out_path


def test_outputs_go_to_the_stage_folder_of_their_inputs_one_attempt_folder_per_run(tmp_path):
    home = str(tmp_path)
    a = place_outputs(toy_stage, "corpus-hash", StageOut(home, "run-a", ("vectors.npz",)), "run-a")
    b = place_outputs(toy_stage, "corpus-hash", StageOut(home, "run-b", ("vectors.npz",)), "run-b")
    other = place_outputs(toy_stage, "other-hash", StageOut(home, "run-a", ("vectors.npz",)), "run-a")
    pa, pb, po = Path(a["out_path"]), Path(b["out_path"]), Path(other["out_path"])
    key = stage_key(toy_stage, {"source": "corpus-hash", "out_path": "x", "run_id": "y", "scale": 2})[:24]
    assert pa == tmp_path / "stages" / "toy-stage" / key / "run-a" / "vectors.npz"
    assert pb == tmp_path / "stages" / "toy-stage" / key / "run-b" / "vectors.npz"  # same inputs: same folder
    assert po.parents[1] != pa.parents[1]                                            # other inputs: another
    assert a["scale"] == 2 and a["source"] == "corpus-hash"                          # defaults bound too


def test_a_plain_path_is_left_alone_and_only_output_parameters_are_placed(tmp_path):
    assert place_outputs(toy_stage, "h", "/x/y.npz", "r")["out_path"] == "/x/y.npz"
    with pytest.raises(ValueError, match="source is not an output parameter"):
        place_outputs(toy_stage, StageOut(str(tmp_path), "r"), "/x/y.npz", "r")


def test_a_part_that_leaves_the_data_home_is_refused(tmp_path):
    with pytest.raises(Exception, match="outside|leave|home"):
        place_outputs(toy_stage, "h", StageOut(str(tmp_path), "r", ("..",) * 6 + ("etc", "passwd")), "r")


def test_clear_unfinished_removes_a_killed_runs_temporaries_and_keeps_its_complete_outputs(tmp_path):
    from replearn.infra.caching import clear_unfinished

    done = tmp_path / "stages" / "tokenize" / "k1" / "run-x" / "tokens"
    done.mkdir(parents=True)
    (done / "part-0.parquet").write_bytes(b"whole")
    half = tmp_path / "stages" / "encode-corpus" / "k2" / "run-x" / ".encoded.tmp-37b7"
    half.mkdir(parents=True)
    (half / "ids.int32").write_bytes(b"half")
    other = tmp_path / "stages" / "encode-corpus" / "k2" / "run-y" / ".encoded.tmp-1"
    other.mkdir(parents=True)  # another run's: not touched
    assert clear_unfinished(tmp_path, "run-x") == [half]
    assert (done / "part-0.parquet").exists() and not half.parent.exists() and other.exists()
