"""VideoNIAH data: synthetic needle-in-a-video-haystack videos and VNBench-style annotations.

``generate(NiahSpec(...), out)`` writes ``out/videos/*.mp4`` and ``out/videoniah-4try.json``;
``scoring`` turns per-try correctness into VNBench numbers.
"""

from adaspark_eval.data.niah.generate import ANNOTATION_FILE, NiahSpec, generate, plan, write_set

__all__ = ["ANNOTATION_FILE", "NiahSpec", "generate", "plan", "write_set"]
