"""What every command shares: AdaSpark knob flags built from the config, and one-line user errors.

``--help`` must stay fast, so the command modules import only light modules (config, data.video) at their top;
torch, transformers, lmms-eval, pandas and the rest are imported inside the functions that run
(tests/cli/test_help.py checks it). A value whose home imports them is written here or in the command's module,
and tests/cli/test_help.py checks it equals its home's."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import typing
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from adaspark_eval.config import AdaSparkConfig, ConfigError

DATA_ROOT_ENV = "ADASPARK_DATA_ROOT"  # datasets.DATA_ROOT_ENV, which imports pandas

KNOB_HELP = {
    "p": "top-p threshold for both modules, in (0, 1]",
    "p_attn": "AdaS-Attn threshold (overrides --p)",
    "p_ffn": "AdaS-FFN threshold (overrides --p)",
    "cube": "cube size TxHxW in LLM tokens, e.g. 4x4x4",
    "select": "token | cube: per-query or per-cube (mean query) selection",
    "text_queries": "dense | sparse",
    "text_keys": "all | sparse",
    "ffn_group": "cube | grid: the group AdaS-FFN selects within",
    "ffn_score": "l1 | softmax: importance distribution of AdaS-FFN",
    "ffn_tau": "softmax temperature of --ffn-score softmax",
    "compensation": "mean | none: what skipped FFN tokens receive",
    "fixed_ratio": "keep this fraction instead of top-p (ablation)",
    "dense_layers": "comma-separated layers left dense, e.g. 0,1",
    "sparse_decode": "select cubes per decode step too (true/false)",
    "attention": "AdaS-Attn on/off (true/false)",
    "ffn": "AdaS-FFN on/off (true/false)",
    "query_chunk": "queries per chunk of the reference attention (memory)",
    "backend": "auto | triton | reference | fa4: GPU kernels (auto: on CUDA), the reference path, or AdaS-Attn "
               "on flash-attn-4's block-sparse kernels (select=cube; docs/kernels.md)",
    "attn_impl": "sdpa | fa4: the dense attention kernel (fa4: flash-attn-4, pip install 'adaspark-eval[gpu]'; "
                 "part of the config key)",
}
KNOBS = [f.name for f in dataclasses.fields(AdaSparkConfig)]


def plain(text: str) -> str:
    """``text`` as help that Typer's rich rendering shows as written (``[gpu]`` is not taken as markup)."""
    return text.replace("[", "\\[")

# the errors a user can fix: ConfigError, VideoError, UnknownTask ... are ValueErrors; ModelNotFound,
# DatasetMissing, NoRunsError are FileNotFoundErrors
USER_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; return the exit to raise (code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix into one line and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as error:
            raise fail(str(error)) from None

    return wrapper


def with_options(cls: type, target: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one ``--flag`` per field of the dataclass ``cls`` to a command, which receives the object as
    ``target``. A field's ``metadata`` gives its ``help`` and, optionally, ``names`` (the flag's spelling,
    default ``--field-name``) and ``envvar``; a field without a default is a required option."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn, eval_str=True)
        hints = typing.get_type_hints(cls)
        params = [p for p in signature.parameters.values() if p.name != target]
        names = [f.name for f in dataclasses.fields(cls)]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            option = typer.Option(*meta.get("names", ()), help=meta["help"], envvar=meta.get("envvar"))
            default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=Annotated[hints[f.name], option]))

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            kwargs[target] = cls(**{name: kwargs.pop(name) for name in names})
            return fn(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def with_knobs(*, parse: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one ``--knob`` flag per AdaSpark knob to a command.

    With ``parse=True`` the command receives ``config: AdaSparkConfig``; with ``parse=False`` it receives
    ``knobs: dict[str, str]`` holding the flags given (for sweeps, where a value may be a list).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn, eval_str=True)
        target = "config" if parse else "knobs"
        params = [p for p in signature.parameters.values() if p.name != target]
        for name in KNOBS:
            option = typer.Option(f"--{name.replace('_', '-')}", help=plain(KNOB_HELP[name]))
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[str | None, option]))

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in KNOBS if kwargs.get(name) is not None}
            for name in KNOBS:
                kwargs.pop(name, None)
            if parse:
                try:
                    kwargs[target] = AdaSparkConfig.from_dict(given)
                except ConfigError as error:
                    raise fail(str(error)) from None
            else:
                kwargs[target] = given
            return fn(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


@contextlib.contextmanager
def outside_root_allowed(allowed: bool) -> Iterator[None]:
    """Within the block, annotation videos outside their benchmark folder are read when ``allowed``
    (``--allow-outside-root``: the environment variable the lmms-eval task reading the annotations sees)."""
    from adaspark_eval.datasets.base import OUTSIDE_ROOT_ENV

    previous = os.environ.get(OUTSIDE_ROOT_ENV)
    if allowed:
        os.environ[OUTSIDE_ROOT_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(OUTSIDE_ROOT_ENV, None)
        else:
            os.environ[OUTSIDE_ROOT_ENV] = previous
