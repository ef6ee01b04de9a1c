"""Config loading: bases merged in order, command-line overrides, schema errors naming file and key, the shipped
NW-UCLA configs against CTR-GCN's published protocol."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skelact.config import COMMAND_LINE, check_model_arguments, load_config, parse_overrides, to_container, to_yaml
from skelact.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


MINIMAL = "data: {format: nw-ucla, source: nw_ucla, split: cross_view}\nmodel: {type: ctrgcn}\n"


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    """exp.yaml <- [base/a.yaml, base/b.yaml]; a sets epochs 10 and lr 0.2, b sets epochs 20, exp sets lr 0.3."""
    write(tmp_path / "base" / "a.yaml", MINIMAL + "epochs: 10\noptimizer: {lr: 0.2, weight_decay: 0.0005}\n")
    write(tmp_path / "base" / "b.yaml", "epochs: 20\nschedule: {milestones: [5, 8]}\n")
    return write(tmp_path / "exp" / "exp.yaml",
                 "_base_: [../base/a.yaml, ../base/b.yaml]\noptimizer: {lr: 0.3}\n")


def test_bases_merge_in_order_then_file_then_command_line(layered: Path):
    loaded = load_config(layered)
    cfg = loaded.cfg
    assert cfg.epochs == 20  # b after a
    assert cfg.optimizer.lr == 0.3  # the file after its bases
    assert cfg.optimizer.weight_decay == 0.0005  # untouched keys of a base survive
    assert list(cfg.schedule.milestones) == [5, 8]
    assert cfg.experiment == "exp"  # default: the file's name
    assert loaded.source_of("epochs").endswith("b.yaml")
    assert loaded.source_of("optimizer.lr").endswith("exp.yaml")

    over = load_config(layered, ["epochs=1", "optimizer.lr=0.05", "schedule.milestones=[2,3]",
                                 "data.max_train_samples=null"])
    assert over.cfg.epochs == 1 and over.cfg.optimizer.lr == 0.05
    assert list(over.cfg.schedule.milestones) == [2, 3]
    assert over.cfg.data.max_train_samples is None
    assert over.source_of("optimizer.lr") == COMMAND_LINE


def test_saved_config_loads_back_identically(layered: Path, tmp_path: Path):
    loaded = load_config(layered, ["trainer.precision=bf16-mixed", "seed=7"])
    saved = write(tmp_path / "run" / "config.yaml", to_yaml(loaded.cfg))
    again = load_config(saved)
    assert to_container(again.cfg) == to_container(loaded.cfg)
    assert again.cfg.experiment == "exp"  # not renamed after config.yaml


def test_unknown_key_in_a_base_names_that_base(tmp_path: Path):
    write(tmp_path / "base.yaml", MINIMAL + "optimizer: {learning_rate: 0.1}\n")
    top = write(tmp_path / "top.yaml", "_base_: base.yaml\nepochs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(top)
    err = info.value
    assert err.path == str(tmp_path / "base.yaml")
    assert err.field == "optimizer.learning_rate"
    assert "unknown key" in err.message and "lr" in err.message  # lists what optimizer accepts
    assert "\n" not in str(err)


def test_wrong_type_names_file_or_command_line(tmp_path: Path):
    bad = write(tmp_path / "bad.yaml", MINIMAL + "epochs: ten\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert (info.value.path, info.value.field) == (str(bad), "epochs")
    assert "wrong type" in info.value.message

    good = write(tmp_path / "good.yaml", MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(good, ["data.batch_size=0.5"])
    assert (info.value.path, info.value.field) == (COMMAND_LINE, "data.batch_size")
    with pytest.raises(ConfigError) as info:
        load_config(good, ["data.typo=1"])
    assert (info.value.path, info.value.field) == (COMMAND_LINE, "data.typo")


@pytest.mark.parametrize("override, field", [
    ("epochs=0", "epochs"),
    ("trainer.devices=0", "trainer.devices"),
    ("trainer.precision=8", "trainer.precision"),
    ("schedule.milestones=[30,10]", "schedule.milestones"),
    ("schedule.type=linear", "schedule.type"),
    ("data.modality=depth", "data.modality"),
    ("evaluate.checkpoint=first", "evaluate.checkpoint"),
    ("optimizer.lr=-1", "optimizer.lr"),
])
def test_value_checks(tmp_path: Path, override: str, field: str):
    good = write(tmp_path / "good.yaml", MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(good, [override])
    assert info.value.field == field
    assert info.value.path == COMMAND_LINE


def test_missing_required_keys_name_the_key(tmp_path: Path):
    cfg = write(tmp_path / "nomodel.yaml", "data: {format: nw-ucla, source: nw_ucla, split: cross_view}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.field == "model.type"
    cfg = write(tmp_path / "nosplit.yaml", "data: {format: nw-ucla, source: nw_ucla}\nmodel: {type: ctrgcn}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.field == "data.split"


def test_bad_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    broken = write(tmp_path / "broken.yaml", "epochs: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert info.value.path == str(broken) and info.value.field.startswith("line ")
    write(tmp_path / "x.yaml", "_base_: y.yaml\n")
    write(tmp_path / "y.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="include each other"):
        load_config(tmp_path / "x.yaml")
    missing_base = write(tmp_path / "m.yaml", "_base_: nowhere.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config(missing_base)
    assert info.value.field == "_base_" and "nowhere.yaml" in info.value.message
    with pytest.raises(ConfigError) as info:
        parse_overrides(["epochs"])
    assert info.value.path == COMMAND_LINE


def test_model_arguments_checked_against_the_constructor(tmp_path: Path):
    from skelact.engine.build import accepted_arguments, model_class

    base = write(tmp_path / "model.yaml", "model: {type: ctrgcn, base_chanels: 16}\n")
    top = write(tmp_path / "exp.yaml", "_base_: model.yaml\ndata: {format: nw-ucla, source: nw_ucla, "
                                       "split: cross_view}\n")
    loaded = load_config(top)
    cls = model_class(loaded)
    assert cls.__name__ == "CTRGCN"
    with pytest.raises(ConfigError) as info:
        check_model_arguments(loaded, accepted_arguments(cls), cls.__name__, cls.DATA_ARGUMENTS)
    assert info.value.field == "model.base_chanels"
    assert info.value.path == str(base)  # the base that set it, not the experiment file
    assert "base_channels" in info.value.message
    with pytest.raises(ConfigError) as info:
        model_class(load_config(top, ["model.type=resnet"]))
    assert info.value.field == "model.type" and info.value.path == COMMAND_LINE
    assert "stgcn, ctrgcn" in info.value.message  # the table of imported model classes lists the known ones


# ---------------------------------------------------------------------------------------------------------------
# the shipped configs


SHIPPED = sorted((CONFIGS / "nw_ucla").rglob("*.yaml")) + sorted((CONFIGS / "penn_action").rglob("*.yaml"))
STREAM_CONFIG = re.compile(r"(ctrgcn|stgcn)(_frhead)?_(joint|bone|joint_motion|bone_motion)")


def test_all_shipped_configs_load():
    """Every shipped config composes and validates; the stream configs say what their file name says."""
    assert {p.stem for p in SHIPPED} >= {"ctrgcn_joint", "ctrgcn_bone", "ctrgcn_joint_motion", "ctrgcn_bone_motion",
                                         "stgcn_joint", "ctrgcn_frhead_joint", "skeletonclr_joint", "crossclr_3view"}
    stgcn = load_config(CONFIGS / "nw_ucla" / "stgcn_joint.yaml").cfg  # ST-GCN's own rate: 0.1 for batch 64
    assert (stgcn.optimizer.lr, stgcn.optimizer.reference_batch_size) == (0.1, 64)
    penn = load_config(CONFIGS / "penn_action" / "ctrgcn_joint.yaml").cfg  # the video demo model
    assert (penn.data.format, penn.data.split, penn.model.type) == ("penn-action", "official", "ctrgcn")
    assert penn.data.test_pipeline[0]["type"] == "TorsoNormalize"
    checked = 0
    for path in SHIPPED:
        cfg = load_config(path).cfg
        assert cfg.experiment, path
        stream = STREAM_CONFIG.fullmatch(path.stem)
        if stream and path.parent.name == "nw_ucla":
            model, frhead, modality = stream.groups()
            assert cfg.data.modality == modality, path
            assert cfg.model.type == model, path
            assert cfg.method.type == ("frhead" if frhead else "supervised"), path
            assert cfg.experiment == f"nw_ucla_{path.stem}", path
            checked += 1
    assert checked == 9  # 4 CTR-GCN streams, 4 FR-Head streams, ST-GCN joint


def test_ctrgcn_nw_ucla_protocol_in_passes():
    """CTR-GCN config/ucla/default.yaml: batch 16, base_lr 0.1, weight_decay 1e-4, nesterov, warm_up_epoch 5,
    step [50], num_epoch 65, with the training list repeated 5 times per epoch: 325 / 25 / 250 passes."""
    cfg = load_config(CONFIGS / "nw_ucla" / "ctrgcn_joint.yaml").cfg
    repeat = 5
    assert cfg.epochs == 65 * repeat
    assert cfg.schedule.warmup_epochs == 5 * repeat
    assert list(cfg.schedule.milestones) == [50 * repeat]
    assert cfg.schedule.gamma == 0.1 and cfg.schedule.type == "step" and cfg.schedule.interval == "epoch"
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.reference_batch_size == 16 and cfg.data.batch_size == 16
    assert cfg.optimizer.weight_decay == 1e-4 and cfg.optimizer.momentum == 0.9 and cfg.optimizer.nesterov
    assert cfg.data.test_batch_size == 64 and cfg.data.drop_last and cfg.data.num_persons == 1
    assert (cfg.data.split, cfg.data.train_subset, cfg.data.test_subset) == ("cross_view", "train", "test")
    assert cfg.model.base_channels == 64 and cfg.model.num_blocks == 10


def test_nw_ucla_pipelines_are_the_ctrgcn_presets():
    """The YAML spells out the same steps as the transforms package's CTR-GCN NW-UCLA presets (52 frames)."""
    from skelact.data.transforms import PRESETS

    cfg = load_config(CONFIGS / "nw_ucla" / "ctrgcn_joint.yaml").cfg
    assert to_container(cfg.data.train_pipeline) == PRESETS["ctrgcn_ucla_train"]
    assert to_container(cfg.data.test_pipeline) == PRESETS["ctrgcn_ucla_test"]
    assert cfg.data.train_pipeline[-1]["window_size"] == 52
