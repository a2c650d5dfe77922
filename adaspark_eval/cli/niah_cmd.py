"""``adaspark-eval niah``: generate VideoNIAH (needle-in-a-video-haystack) data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from adaspark_eval.cli.common import friendly

niah_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="VideoNIAH: needles hidden in long haystack videos, VNBench-style questions.")


@niah_app.command("generate")
@friendly
def generate_command(
    out: Annotated[Path, typer.Option(help="output folder: videos/ and videoniah-4try.json")],
    n: Annotated[int, typer.Option(help="samples (videos); types, lengths and depths cycle over them")] = 9,
    seed: Annotated[int, typer.Option(help="seed: same seed, same annotation bytes")] = 0,
    length: Annotated[str | None, typer.Option(
        help="video length: seconds or 90s/10m/1h, comma list for a grid (default: 60 s, or the whole haystack file)")] = None,
    haystack: Annotated[Path | None, typer.Option(
        help="folder of your videos to hide needles in (default: procedural haystacks)")] = None,
    depth: Annotated[str | None, typer.Option(
        help="needle depth of retrieval questions: 0.5, 0,0.5,1 or grid:5 (default: uniform random)")] = None,
    needles: Annotated[int, typer.Option(help="needles per ordering question; largest counting answer")] = 4,
    duration: Annotated[float, typer.Option(help="seconds each needle lasts")] = 2.0,
    resolution: Annotated[str | None, typer.Option(
        help="WxH, even, e.g. 224x224 (default: 640x360, or the haystack's own)")] = None,
    fps: Annotated[float, typer.Option(help="frames per second of the videos")] = 2.0,
    types: Annotated[str, typer.Option(
        help="official (9 VNBench types), all, ret/ord/cnt, or a list like ret_edit1,cnt_insert1")] = "official",
    tries: Annotated[int, typer.Option(help="circular tries per question (options rotated), 1..4")] = 4,
) -> None:
    """Write needle-in-a-haystack mp4s and a VNBench-main-4try-style annotation file."""
    from adaspark_eval.data.niah.generate import NiahSpec, plan, total_frames, write_set
    from adaspark_eval.data.niah.parsing import parse_depths, parse_lengths, parse_resolution, parse_types

    spec = NiahSpec(
        n=n, seed=seed, lengths=parse_lengths(length) if length else None,
        depths=parse_depths(depth) if depth else None, needles=needles, duration=duration,
        size=parse_resolution(resolution) if resolution else None, fps=fps, types=parse_types(types),
        tries=tries, haystack=haystack,
    )
    samples = plan(spec)
    with tqdm(total=total_frames(samples), unit="frame", desc="niah generate") as bar:
        annotation = write_set(samples, out, spec.fps, bar.update)
    typer.echo(f"wrote {len(samples)} videos, {len(samples) * spec.tries} question tries: {annotation}")
