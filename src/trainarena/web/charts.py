"""Charts as inline SVG drawn on the server by pygal: no script and nothing fetched (``js=[]``: pygal
would otherwise link its tooltip script from the web; its inline config script is dropped too). Each chart has a title and a description
for screen readers; the numbers are always in a table beside it too."""

from __future__ import annotations

import sys

import pygal
from markupsafe import Markup
from pygal.etree import etree
from pygal.style import Style

from trainarena.reporting.bracket import BossView
from trainarena.reporting.competitor_history import ScorePoint
from trainarena.reporting.task_board import TaskBoard

# pygal 3.1.3 appends a legacy import finder to sys.meta_path (for its world-map plugins, unused here);
# Python 3.11 then warns (ImportWarning) on every later import of a missing module, which breaks
# optional imports wherever warnings are errors. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)]

# High-contrast colours on white (WCAG AA for text); the first series is the subject, the second the rival.
CHART_STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#000000",
    foreground_subtle="#5a5a5a", colors=("#0b57d0", "#b3261e", "#146c2e", "#7a4b00"), font_family="system-ui, sans-serif",
    label_font_size=13, major_label_font_size=13, legend_font_size=14, title_font_size=16, value_font_size=12,
)  # fmt: skip
CHART_SIZE = {"width": 720, "height": 340}


def _options(title: str) -> dict[str, object]:
    return {"title": title, "style": CHART_STYLE, "js": [], "disable_xml_declaration": True, "print_values": False,
            "legend_at_bottom": True, "truncate_label": 24, "x_label_rotation": 20, **CHART_SIZE}  # fmt: skip


def _svg(chart: pygal.graph.graph.Graph) -> Markup:
    """The chart without pygal's inline configuration script (only its tooltips would read it)."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in [c for c in parent if isinstance(c.tag, str) and c.tag.endswith("script")]:
            parent.remove(child)
    return Markup(etree.tostring(tree, encoding="unicode"))  # pygal escapes every label and title it writes


def score_history_svg(name: str, points: list[ScorePoint]) -> Markup | None:
    """The competitor's scores and the champion's on the same tasks, in play order."""
    if not any(p.score is not None or p.champion_score is not None for p in points):
        return None
    direction = next((p.direction for p in points if p.direction), None)
    better = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(direction or "", "")
    chart = pygal.Line(**_options(f"Scores of {name} against the champion's{better}"), show_x_labels=len(points) <= 24)
    chart.x_labels = [f"{p.tournament} · {p.task}" for p in points]
    chart.add(name, [p.score for p in points])
    if any(p.champion_score is not None for p in points):
        chart.add("champion", [p.champion_score for p in points])
    return _svg(chart)


def score_distribution_svg(board: TaskBoard) -> Markup | None:
    """Each entrant's best score on the task."""
    scored = [line for line in board.lines if line.best_score is not None]
    if not scored:
        return None
    better = "lower" if board.direction == "lower" else "higher"
    chart = pygal.HorizontalBar(**_options(f"Best score per entrant on {board.task} ({better} is better)"), show_legend=False)
    chart.x_labels = [line.entrant for line in scored]
    chart.add("best score", [line.best_score for line in scored])
    return _svg(chart)


def boss_margin_svg(boss: BossView) -> Markup:
    """The challenger's lead on each boss task beside the lead it needed."""
    decision = boss.decision
    chart = pygal.Bar(**_options(f"Boss round: {decision.challenger}'s lead over {decision.champion} against the required margin"))
    chart.x_labels = list(boss.task_names)
    chart.add("lead", [task.lead for task in decision.tasks])
    if decision.rule == "majority":
        chart.add("required lead", [task.required_lead for task in decision.tasks])
    else:  # the paired rule tests the leads relative to the larger |score|, with no margin per task
        chart.add("relative lead", [task.relative_lead for task in decision.tasks])
    return _svg(chart)
