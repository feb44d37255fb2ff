"""The CLIP flow's warm start (issue 17, ``--init-from NAME@ALIAS``): both towers and the logit scale start from a
registered model's, a schedule's first run trains from scratch, differing towers are refused, and the champion gate
decides as for any run."""

from __future__ import annotations

import pytest
import torch

from replearn.flows.params import ClipParams
from replearn.infra.tracking import client, tracking_uri
from replearn.lib.clip.model import ClipConfig, TwoTower, read_model_state
from replearn.lib.clip.text_tower import TextVocab
from replearn.lib.errors import ReplearnInputError

pytestmark = pytest.mark.slow

SMALL = dict(epochs=1, dim=16)
NAME = "replearn-clip"


def _run(home, **kw):
    from replearn.flows.clip import clip_flow

    return clip_flow(ClipParams(home=str(home), **{**SMALL, **kw}))


def test_clip_continues_from_its_champion_at_the_registered_weights_and_the_gate_decides(
        prefect_harness, home, one_thread, monkeypatch):
    import replearn.flows.clip as clip_flow_module

    settings: list[dict] = []  # what names each run's checkpoint folder
    data_key = clip_flow_module.data_key_task
    monkeypatch.setattr(clip_flow_module, "data_key_task", lambda path, s: settings.append(s) or data_key(path, s))
    uri = tracking_uri(home)
    c = client(uri)

    first = _run(home, init_from=f"{NAME}@champion")  # nothing registered yet: from scratch, version 1
    assert first["init_from"] is None and "init_from" not in settings[0]
    assert str(first["model"]["version"]) == "1" and first["model"]["champion"]

    warm = _run(home, init_from=f"{NAME}@champion", lr=1e-12)  # almost no learning rate: the start stays
    assert warm["init_from"] == f"{NAME} v1" and settings[1]["init_from"] == [NAME, "1"]
    assert c.get_run(warm["mlflow_run_id"]).data.params["init_from"] == f"{NAME} v1"
    v1, after = read_model_state(first["stage_outputs"]["model"]), read_model_state(warm["stage_outputs"]["model"])
    assert v1["vocab"] == after["vocab"]
    cfg = ClipConfig.from_dict(v1["config"])
    torch.manual_seed(cfg.seed)  # where a run from scratch with this seed starts (lib/clip/model.py build_model)
    scratch = TwoTower(cfg, TextVocab.from_dict(v1["vocab"])).state_dict()
    params = [k for k, v in v1["state_dict"].items() if v.is_floating_point() and "running" not in k]
    assert "logit_scale" in params and "text.embed.weight" in params
    for k in params:
        torch.testing.assert_close(after["state_dict"][k], v1["state_dict"][k], rtol=0, atol=1e-7)
    # version 1 trained away from that start, so the check above cannot pass by starting from scratch
    assert max(float((v1["state_dict"][k] - scratch[k]).abs().max()) for k in params) > 1e-2

    # registered, and the gate decided against the champion as for any run
    assert str(warm["model"]["version"]) == "2" and str(warm["model"]["previous_champion"]) == "1"
    assert warm["model"]["champion"] == (warm["zero_shot_accuracy"] > first["zero_shot_accuracy"])
    tags = c.get_model_version(NAME, "2").tags
    assert tags["role"] == ("champion" if warm["model"]["champion"] else "challenger")
    assert "champion v1" in tags["comparison"]

    with pytest.raises(ReplearnInputError, match=r"\(replearn-clip v1\) was built with --dim 16; --dim 32 differs: "
                                                 r"pass --dim 16, or leave --init-from out"):
        _run(home, init_from=f"{NAME}@1", dim=32)
    with pytest.raises(ReplearnInputError, match=r"--text-tower transformer, --text-width 32 differ: pass "
                                                 r"--text-tower bag --text-width 128"):
        _run(home, init_from=f"{NAME}@1", text_tower="transformer", text_width=32)
