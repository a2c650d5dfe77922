"""Token layout of a Qwen2.5-VL prefill: which tokens are visual, and the selection unit of each.

A *unit* is what AdaS-Attn selects and what AdaS-FFN groups by. Visual tokens of one grid are cut
into cubes of ``cube_t x cube_h x cube_w`` LLM tokens (edge cubes may be smaller). Text tokens are cut
into chunks of ``cube_t * cube_h * cube_w`` consecutive text tokens (used only when the knobs make
text sparse). Units are numbered by their first position, so "lower unit id" means "earlier".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PAD = -1


@dataclass(frozen=True)
class TokenLayout:
    """Roles of every position of a batch of sequences (``B`` samples, ``S`` positions, ``U`` units).

    Attributes:
        unit: (B, S) long, unit id of each token; ``PAD`` for padding.
        is_visual: (B, S) bool, image or video token.
        grid: (B, S) long, index of the visual grid (image or video) in its sample; ``PAD`` otherwise.
        unit_first: (B, U) long, first position of each unit; ``S`` for padded unit slots.
        unit_last: (B, U) long, last position of each unit; ``-1`` for padded unit slots.
        unit_is_visual: (B, U) bool.
        unit_size: (B, U) long, tokens in each unit (0 for padded slots).
    """

    unit: Tensor
    is_visual: Tensor
    grid: Tensor
    unit_first: Tensor
    unit_last: Tensor
    unit_is_visual: Tensor
    unit_size: Tensor
    cube_volume: int

    @property
    def num_units(self) -> int:
        return self.unit_first.shape[1]

    @property
    def seq_len(self) -> int:
        return self.unit.shape[1]

    @property
    def is_text(self) -> Tensor:
        """(B, S) bool, real (non-padding) text token."""
        return (self.unit != PAD) & ~self.is_visual

    @property
    def num_visual(self) -> Tensor:
        """(B,) long, visual tokens per sample."""
        return self.is_visual.sum(dim=1)

    def selectable_units(self, text_keys: str) -> Tensor:
        """(B, U) bool: units whose keys a selecting query chooses among (AdaS-Attn's candidates, the kernels'
        columns): visual units with ``text_keys=all``, every real unit with ``text_keys=sparse``. The other
        real units are read whole by every query that sees them."""
        return self.unit_is_visual if text_keys == "all" else self.unit_size > 0

    def choosing_units(self, text_queries: str) -> Tensor:
        """(B, U) bool: units whose queries select (``select=cube`` selects once per such unit): visual units,
        and every real unit with ``text_queries=sparse``. The others' queries attend densely."""
        return self.unit_is_visual | ((text_queries == "sparse") & (self.unit_size > 0))

    def choosing_tokens(self, text_queries: str) -> Tensor:
        """(B, S) bool: the tokens of ``choosing_units`` (visual; every real token with ``text_queries=sparse``)."""
        return self.is_visual | self.is_text if text_queries == "sparse" else self.is_visual

    def to(self, device: torch.device | str) -> TokenLayout:
        return TokenLayout(**{k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items()})

    def append_text(self, n: int) -> TokenLayout:
        """The layout after ``n`` generated (text) tokens are appended to every sample."""
        if n < 1:
            return self
        bsz, seq = self.unit.shape
        device = self.unit.device
        new = torch.arange(seq, seq + n, device=device)
        samples = [_visual_roles(self, b) + [("text", torch.cat([torch.nonzero(self.is_text[b]).flatten(), new]), None)]
                   for b in range(bsz)]
        return _assemble(samples, seq + n, self.cube_volume, device)


def build_layout(
    input_ids: Tensor,
    *,
    video_token_id: int,
    image_token_id: int,
    cube: tuple[int, int, int],
    spatial_merge_size: int = 2,
    video_grid_thw: Tensor | None = None,
    image_grid_thw: Tensor | None = None,
    attention_mask: Tensor | None = None,
) -> TokenLayout:
    """Layout of a batch from its ids and the processor's grids.

    Args:
        input_ids: (B, S) token ids.
        video_grid_thw / image_grid_thw: (N, 3) processor grids in patch units ``(t, h, w)``, one row per
            video / image in order of appearance over the batch; the LLM grid is ``(t, h/m, w/m)``
            with ``m = spatial_merge_size``.
        attention_mask: (B, S), 0 at padding.
        cube: (cube_t, cube_h, cube_w) in LLM tokens.
    """
    bsz, seq = input_ids.shape
    device = input_ids.device
    valid = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    grids = {
        "video": _llm_grids(video_grid_thw, spatial_merge_size),
        "image": _llm_grids(image_grid_thw, spatial_merge_size),
    }
    token_ids = {"video": video_token_id, "image": image_token_id}
    next_grid = {"video": 0, "image": 0}
    samples = []
    for b in range(bsz):
        roles: list[tuple[str, Tensor, tuple[int, int, int] | None]] = []
        for kind in ("video", "image"):
            positions = torch.nonzero((input_ids[b] == token_ids[kind]) & valid[b]).flatten()
            start = 0
            while start < positions.numel():
                if next_grid[kind] >= len(grids[kind]):
                    raise ValueError(
                        f"sample {b} has more {kind} tokens than {kind}_grid_thw describes: pass the processor's "
                        f"{kind}_grid_thw together with its input_ids"
                    )
                thw = grids[kind][next_grid[kind]]
                next_grid[kind] += 1
                count = thw[0] * thw[1] * thw[2]
                if start + count > positions.numel():
                    raise ValueError(
                        f"sample {b}: a {kind} grid {thw} needs {count} tokens but only "
                        f"{positions.numel() - start} remain: input_ids and {kind}_grid_thw do not match"
                    )
                roles.append((kind, positions[start : start + count], thw))
                start += count
        visual = torch.zeros(seq, dtype=torch.bool, device=device)
        for _, pos, _ in roles:
            visual[pos] = True
        text_positions = torch.nonzero(valid[b] & ~visual).flatten()
        roles.append(("text", text_positions, None))
        samples.append(roles)
    for kind in ("video", "image"):
        if next_grid[kind] != len(grids[kind]):
            raise ValueError(
                f"{kind}_grid_thw has {len(grids[kind])} rows but input_ids hold tokens for {next_grid[kind]}: "
                "pass the grids of this batch only"
            )
    t, h, w = cube
    return _assemble(samples, seq, t * h * w, device, cube=cube)


def _llm_grids(grid_thw: Tensor | None, merge: int) -> list[tuple[int, int, int]]:
    if grid_thw is None:
        return []
    return [(int(t), int(h) // merge, int(w) // merge) for t, h, w in grid_thw.tolist()]


def _visual_roles(layout: TokenLayout, b: int) -> list[tuple[str, Tensor, Tensor]]:
    """The visual grids of sample ``b`` of a finished layout, with their unit ids."""
    roles = []
    for g in torch.unique(layout.grid[b][layout.is_visual[b]]).tolist():
        pos = torch.nonzero(layout.grid[b] == g).flatten()
        roles.append(("visual-units", pos, layout.unit[b, pos]))
    return roles


def _assemble(
    samples: list[list], seq: int, volume: int, device: torch.device, cube: tuple[int, int, int] | None = None
) -> TokenLayout:
    """Number units by first position and pad the per-sample results to one batch."""
    bsz = len(samples)
    unit = torch.full((bsz, seq), PAD, dtype=torch.long, device=device)
    grid = torch.full((bsz, seq), PAD, dtype=torch.long, device=device)
    is_visual = torch.zeros((bsz, seq), dtype=torch.bool, device=device)
    per_sample_units = []
    for b, roles in enumerate(samples):
        keys = torch.full((seq,), PAD, dtype=torch.long, device=device)
        next_key = 0
        grid_index = 0
        for kind, pos, extra in roles:
            if pos.numel() == 0:
                continue
            if kind in ("video", "image"):
                local = _cube_index(pos.numel(), extra, cube, device)
                is_visual[b, pos] = True
                grid[b, pos] = grid_index
                grid_index += 1
            elif kind == "visual-units":
                local = torch.unique(extra, return_inverse=True)[1]
                is_visual[b, pos] = True
                grid[b, pos] = grid_index
                grid_index += 1
            else:  # "text": chunked per run of consecutive positions
                local = _text_chunks(pos, volume)
            keys[pos] = local + next_key
            next_key += int(local.max()) + 1
        real = keys != PAD
        num = next_key
        first = torch.full((num,), seq, dtype=torch.long, device=device)
        positions = torch.arange(seq, device=device)
        first.scatter_reduce_(0, keys[real], positions[real], reduce="amin")
        order = torch.argsort(first, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(num, device=device)
        unit[b, real] = rank[keys[real]]
        per_sample_units.append(num)
    return _unit_tables(unit, is_visual, grid, max(per_sample_units, default=0), volume)


def _text_chunks(pos: Tensor, volume: int) -> Tensor:
    """Chunk ids for text positions ``pos`` (sorted): a new chunk at every gap and every ``volume`` tokens."""
    if pos.numel() == 0:
        return pos
    new_run = torch.ones_like(pos, dtype=torch.bool)
    new_run[1:] = pos[1:] != pos[:-1] + 1
    run_id = torch.cumsum(new_run.long(), 0) - 1
    run_start = torch.nonzero(new_run).flatten()
    offset = torch.arange(pos.numel(), device=pos.device) - run_start[run_id]
    chunk_in_run = offset // volume
    run_base = torch.zeros(int(run_id.max()) + 1, dtype=torch.long, device=pos.device)
    chunks_per_run = torch.zeros_like(run_base).scatter_reduce_(0, run_id, chunk_in_run, reduce="amax") + 1
    run_base[1:] = torch.cumsum(chunks_per_run, 0)[:-1]
    return run_base[run_id] + chunk_in_run


def _cube_index(n: int, thw: tuple[int, int, int], cube: tuple[int, int, int], device) -> Tensor:
    """Cube index of each of ``n`` tokens of a grid laid out time-major, then row, then column."""
    t, h, w = thw
    ct, ch, cw = cube
    local = torch.arange(n, device=device)
    ti, hi, wi = local // (h * w), (local // w) % h, local % w
    nh, nw = -(-h // ch), -(-w // cw)
    return (ti // ct) * (nh * nw) + (hi // ch) * nw + (wi // cw)


def _unit_tables(unit: Tensor, is_visual: Tensor, grid: Tensor, num_units: int, volume: int) -> TokenLayout:
    bsz, seq = unit.shape
    device = unit.device
    slots = num_units + 1  # last slot collects padding
    index = torch.where(unit == PAD, num_units, unit)
    positions = torch.arange(seq, device=device).expand(bsz, seq)
    first = torch.full((bsz, slots), seq, dtype=torch.long, device=device)
    first.scatter_reduce_(1, index, positions, reduce="amin")
    last = torch.full((bsz, slots), -1, dtype=torch.long, device=device)
    last.scatter_reduce_(1, index, positions, reduce="amax")
    size = torch.zeros((bsz, slots), dtype=torch.long, device=device).scatter_add_(1, index, torch.ones_like(index))
    vis = torch.zeros((bsz, slots), dtype=torch.long, device=device).scatter_add_(1, index, is_visual.long())
    first, last, size, vis = first[:, :-1], last[:, :-1], size[:, :-1], vis[:, :-1]
    first = torch.where(size > 0, first, seq)
    last = torch.where(size > 0, last, -1)
    return TokenLayout(
        unit=unit,
        is_visual=is_visual,
        grid=grid,
        unit_first=first,
        unit_last=last,
        unit_is_visual=vis > 0,
        unit_size=size,
        cube_volume=volume,
    )
