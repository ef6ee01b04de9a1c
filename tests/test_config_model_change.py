"""Changing ``model.type`` over a config composed for another model (issue 27, item 7): the old model's settings
are an error naming them, unless ``_replace_`` starts the section afresh or each is set again."""

from __future__ import annotations

from pathlib import Path

import pytest

from skelact.config import COMMAND_LINE, check_model_arguments, load_config
from skelact.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
CTRGCN_CONFIG = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"
CTRGCN_BASE = REPO / "configs" / "_base_" / "models" / "ctrgcn.yaml"
#: what configs/_base_/models/ctrgcn.yaml sets beside the type, all of which ST-GCN's constructor also takes
CTRGCN_KEYS = ["base_channels", "num_blocks", "strategy", "dropout"]


def test_stgcn_over_a_ctrgcn_config_names_the_stale_keys():
    with pytest.raises(ConfigError) as info:
        load_config(CTRGCN_CONFIG, ["model.type=stgcn"])
    err = info.value
    assert err.path == COMMAND_LINE and err.field == "model.base_channels"
    assert "for model 'ctrgcn'" in err.message and "now 'stgcn'" in err.message
    assert str(CTRGCN_BASE.name) in err.message and "model._replace_=true" in err.message
    assert all(f"model.{key}" in err.message for key in CTRGCN_KEYS)
    assert "\n" not in str(err)


def test_replace_starts_the_model_section_afresh():
    from skelact.engine.build import accepted_arguments, model_class

    loaded = load_config(CTRGCN_CONFIG, ["model._replace_=true", "model.type=stgcn", "model.base_channels=8"])
    assert dict(loaded.cfg.model) == {"type": "stgcn", "base_channels": 8}  # nothing of CTR-GCN's is left
    assert "model.strategy" not in loaded.sources and loaded.source_of("model") == COMMAND_LINE
    cls = model_class(loaded)
    assert cls.__name__ == "STGCN"
    check_model_arguments(loaded, accepted_arguments(cls), cls.__name__, cls.DATA_ARGUMENTS)
    # the other sections are untouched by the model's replacement
    assert load_config(CTRGCN_CONFIG).cfg.data == loaded.cfg.data


def test_replace_in_a_file_and_keys_set_again(tmp_path):
    mine = tmp_path / "stgcn_over_ctrgcn.yaml"
    mine.write_text(f"_base_: {CTRGCN_CONFIG}\nmodel: {{_replace_: true, type: stgcn, num_blocks: 4}}\n")
    loaded = load_config(mine)
    assert dict(loaded.cfg.model) == {"type": "stgcn", "num_blocks": 4}
    assert loaded.source_of("model.num_blocks") == str(mine)
    # setting every old key again after the change is as explicit as replacing the section
    again = load_config(CTRGCN_CONFIG, ["model.type=stgcn", "model.strategy=spatial", "model.base_channels=64",
                                        "model.num_blocks=10", "model.dropout=0.5"])
    assert again.cfg.model.strategy == "spatial" and again.cfg.model.dropout == 0.5
    # one left out is still named
    with pytest.raises(ConfigError) as info:
        load_config(CTRGCN_CONFIG, ["model.type=stgcn", "model.base_channels=64", "model.num_blocks=10",
                                    "model.dropout=0.5"])
    assert info.value.field == "model.strategy" and "model.base_channels" not in info.value.message
    # the same type again is no change
    assert load_config(CTRGCN_CONFIG, ["model.type=ctrgcn"]).cfg.model.strategy == "inward_outward"


def test_replace_of_a_schema_section_and_bad_marks():
    loaded = load_config(CTRGCN_CONFIG, ["schedule._replace_=true"])
    assert list(loaded.cfg.schedule.milestones) == [] and loaded.cfg.schedule.warmup_epochs == 0  # the defaults
    with pytest.raises(ConfigError, match="expected true or false") as info:
        load_config(CTRGCN_CONFIG, ["model._replace_=yes please"])
    assert info.value.field == "model._replace_"
    with pytest.raises(ConfigError, match="a list is always replaced whole") as info:
        load_config(CTRGCN_CONFIG, ["data.train_pipeline._replace_=true"])
    assert info.value.field == "data.train_pipeline._replace_"
