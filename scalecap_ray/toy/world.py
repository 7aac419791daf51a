"""The toy world: scenes whose truth is known, for training a small VLM and measuring
caption quality against the truth.

A scene is a 3 x 3 grid of cells holding 1-4 objects of distinct kinds.  Each object has a
kind, a colour, a size and a cell; two relations follow from the layout: an object is *on*
a supporter (table, chair, bench, tree, car) when it sits in the cell right above it, and
*beside* another when their cells touch in the same row.  Some kinds come in pairs in the
world (a cup on a table, a bird on a tree, a cat on a chair): `PRIOR_PAIRS`, the
co-occurrences a language prior learns and a captioner then hallucinates.

Everything here is plain data and deterministic from a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("table", "chair", "bench", "tree", "car", "boat", "sign", "lamp",
         "book", "cup", "cat", "bird")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES = ("small", "large")
# Cells in reading order, and how a caption names them.
GRID = 3
POSITIONS = ("top left", "top", "top right", "left", "centre", "right",
             "bottom left", "bottom", "bottom right")
POSITION_PHRASES = {
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "centre": "in the centre", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}
# What may sit on what (the object in the cell right above its supporter).
SUPPORTS = {
    "table": ("cup", "book", "lamp", "cat"),
    "chair": ("cat", "book"),
    "bench": ("cat", "bird", "book", "cup"),
    "tree": ("bird",),
    "car": ("bird", "cat"),
}
# The co-occurrences of the world: anchor -> the object usually on it.
PRIOR_PAIRS = {"table": "cup", "tree": "bird", "chair": "cat"}
# Each kind has a usual colour (trees are mostly green), taken at `WorldParams.usual_colour`.
USUAL_COLOUR = {"table": "orange", "chair": "red", "bench": "green", "tree": "green",
                "car": "red", "boat": "blue", "sign": "yellow", "lamp": "yellow",
                "book": "purple", "cup": "blue", "cat": "orange", "bird": "yellow"}
# Captions describe objects in this order (anchors before what sits on them).
CAPTION_ORDER = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class ToyObject:
    kind: str
    colour: str
    size: str
    row: int
    col: int

    @property
    def position(self) -> str:
        return POSITIONS[self.row * GRID + self.col]


@dataclass(frozen=True)
class Scene:
    """One image's truth: its objects in caption order."""

    objects: tuple[ToyObject, ...]

    def find(self, kind: str) -> ToyObject | None:
        return next((o for o in self.objects if o.kind == kind), None)

    def at(self, row: int, col: int) -> ToyObject | None:
        return next((o for o in self.objects if (o.row, o.col) == (row, col)), None)

    @property
    def kinds(self) -> set[str]:
        return {o.kind for o in self.objects}

    def on(self, obj: ToyObject) -> ToyObject | None:
        """The supporter `obj` sits on, if any."""
        below = self.at(obj.row + 1, obj.col)
        if below is not None and obj.kind in SUPPORTS.get(below.kind, ()):
            return below
        return None

    def beside(self, obj: ToyObject) -> ToyObject | None:
        """The neighbour in the same row: the one to the right, else the one to the left."""
        return self.at(obj.row, obj.col + 1) or self.at(obj.row, obj.col - 1)

    def to_json(self) -> dict:
        return {"objects": [
            {"kind": o.kind, "colour": o.colour, "size": o.size, "position": o.position,
             "row": o.row, "col": o.col,
             "on": (s.kind if (s := self.on(o)) else None),
             "beside": (b.kind if (b := self.beside(o)) else None)}
            for o in self.objects]}

    @classmethod
    def from_json(cls, data: dict) -> Scene:
        return cls(tuple(ToyObject(o["kind"], o["colour"], o["size"], o["row"], o["col"])
                         for o in data["objects"]))


@dataclass(frozen=True)
class WorldParams:
    """How scenes are drawn from the world.  `pair_rate`: how often an anchor of
    `PRIOR_PAIRS` has its partner on it; `on_rate`: how often another object that can sit
    on a supporter in the scene is put on it; `usual_colour`: how often an object has its
    kind's usual colour (else any other, evenly)."""

    pair_rate: float = 0.5
    on_rate: float = 0.3
    usual_colour: float = 0.5
    counts: tuple[float, ...] = (0.2, 0.35, 0.3, 0.15)  # P(1..4 objects)


def _cells(rng: random.Random) -> list[tuple[int, int]]:
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    rng.shuffle(cells)
    return cells


def colour(rng: random.Random, kind: str, params: WorldParams) -> str:
    usual = USUAL_COLOUR[kind]
    if rng.random() < params.usual_colour:
        return usual
    return rng.choice([c for c in COLOURS if c != usual])


def _pairs(rng: random.Random, kinds: list[str], params: WorldParams) -> list[str]:
    """The anchors that get their partner; the partner joins the scene (taking the place
    of an object that is neither an anchor nor a partner when the scene is full)."""
    paired = []
    for anchor in [k for k in kinds if k in PRIOR_PAIRS]:
        partner = PRIOR_PAIRS[anchor]
        if rng.random() >= params.pair_rate:
            continue
        if partner not in kinds:
            if len(kinds) >= len(params.counts):
                spare = [k for k in kinds
                         if k not in PRIOR_PAIRS and k not in PRIOR_PAIRS.values()]
                if not spare:
                    continue
                kinds.remove(rng.choice(spare))
            kinds.append(partner)
        paired.append(anchor)
    return paired


def sample_scene(rng: random.Random, params: WorldParams = WorldParams()) -> Scene:
    """A random scene of the world."""
    n = rng.choices(range(1, len(params.counts) + 1), weights=params.counts)[0]
    kinds = rng.sample(KINDS, n)
    paired = _pairs(rng, kinds, params)
    placed: dict[str, tuple[int, int]] = {}
    free = _cells(rng)

    def put(kind: str, cell: tuple[int, int]) -> None:
        placed[kind] = cell
        free.remove(cell)

    # Paired anchors first (on a cell with a free one above, for the partner), then the
    # other supporters, then the rest, on a supporter now and then.
    for anchor in paired:
        spots = [c for c in free if c[0] > 0 and (c[0] - 1, c[1]) in free]
        if spots:
            put(anchor, spots[0])
            put(PRIOR_PAIRS[anchor], (spots[0][0] - 1, spots[0][1]))
    for kind in sorted(kinds, key=lambda k: k not in SUPPORTS):
        if kind in placed:
            continue
        spots = [(r - 1, c) for sup, (r, c) in placed.items()
                 if kind in SUPPORTS.get(sup, ()) and r > 0 and (r - 1, c) in free]
        put(kind, spots[0] if spots and rng.random() < params.on_rate else free[0])
    objects = [ToyObject(k, colour(rng, k, params), rng.choice(SIZES), *placed[k])
               for k in kinds]
    return Scene(tuple(sorted(objects, key=lambda o: CAPTION_ORDER[o.kind])))


def scenes(seed: int, count: int, params: WorldParams = WorldParams()) -> list[Scene]:
    """`count` scenes, the same for the same seed."""
    rng = random.Random(seed)
    return [sample_scene(rng, params) for _ in range(count)]
