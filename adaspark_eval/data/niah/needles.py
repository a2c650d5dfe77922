"""Needles: what is hidden in a haystack, and how one needle frame is drawn.

Four needle kinds, named like the suffixes of the VNBench types (``ret_edit1`` = retrieval of an
``edit1`` needle):

- ``edit1``: a subtitle word, white on a black band over the bottom fifth of haystack frames.
- ``edit2``: a drawn object (colour + shape) on a white panel over the top-right of haystack frames.
- ``insert1``: a still image of a drawn object, inserted as whole frames on a light-grey background.
- ``insert2``: a short clip of a drawn object crossing a light-grey background left to right,
  inserted as whole frames.

``edit`` needles paint over haystack frames; ``insert`` needles are frames of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("edit1", "edit2", "insert1", "insert2")
WORDS = ("APPLE", "RIVER", "CANDLE", "TIGER", "PIANO", "ROCKET", "MANGO", "CASTLE", "PEPPER", "LEMON",
         "GUITAR", "FOREST", "ANCHOR", "PLANET", "BUTTER", "SPIDER", "COFFEE", "WINDOW", "ORANGE", "ZEBRA",
         "HAMMER", "BRIDGE", "TURTLE", "VIOLIN", "MARBLE", "PENCIL", "TOMATO", "FALCON", "SILVER", "WALNUT")
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 230), "yellow": (240, 220, 30),
           "purple": (150, 50, 200), "orange": (245, 140, 20), "cyan": (20, 210, 220), "pink": (250, 110, 190)}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
BAND = 0          # grey level of the edit1 subtitle band
PANEL = 255       # grey level of the edit2 panel
BACKGROUND = 235  # grey level behind insert1/insert2 objects


@dataclass(frozen=True)
class Needle:
    """One needle: its kind and its label (a word for ``edit1``, ``"<colour> <shape>"`` otherwise)."""

    kind: str
    label: str

    @property
    def inserted(self) -> bool:
        """True when the needle adds frames of its own instead of painting over haystack frames."""
        return self.kind.startswith("insert")


def labels(kind: str, rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct labels for needles of ``kind``, drawn with ``rng``."""
    pool = list(WORDS) if kind == "edit1" else [f"{c} {s}" for c in COLOURS for s in SHAPES]
    if count > len(pool):
        raise ValueError(f"{kind} needles have {len(pool)} distinct labels, {count} asked: lower --needles")
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


def draw(needle: Needle, step: int, steps: int, frame: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """Frame ``step`` of the ``steps`` frames ``needle`` lasts.

    Args:
        frame: the (H, W, 3) uint8 haystack frame an edit needle paints over (None for insert needles).
        size: (H, W) of the output frame.
    Returns:
        a new (H, W, 3) uint8 RGB frame.
    """
    height, width = size
    if needle.kind == "edit1":
        out = frame.copy()
        out[height - _band_height(height):] = _subtitle(needle.label, height, width)
        return out
    if needle.kind == "edit2":
        out = frame.copy()
        side = min(height, width) // 2
        margin = max(2, min(height, width) // 16)
        out[margin:margin + side, width - margin - side:width - margin] = _object(needle.label, side, PANEL)
        return out
    out = np.full((height, width, 3), BACKGROUND, np.uint8)
    if needle.kind == "insert1":
        side = int(min(height, width) * 0.6)
        left = (width - side) // 2
    else:  # insert2: the object's centre moves from the left edge to the right edge
        side = int(min(height, width) * 0.4)
        left = round((width - side) * step / max(steps - 1, 1))
    top = (height - side) // 2
    out[top:top + side, left:left + side] = _object(needle.label, side, BACKGROUND)
    return out


def _band_height(height: int) -> int:
    return max(8, height // 5)


@lru_cache(maxsize=64)
def _subtitle(word: str, height: int, width: int) -> np.ndarray:
    """The (band, W, 3) subtitle band: ``word`` centred, white on black, as large as fits."""
    band = _band_height(height)
    font_size = int(band * 0.8)
    font = ImageFont.load_default(size=font_size)
    while font_size > 6 and font.getlength(word) > width * 0.9:
        font_size -= 1
        font = ImageFont.load_default(size=font_size)
    image = Image.new("RGB", (width, band), (BAND,) * 3)
    ImageDraw.Draw(image).text((width / 2, band / 2), word, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(image)


@lru_cache(maxsize=64)
def _object(label: str, side: int, background: int) -> np.ndarray:
    """A (side, side, 3) tile: the ``"<colour> <shape>"`` of ``label`` filling most of it, centred."""
    colour, shape = label.split(" ")
    image = Image.new("RGB", (side, side), (background,) * 3)
    pen = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    c, r = (side - 1) / 2, side * 0.42
    if shape == "circle":
        pen.ellipse((c - r, c - r, c + r, c + r), fill=fill)
    elif shape == "square":
        pen.rectangle((c - r * 0.85, c - r * 0.85, c + r * 0.85, c + r * 0.85), fill=fill)
    elif shape == "triangle":
        pen.polygon([(c, c - r), (c + r, c + r * 0.8), (c - r, c + r * 0.8)], fill=fill)
    elif shape == "diamond":
        pen.polygon([(c, c - r), (c + r * 0.7, c), (c, c + r), (c - r * 0.7, c)], fill=fill)
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pen.polygon([(c + q * np.cos(a), c - q * np.sin(a)) for q, a in zip(radii, angles)], fill=fill)
    else:  # cross
        arm = r * 0.35
        pen.rectangle((c - r, c - arm, c + r, c + arm), fill=fill)
        pen.rectangle((c - arm, c - r, c + arm, c + r), fill=fill)
    return np.asarray(image)
