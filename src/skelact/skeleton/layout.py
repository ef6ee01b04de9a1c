"""Joint layouts as data.

A layout names the joints of a skeleton, how they connect, which joint is the centre, the body parts (SkeletonMAE
masks whole parts) and the left/right pairs (for flipping). Built-in layouts are YAML files shipped in
``skelact/skeleton/layouts/``; a user adds a skeleton by writing the same small YAML file, never by editing code.

The YAML form::

    name: my_skeleton
    description: free text
    joints: [pelvis, spine, neck, head, l_shoulder, ...]   # order = the joint axis V of the data
    bones:                                                # undirected, must form a tree over all joints
      - [spine, pelvis]
      - ...
    # or, instead of bones, a parent list (one entry per joint; a root is its own parent, null or -1):
    # parents: [null, pelvis, spine, ...]
    center: neck                                           # the root of the tree (ST-GCN's "centre of gravity")
    # or a virtual centre, the mean of named joints (no new joint column in the data):
    # center: {midpoint: [left_hip, right_hip]}
    roots: [neck, left_wrist]                              # optional: one root per tree when the joints form a
                                                           # forest (several unconnected trees)
    extra_edges: []                                        # optional non-tree edges, used by graphs only
    parts: {torso: [pelvis, spine, neck], head: [head], ...}
    flip_pairs: [[l_shoulder, r_shoulder], ...]

Joints may be referred to by name or by 0-based index everywhere. Bones are oriented towards the centre by a
breadth-first walk, so ``parents[v]`` is the neighbour of ``v`` one hop closer to the centre; this is the
"inward" direction of 2s-AGCN / CTR-GCN and the bone vector of the bone modality is ``x[v] - x[parents[v]]``.

Forests (issue 27): tracked points with no anatomical link (two hands and elbows) form several trees. Each tree has
one root, which is its own parent, so its bone is zero like the centre's. The roots come from ``roots`` or, with a
``parents`` list, from its null / -1 entries; the tree holding the centre is always rooted at the centre (for a
virtual centre: at its anchor, below, unless ``roots`` names another joint of that tree). Without either, bones
must form one tree, so a forgotten bone is still reported.

A virtual centre ``{midpoint: [a, b, ...]}`` is what centring transforms subtract: the mean of those joints'
coordinates, skipping missing ones (``Layout.center_joints``). For graphs it is anchored at one real joint,
``Layout.center``: the joint of their tree whose largest hop distance to the named joints is smallest (ties: the
smaller sum of distances, then the lower index), i.e. the joint nearest to the midpoint along the tree (the pelvis
for two hips joined through it). Graph partitions measure each joint's distance to the root of its own tree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from skelact.errors import LayoutError

_BUILTIN_PACKAGE = "skelact.skeleton.layouts"


@dataclass(frozen=True)
class Layout:
    """An immutable joint layout. Build it with :func:`get_layout`, :func:`load_layout` or :meth:`from_dict`."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    center: int
    # A dict is unhashable; parts are derived data for equality purposes too, so leave them out of the hash
    # and keep Layout usable as a cache key.
    parts: Mapping[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    flip_pairs: tuple[tuple[int, int], ...] = ()
    extra_edges: tuple[tuple[int, int], ...] = ()
    description: str = ""
    #: one root per tree, the centre's tree first; ``(center,)`` for a single tree
    roots: tuple[int, ...] = ()
    #: the joints whose mean is the point centring transforms subtract; ``(center,)`` unless the centre is virtual
    center_joints: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Defaults that depend on ``center``: a layout built directly stays a single tree with a joint centre.
        if not self.roots:
            object.__setattr__(self, "roots", (self.center,))
        if not self.center_joints:
            object.__setattr__(self, "center_joints", (self.center,))

    @property
    def is_virtual_center(self) -> bool:
        """The centre is a midpoint of joints rather than one joint."""
        return self.center_joints != (self.center,)

    def root_of_joint(self) -> np.ndarray:
        """For each joint, the root of its own tree (follow ``parents`` until a joint is its own parent)."""
        out = np.empty(self.num_joints, dtype=np.int64)
        for v in range(self.num_joints):
            u = v
            while self.parents[u] != u:
                u = self.parents[u]
            out[v] = u
        return out

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """The tree edges (``V`` minus the number of roots) as ``(child, parent)`` pairs, child further from its
        tree's root."""
        return tuple((v, p) for v, p in enumerate(self.parents) if v != p)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """All graph edges (tree bones then extra edges) as ``(i, j)`` pairs; undirected in meaning."""
        return self.bones + tuple(self.extra_edges)

    def index(self, joint: str | int) -> int:
        """The 0-based index of a joint given by name or index."""
        return _resolve_joint(joint, self.joints, self.name, "joint")

    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left/right pair: ``x[..., perm, :]`` is the mirrored skeleton's joints."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def part_of_joint(self) -> np.ndarray:
        """For each joint, the index of the first part (in ``parts`` order) that contains it, or -1."""
        owner = np.full(self.num_joints, -1, dtype=np.int64)
        for k, members in enumerate(self.parts.values()):
            for j in members:
                if owner[j] < 0:
                    owner[j] = k
        return owner

    def to_dict(self) -> dict[str, Any]:
        """The YAML form, by joint name; ``Layout.from_dict(l.to_dict())`` equals ``l``."""
        names = self.joints
        d: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "joints": list(names),
            "bones": [[names[c], names[p]] for c, p in self.bones],
            "center": ({"midpoint": [names[j] for j in self.center_joints]} if self.is_virtual_center
                       else names[self.center]),
            "parts": {k: [names[j] for j in v] for k, v in self.parts.items()},
            "flip_pairs": [[names[a], names[b]] for a, b in self.flip_pairs],
        }
        if len(self.roots) > 1 or self.is_virtual_center:
            d["roots"] = [names[r] for r in self.roots]
        if self.extra_edges:
            d["extra_edges"] = [[names[a], names[b]] for a, b in self.extra_edges]
        return d

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], source: str | PathLike | None = None) -> "Layout":
        """Validate a layout description and build it. Errors name ``source`` and the offending field."""
        src = None if source is None else str(source)
        if not isinstance(spec, Mapping):
            raise LayoutError(f"expected a mapping with joints/bones/center, got {type(spec).__name__}", src)
        known = {"name", "description", "joints", "bones", "parents", "center", "parts", "flip_pairs",
                 "extra_edges", "roots"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise LayoutError(f"unknown key(s) {unknown}; expected some of {sorted(known)}", src, unknown[0])
        name = str(spec.get("name") or (Path(src).stem if src else "custom"))
        joints_raw = spec.get("joints")
        if not isinstance(joints_raw, (list, tuple)) or not joints_raw:
            raise LayoutError("must be a non-empty list of joint names", src, "joints")
        joints = tuple(str(j) for j in joints_raw)
        dup = sorted({j for j in joints if joints.count(j) > 1})
        if dup:
            raise LayoutError(f"duplicate joint name(s) {dup}", src, "joints")
        num = len(joints)

        def joint(ref: Any, where: str) -> int:
            return _resolve_joint(ref, joints, src, where)

        if "center" not in spec:
            raise LayoutError("missing: name or index of the centre joint", src, "center")
        center_joints = _center_joints(spec["center"], joint, src)

        has_bones, has_parents = "bones" in spec, "parents" in spec
        if has_bones == has_parents:
            raise LayoutError("give exactly one of 'bones' (list of joint pairs) or 'parents'", src, "bones")
        if has_bones:
            undirected = _pairs(spec["bones"], joint, src, "bones")
        else:
            plist = spec["parents"]
            if not isinstance(plist, (list, tuple)) or len(plist) != num:
                raise LayoutError(f"must list one parent per joint ({num})", src, "parents")
            undirected = []
            for v, p in enumerate(plist):
                if p is None or (isinstance(p, int) and not isinstance(p, bool) and p == -1):
                    continue
                pi = joint(p, f"parents[{v}]")
                if pi != v:
                    undirected.append((v, pi))
        where = "bones" if has_bones else "parents"
        neighbours = _tree_neighbours(undirected, num, joints, src, where)
        declared_roots = None
        if "roots" in spec:
            raw_roots = spec["roots"]
            if not isinstance(raw_roots, (list, tuple)) or not raw_roots:
                raise LayoutError("must be a non-empty list of joints, one root per tree", src, "roots")
            declared_roots = [joint(r, f"roots[{k}]") for k, r in enumerate(raw_roots)]
        elif not has_bones:
            # a parents list declares its roots by entries with no parent
            declared_roots = [v for v in range(num) if v not in {a for a, _ in undirected}]
        roots = _choose_roots(neighbours, center_joints, declared_roots, "roots" in spec, joints, src, where)
        center = roots[0]
        parents = _orient_forest(neighbours, roots)

        parts_raw = spec.get("parts") or {}
        if not isinstance(parts_raw, Mapping):
            raise LayoutError("must map part names to joint lists", src, "parts")
        parts = {}
        for pname, members in parts_raw.items():
            if not isinstance(members, (list, tuple)) or not members:
                raise LayoutError("must be a non-empty list of joints", src, f"parts.{pname}")
            parts[str(pname)] = tuple(joint(m, f"parts.{pname}") for m in members)
        flip_pairs = tuple(_pairs(spec.get("flip_pairs") or [], joint, src, "flip_pairs"))
        seen: set[int] = set()
        for a, b in flip_pairs:
            if a == b or a in seen or b in seen:
                raise LayoutError(f"joint pair ({joints[a]}, {joints[b]}) repeats a joint", src, "flip_pairs")
            seen.update((a, b))
        tree = {frozenset(e) for e in undirected}
        extra = tuple(e for e in _pairs(spec.get("extra_edges") or [], joint, src, "extra_edges")
                      if frozenset(e) not in tree)
        return cls(name=name, joints=joints, parents=tuple(parents), center=center, parts=parts,
                   flip_pairs=flip_pairs, extra_edges=extra, description=str(spec.get("description") or ""),
                   roots=tuple(roots), center_joints=tuple(center_joints))


def _resolve_joint(ref: Any, joints: tuple[str, ...], src: str | None, where: str) -> int:
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if 0 <= int(ref) < len(joints):
            return int(ref)
        raise LayoutError(f"joint index {ref} is out of range 0..{len(joints) - 1}", src, where)
    if isinstance(ref, str) and ref in joints:
        return joints.index(ref)
    raise LayoutError(f"unknown joint {ref!r}", src, where)


def _pairs(raw: Any, joint, src: str | None, where: str) -> list[tuple[int, int]]:
    if not isinstance(raw, (list, tuple)):
        raise LayoutError("must be a list of [joint, joint] pairs", src, where)
    out = []
    for k, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise LayoutError(f"entry {pair!r} is not a [joint, joint] pair", src, f"{where}[{k}]")
        out.append((joint(pair[0], f"{where}[{k}]"), joint(pair[1], f"{where}[{k}]")))
    return out


def _center_joints(raw: Any, joint, src) -> list[int]:
    """The joint(s) whose mean is the centre: one joint, or ``{midpoint: [joints]}`` for a virtual centre."""
    if isinstance(raw, Mapping):
        if set(raw) != {"midpoint"} or not isinstance(raw["midpoint"], (list, tuple)) or not raw["midpoint"]:
            raise LayoutError("expected a joint or {midpoint: [joint, joint, ...]}", src, "center")
        members = [joint(j, f"center.midpoint[{k}]") for k, j in enumerate(raw["midpoint"])]
        if len(set(members)) != len(members):
            raise LayoutError("the midpoint names a joint twice", src, "center.midpoint")
        return members
    return [joint(raw, "center")]


def _tree_neighbours(edges: list[tuple[int, int]], num: int, joints, src, where: str) -> list[list[int]]:
    """Neighbour lists of the bones, which must form a forest (no self-loop, repeated bone or cycle).

    Problems are reported in the order a user can fix them: a self-loop or repeated bone, then the first bone
    that closes a cycle (with the cycle spelled out).
    """
    seen: set[frozenset[int]] = set()
    neighbours: list[list[int]] = [[] for _ in range(num)]
    for a, b in edges:
        if a == b:
            raise LayoutError(f"bone ({joints[a]}, {joints[a]}) joins a joint to itself", src, where)
        if frozenset((a, b)) in seen:
            raise LayoutError(f"bone ({joints[a]}, {joints[b]}) is listed twice", src, where)
        cycle = _path(neighbours, b, a)
        if cycle is not None:
            loop = " - ".join(joints[v] for v in [a] + cycle)
            raise LayoutError(f"bone ({joints[a]}, {joints[b]}) closes the cycle {loop}; bones must form a tree, "
                              "put additional connections under 'extra_edges'", src, where)
        seen.add(frozenset((a, b)))
        neighbours[a].append(b)
        neighbours[b].append(a)
    return neighbours


def _hops_from(neighbours: list[list[int]], start: int) -> dict[int, int]:
    """Hop distance from ``start`` to every joint of its tree."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for u in neighbours[v]:
            if u not in dist:
                dist[u] = dist[v] + 1
                queue.append(u)
    return dist


def _choose_roots(neighbours, center_joints: list[int], declared: list[int] | None, explicit: bool, joints, src,
                  where: str) -> list[int]:
    """One root per tree, the centre's tree first (its root becomes ``Layout.center``)."""
    tree_of = _hops_from(neighbours, center_joints[0])
    outside = [joints[j] for j in center_joints if j not in tree_of]
    if outside:
        raise LayoutError(f"the midpoint's joint(s) {outside} are not in the same tree as "
                          f"{joints[center_joints[0]]!r}", src, "center")
    if len(center_joints) == 1:
        anchor = center_joints[0]
    else:
        far = {j: _hops_from(neighbours, j) for j in center_joints}
        anchor = min(tree_of, key=lambda v: (max(far[j][v] for j in center_joints),
                                             sum(far[j][v] for j in center_joints), v))
    if declared is None:
        unreached = [joints[v] for v in range(len(joints)) if v not in tree_of]
        if unreached:
            raise LayoutError(f"joint(s) {unreached} are not connected to the centre {joints[anchor]!r}; if the "
                              "skeleton is several trees, name one root per tree under 'roots'", src, where)
        return [anchor]
    field_name = "roots" if explicit else where
    roots = [anchor]
    covered = set(tree_of)
    for r in declared:
        if r in tree_of:
            if explicit and r != anchor and len(center_joints) == 1:
                raise LayoutError(f"root {joints[r]!r} is in the tree of the centre {joints[anchor]!r}, whose root "
                                  "is the centre", src, field_name)
            if explicit and len(center_joints) > 1:
                roots[0] = r  # a virtual centre's tree may be rooted where the user says
            continue
        if r in covered:
            raise LayoutError(f"root {joints[r]!r} is in a tree that already has a root", src, field_name)
        roots.append(r)
        covered.update(_hops_from(neighbours, r))
    unreached = [joints[v] for v in range(len(joints)) if v not in covered]
    if unreached:
        raise LayoutError(f"joint(s) {unreached} are in no tree with a root; name one of them under 'roots'",
                          src, field_name)
    return roots


def _orient_forest(neighbours: list[list[int]], roots: list[int]) -> list[int]:
    """Parent of each joint on the shortest path to the root of its tree; a root is its own parent."""
    parents = [-1] * len(neighbours)
    for root in roots:
        parents[root] = root
        queue = deque([root])
        while queue:
            v = queue.popleft()
            for u in neighbours[v]:
                if parents[u] < 0:
                    parents[u] = v
                    queue.append(u)
    return parents


def _path(neighbours: list[list[int]], start: int, goal: int) -> list[int] | None:
    """Joints on the path from ``start`` to ``goal`` in the forest built so far, or None if not connected."""
    previous = {start: start}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            path = [v]
            while v != start:
                v = previous[v]
                path.append(v)
            return path[::-1]
        for u in neighbours[v]:
            if u not in previous:
                previous[u] = v
                queue.append(u)
    return None


def available_layouts() -> list[str]:
    """Names of the built-in layouts."""
    files = resources.files(_BUILTIN_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def load_layout(path: str | PathLike) -> Layout:
    """Read a user layout from a YAML file."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise LayoutError(f"cannot read layout file ({e.strerror or e})", p) from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise LayoutError(f"not valid YAML ({getattr(e, 'problem', e)})", p, where) from None
    return Layout.from_dict(spec, source=p)


@lru_cache(maxsize=None)
def _builtin(name: str) -> Layout:
    import yaml

    res = resources.files(_BUILTIN_PACKAGE).joinpath(f"{name}.yaml")
    return Layout.from_dict(yaml.safe_load(res.read_text()), source=f"<built-in layout {name}>")


def get_layout(name_or_path: "str | PathLike | Layout") -> Layout:
    """A built-in layout by name (see :func:`available_layouts`), or a user layout from a YAML path."""
    if isinstance(name_or_path, Layout):
        return name_or_path
    key = str(name_or_path)
    if key in available_layouts():
        return _builtin(key)
    if key.endswith((".yaml", ".yml")) or Path(key).is_file():
        return load_layout(key)
    raise LayoutError(f"unknown layout {key!r}; built-in layouts are {available_layouts()} "
                      "or give the path of a layout YAML file")
