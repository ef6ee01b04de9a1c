"""The method table drives config validation, building and the protocols; the optimiser comes from the config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from skelact.config import COMMAND_LINE, load_config
from skelact.engine.optim import OptimizerSettings, build_optimizer
from skelact.errors import ConfigError
from skelact.methods import registry
from skelact.methods.registry import METHODS, SELF_SUPERVISED, SUPERVISED, encoder_prefix, get_method

REPO = Path(__file__).resolve().parents[1]
CTRGCN_JOINT = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"


def test_an_unknown_method_is_one_line_listing_the_table():
    with pytest.raises(ConfigError) as e:
        load_config(CTRGCN_JOINT, ["method.type=graphmae"])
    assert e.value.field == "method.type" and e.value.path == COMMAND_LINE
    assert e.value.message == ("unknown method 'graphmae'; known: supervised, frhead, skeletonclr, crossclr, "
                               "skeletonmae")
    assert "\n" not in str(e.value)


def test_a_new_row_is_all_a_method_needs(monkeypatch):
    """Validation, the protocols' encoder prefix and the kind checks read the table, not lists of their own."""
    from skelact.engine.build import method_spec

    row = dataclasses.replace(METHODS["skeletonclr"], name="toyclr", encoder_prefix="online.{view}.")
    monkeypatch.setitem(METHODS, "toyclr", row)
    loaded = load_config(CTRGCN_JOINT, ["method.type=toyclr"])  # accepted by validation now
    assert method_spec(loaded, SELF_SUPERVISED) is row
    with pytest.raises(ConfigError, match="skelact pretrain"):
        method_spec(loaded, SUPERVISED)
    assert encoder_prefix("toyclr", "bone") == "method.online.bone."
    assert registry.method_names(SELF_SUPERVISED) == ["skeletonclr", "crossclr", "skeletonmae", "toyclr"]
    monkeypatch.delitem(METHODS, "toyclr")
    with pytest.raises(ConfigError, match="known: supervised, frhead, skeletonclr, crossclr, skeletonmae$"):
        load_config(CTRGCN_JOINT, ["method.type=toyclr"])


def test_rows_say_kind_draws_and_encoder_prefix():
    assert [(n, s.kind, s.draws) for n, s in METHODS.items()] == [
        ("supervised", SUPERVISED, 1), ("frhead", SUPERVISED, 1), ("skeletonclr", SELF_SUPERVISED, 2),
        ("crossclr", SELF_SUPERVISED, 2), ("skeletonmae", SELF_SUPERVISED, 1)]
    assert encoder_prefix("frhead", "joint") == "method.model."
    assert encoder_prefix("skeletonmae", "joint") == "method.views.joint.encoder."
    assert encoder_prefix("crossclr", "bone") == "method.views.bone.encoder."
    with pytest.raises(ConfigError, match="cannot take an encoder from a 'mae' run"):
        encoder_prefix("mae", "joint")
    with pytest.raises(ConfigError, match="known: supervised, frhead"):
        get_method(None)


def test_method_settings_are_checked_where_they_were_set(tmp_path):
    from skelact.engine.build import method_settings_of

    settings = method_settings_of(load_config(CTRGCN_JOINT, ["method.type=frhead", "method.frhead.w_cl=0.5"]))
    assert settings.frhead.w_cl == 0.5 and settings.label_smoothing == 0.0
    with pytest.raises(ConfigError) as e:
        method_settings_of(load_config(CTRGCN_JOINT, ["method.type=frhead", "method.frhead.w_cl=-1"]))
    assert (e.value.field, e.value.path) == ("method.frhead.w_cl", COMMAND_LINE)
    with pytest.raises(ConfigError) as e:
        method_settings_of(load_config(CTRGCN_JOINT, ["method.type=skeletonclr", "method.skeletonclr.queue=5"]))
    assert e.value.field == "method.skeletonclr.queue" and "queue_size" in e.value.message


# ---------------------------------------------------------------------------------------------------------------
# optimisers


def one_step(kind: str) -> float:
    """One step from p = 1 on the loss 0.5 * p (gradient 0.5) with lr 0.1 and weight decay 0.1."""
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build_optimizer([p], lr=0.1, settings=OptimizerSettings(type=kind, weight_decay=0.1, momentum=0.0,
                                                                  nesterov=False))
    (0.5 * p).sum().backward()
    opt.step()
    return float(p.detach())


def test_optimizer_types_build_the_right_torch_optimiser():
    p = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(p, lr=0.1, settings=OptimizerSettings(type="sgd", momentum=0.8, nesterov=True))
    adam = build_optimizer(p, lr=0.1, settings=OptimizerSettings(type="adam", betas=(0.8, 0.9), eps=1e-6))
    adamw = build_optimizer(p, lr=0.1, settings=OptimizerSettings(type="adamw", weight_decay=0.05))
    assert type(sgd) is torch.optim.SGD and type(adam) is torch.optim.Adam and type(adamw) is torch.optim.AdamW
    assert sgd.param_groups[0]["momentum"] == 0.8 and sgd.param_groups[0]["nesterov"] is True
    assert adam.param_groups[0]["betas"] == (0.8, 0.9) and adam.param_groups[0]["eps"] == 1e-6
    assert adamw.param_groups[0]["weight_decay"] == 0.05
    # by hand: SGD p - lr (g + wd p) = 1 - 0.1 * 0.6; Adam's first step moves lr against the sign of g + wd p;
    # AdamW decays the weight apart from the gradient, p (1 - lr wd) - lr
    assert one_step("sgd") == pytest.approx(0.94)
    assert one_step("adam") == pytest.approx(0.9, abs=1e-6)
    assert one_step("adamw") == pytest.approx(0.89, abs=1e-6)


@pytest.mark.parametrize("override, field, words", [
    ("optimizer.type=rmsprop", "optimizer.type", "known: sgd, adam, adamw"),
    ("optimizer.betas=[0.9, 1.5]", "optimizer.betas", "two numbers in [0, 1)"),
    ("optimizer.eps=0", "optimizer.eps", "positive"),
])
def test_optimizer_settings_are_validated(override, field, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace(")", r"\)")) as e:
        load_config(CTRGCN_JOINT, [override])
    assert e.value.field == field and e.value.path == COMMAND_LINE
    # Nesterov needs momentum only for SGD
    assert load_config(CTRGCN_JOINT, ["optimizer.type=adamw", "optimizer.momentum=0"]).cfg.optimizer.type == "adamw"
