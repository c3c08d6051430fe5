"""Small charts drawn with Pillow (matplotlib is not a dependency): line charts for ROC and
accuracy-coverage curves, bar charts for probe accuracies, and a row-wrapping layout of panels.
Nothing overlaps: the legend sits in a column right of the axes, the y label in the title line, and
numbers are printed as they are (whole numbers without a decimal point)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

__all__ = ["COLORS", "bar_chart", "line_chart", "number", "panels"]

#: series colours, in order (Okabe-Ito, distinguishable with colour-vision deficiencies)
COLORS = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
    (240, 228, 66),
)
_MARGIN = (34, 24, 10, 30)  # left, top, right, bottom
#: width of the legend column right of a line chart's axes
_LEGEND = 120


def number(value: float) -> str:
    """``3`` for a whole number (a count), else up to three significant digits (``0.875``)."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _frame(
    title: str, xlabel: str, ylabel: str, size: tuple[int, int], legend: int = 0
) -> tuple[Image.Image, ImageDraw.ImageDraw, tuple[int, int, int, int]]:
    image = Image.new("RGB", (size[0] + legend, size[1]), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = _MARGIN[0], _MARGIN[1], size[0] - _MARGIN[2], size[1] - _MARGIN[3]
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    draw.text((left, 4), f"{title}  (y: {ylabel})" if ylabel else title, fill=(0, 0, 0))
    draw.text(((left + right) // 2 - 3 * len(xlabel), bottom + 14), xlabel, fill=(0, 0, 0))
    return image, draw, (left, top, right, bottom)


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    ylim: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False,
    size: tuple[int, int] = (300, 260),
) -> Image.Image:
    """Lines ``name -> (xs, ys)`` on axes x in [0, 1], y in ``ylim``, with a legend in a column right of
    the axes (``diagonal``: the chance line of an ROC plot)."""
    image, draw, (left, top, right, bottom) = _frame(title, xlabel, ylabel, size, legend=_LEGEND)
    lo, hi = ylim

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * (right - left), bottom - (y - lo) / max(hi - lo, 1e-12) * (bottom - top)

    for tick in (0.0, 0.5, 1.0):
        x, _ = at(tick, lo)
        draw.text((x - 6, bottom + 2), number(tick), fill=(0, 0, 0))
        value = lo + tick * (hi - lo)
        _, y = at(0, value)
        draw.text((2, y - 5), number(round(value, 3)), fill=(0, 0, 0))
    if diagonal:
        draw.line([at(0, lo), at(1, hi)], fill=(190, 190, 190))
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        points = [at(float(x), min(max(float(y), lo), hi)) for x, y in zip(xs, ys)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        elif points:
            draw.ellipse((points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2), fill=color)
        ty = top + 14 * i
        lx = right + _MARGIN[2] + 2
        draw.line((lx, ty + 6, lx + 12, ty + 6), fill=color, width=2)
        draw.text((lx + 16, ty), name[: (_LEGEND - 20) // 6], fill=(0, 0, 0))
    return image


def bar_chart(values: dict[str, float], title: str, ylabel: str, *, size: tuple[int, int] = (300, 260)) -> Image.Image:
    """Bars ``name -> value`` in [0, 1], the value printed above each bar."""
    image, draw, (left, top, right, bottom) = _frame(title, "", ylabel, size)
    width = (right - left) / max(len(values), 1)
    for i, (name, value) in enumerate(values.items()):
        x0, x1 = left + i * width + 4, left + (i + 1) * width - 4
        y = bottom - min(max(value, 0.0), 1.0) * (bottom - top)
        draw.rectangle((x0, y, x1, bottom), fill=COLORS[i % len(COLORS)])
        draw.text((x0, max(y - 11, top + 1)), number(round(value, 3)), fill=(0, 0, 0))
        draw.text((x0, bottom + 3), name[: max(int(width / 6), 3)], fill=(0, 0, 0))
    return image


def panels(images: Sequence[Image.Image], per_row: int = 3) -> Image.Image:
    """Pictures of equal size side by side, ``per_row`` a row."""
    if not images:
        raise ValueError("no pictures to lay out")
    w, h = images[0].size
    rows = (len(images) + per_row - 1) // per_row
    sheet = Image.new("RGB", (w * min(per_row, len(images)), h * rows), "white")
    for i, image in enumerate(images):
        sheet.paste(image, ((i % per_row) * w, (i // per_row) * h))
    return sheet
