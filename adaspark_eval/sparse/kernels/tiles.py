"""Cube-contiguous tiling of a token layout: every unit becomes one tile of ``T`` slots.

A cube's tokens are spread over several frames in position order; the kernels gather each unit's
tokens into ``T`` consecutive *slots* (positions ascending, then padding), so that a unit is one block
of a matrix product. Positions are never changed: each slot remembers its token's position and the
attention kernel applies the original token-level causal mask on them.

The *columns* are the units a query may choose among (``TokenLayout.selectable_units``: visual cubes
with ``text_keys=all``, every unit with ``text_keys=sparse``); the *fixed* units are the others, which
every query reads (the text chunks with ``text_keys=all``). Shapes: ``B`` batch, ``U`` units, ``C``
columns (a power of two >= 32), ``F`` fixed units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adaspark_eval.sparse.layout import PAD, TokenLayout

NEVER = 2**30  # position of a padding slot or column: after every query


@dataclass(frozen=True)
class CubeTiles:
    """Slots, columns and fixed units of a layout, all int32.

    Attributes:
        tile: ``T``, slots per unit (a power of two >= 16, >= the largest unit).
        slot_pos: (B, U*T) position of each slot, -1 for padding.
        key_pos: (B, U*T) ``slot_pos`` with ``NEVER`` for padding (a padding key is never visible).
        unit_first / unit_last: (B, U) first / last position of each unit (``S`` / -1 for padded units).
        unit_col: (B, U) column of each unit, -1 where it is none.
        columns: (B, C) unit of each column, 0 for padding.
        col_first / col_last / col_size: (B, C) first position, last position and tokens of each column's unit
            (``NEVER`` / -1 / 0 for padding).
        fixed: (B, F) fixed units in position order, 0 for padding.
        fixed_visible: (B, U) how many fixed units hold a key at or before unit ``u``'s last position.
    """

    tile: int
    slot_pos: Tensor
    key_pos: Tensor
    unit_first: Tensor
    unit_last: Tensor
    unit_col: Tensor
    columns: Tensor
    col_first: Tensor
    col_last: Tensor
    col_size: Tensor
    fixed: Tensor
    fixed_visible: Tensor

    @property
    def num_units(self) -> int:
        return self.unit_first.shape[1]

    @property
    def num_columns(self) -> int:
        return self.columns.shape[1]


def next_power_of_two(n: int, minimum: int) -> int:
    """Smallest power of two >= max(n, minimum)."""
    return max(minimum, 1 << max(int(n) - 1, 0).bit_length())


def build_tiles(layout: TokenLayout, text_keys: str) -> CubeTiles:
    """Tiles of ``layout`` for ``text_keys`` (``all``: text units are fixed, ``sparse``: columns)."""
    units = layout.num_units
    tile = next_power_of_two(int(layout.unit_size.max()) if units else 1, 16)
    slot_pos = _slot_positions(layout, tile)
    real = layout.unit_size > 0
    is_column = layout.selectable_units(text_keys)
    columns, unit_col = _compact_units(is_column, 32)
    fixed, _ = _compact_units(real & ~is_column, 1)
    first = layout.unit_first.to(torch.int32)
    n_columns = is_column.sum(1)
    fixed_first = _pick(first, fixed, (real & ~is_column).sum(1), NEVER)
    visible = torch.searchsorted(fixed_first.contiguous(), layout.unit_last.to(torch.int32).contiguous(), right=True)
    return CubeTiles(
        tile=tile,
        slot_pos=slot_pos,
        key_pos=torch.where(slot_pos < 0, NEVER, slot_pos),
        unit_first=first,
        unit_last=layout.unit_last.to(torch.int32),
        unit_col=unit_col,
        columns=columns,
        col_first=_pick(first, columns, n_columns, NEVER),
        col_last=_pick(layout.unit_last, columns, n_columns, -1),
        col_size=_pick(layout.unit_size, columns, n_columns, 0),
        fixed=fixed,
        fixed_visible=visible.to(torch.int32),
    )


def _slot_positions(layout: TokenLayout, tile: int) -> Tensor:
    """(B, U*T) int32: the positions of each unit's tokens, ascending, then -1."""
    bsz, seq = layout.unit.shape
    units = layout.num_units
    device = layout.unit.device
    positions = torch.arange(seq, device=device).expand(bsz, seq)
    real = layout.unit != PAD
    order = torch.argsort(torch.where(real, layout.unit * seq + positions, units * seq + positions), dim=1)
    sorted_unit = layout.unit.gather(1, order)
    starts = torch.cumsum(layout.unit_size, dim=1) - layout.unit_size
    rank = torch.arange(seq, device=device) - starts.gather(1, sorted_unit.clamp_min(0))
    slot = torch.where(sorted_unit == PAD, units * tile, sorted_unit * tile + rank)
    out = torch.full((bsz, units * tile + 1), -1, dtype=torch.int32, device=device)
    out.scatter_(1, slot, order.to(torch.int32))
    return out[:, :-1].contiguous()


def _compact_units(chosen: Tensor, minimum: int) -> tuple[Tensor, Tensor]:
    """Chosen units packed to the front, in order.

    Args:
        chosen: (B, U) bool.
    Returns:
        ids (B, N) int32 (N a power of two >= ``minimum``; 0 for padding) and index (B, U) int32 of each
        chosen unit in ``ids`` (-1 for the others).
    """
    bsz, units = chosen.shape
    width = next_power_of_two(int(chosen.sum(1).max()) if units else 0, minimum)
    index = torch.cumsum(chosen.long(), dim=1) - 1
    ids = torch.zeros(bsz, width + 1, dtype=torch.int32, device=chosen.device)
    target = torch.where(chosen, index, width)
    ids.scatter_(1, target, torch.arange(units, dtype=torch.int32, device=chosen.device).expand(bsz, units))
    return ids[:, :-1].contiguous(), torch.where(chosen, index, -1).to(torch.int32)


def _pick(values: Tensor, ids: Tensor, count: Tensor, fill: int) -> Tensor:
    """(B, N) int32: ``values`` (B, U) at the packed ``ids`` (B, N), ``fill`` past the first ``count`` (B,)."""
    inside = torch.arange(ids.shape[1], device=ids.device) < count[:, None]
    return torch.where(inside, values.gather(1, ids.long()), fill).to(torch.int32).contiguous()
