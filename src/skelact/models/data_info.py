"""What a model learns about its data before it is built, and how a model declares which of it it takes.

The engine never types a model's data-dependent arguments into a config: it builds a :class:`DataInfo` from the
dataset (classes, joint layout, coordinates per joint, person slots) and calls the model class's
``from_data(data_info, **settings)``. A model states the constructor arguments the data decides in one place,
its ``DATA_ARGUMENTS`` (what :meth:`DataArguments.from_data` fills in); a model with other needs (a heatmap
model's ``in_channels`` is its number of joints) writes its own ``from_data``.

A config may still give a data argument (``model.layout: ntu25`` to insist on a graph); a value that disagrees
with the data is then one :class:`~skelact.errors.ConfigError` (a :class:`~skelact.errors.LayoutError` for the
graph) naming the argument, instead of a shape mismatch deep inside a convolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from skelact.errors import ConfigError, LayoutError
from skelact.skeleton.layout import Layout, get_layout


@dataclass(frozen=True)
class DataInfo:
    """The facts of a dataset a model may be built from."""

    num_classes: int
    #: the store's joint layout (the graph a GCN is built on)
    layout: Layout
    #: coordinates per joint of the keypoints
    in_channels: int
    #: person slots of a batch (``data.num_persons``)
    num_persons: int
    class_names: tuple[str, ...] = field(default_factory=tuple)


def same_layout(a: Layout, b: Layout) -> bool:
    """Two layouts describe the same skeleton graph (joint count, tree and centre; names may differ)."""
    return (a.num_joints == b.num_joints and tuple(a.parents) == tuple(b.parents) and a.center == b.center
            and tuple(a.center_joints) == tuple(b.center_joints))


def with_data_arguments(model_name: str, declared: Sequence[str], data: DataInfo, settings: dict[str, Any]
                        ) -> dict[str, Any]:
    """``settings`` with every argument of ``declared`` taken from ``data``; a setting that names one of them
    must agree with the data."""
    out = dict(settings)
    for name in declared:
        value = getattr(data, name)
        given = out.get(name)
        if name == "layout" and given is not None:
            try:
                wanted = get_layout(given)
            except LayoutError as e:
                raise LayoutError(e.message, field="layout") from None
            if not same_layout(wanted, value):
                raise LayoutError(f"{model_name}'s graph is built on layout {wanted.name!r} ({wanted.num_joints} "
                                  f"joints) but the data has layout {value.name!r} ({value.num_joints} joints); use "
                                  "a dataset with that layout or leave the layout out to build the graph from the "
                                  "data", field="layout")
        elif given is not None and given != value:
            raise ConfigError(f"is {given!r} but the data gives {value!r}; leave it out to use the data's value",
                              field=name)
        out[name] = value
    return out


class DataArguments:
    """Mixin of a model whose data-dependent constructor arguments are ``DATA_ARGUMENTS``."""

    #: constructor arguments the data decides (names of :class:`DataInfo` fields)
    DATA_ARGUMENTS: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: DataInfo, **settings: Any) -> Any:
        return cls(**with_data_arguments(cls.__name__, cls.DATA_ARGUMENTS, data, settings))
