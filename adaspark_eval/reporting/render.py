"""Titled tables as one markdown, LaTeX or CSV document.

Markdown and LaTeX lay out each table under its title (numbers to 4 significant digits, ``--`` where
a value is missing). CSV is one long table with the columns ``table, row, column, value``, so every
titled table fits one file that spreadsheets and pandas read back.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

Format = Literal["markdown", "latex", "csv"]
FORMATS: tuple[Format, ...] = ("markdown", "latex", "csv")
MISSING = "--"
_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                                                      "\\": r"\textbackslash{}"}


def render(tables: dict[str, pd.DataFrame], fmt: Format) -> str:
    """``tables`` (title -> table) as one document in ``fmt``."""
    if fmt == "markdown":
        return "\n\n".join(f"### {title}\n\n{_markdown(table)}" for title, table in tables.items()) + "\n"
    if fmt == "latex":
        return "\n".join(table.to_latex(caption=latex_escape(title), float_format="{:.4g}".format, escape=True,
                                        na_rep=MISSING) for title, table in tables.items())
    if fmt == "csv":
        return _long(tables).to_csv(index=False)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _markdown(table: pd.DataFrame) -> str:
    cells = table.astype(object).where(table.notna(), None)
    return cells.to_markdown(floatfmt=".4g", missingval=MISSING)


def _long(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every cell of every table as one row ``table, row, column, value``."""
    parts = [table.rename_axis("row").reset_index().melt(id_vars="row", var_name="column").assign(table=title)
             for title, table in tables.items()]
    columns = ["table", "row", "column", "value"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
