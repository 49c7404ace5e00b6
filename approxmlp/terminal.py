"""What a person at the command line sees: progress bars and lines, and the result tables.

The terminal half of :mod:`approxmlp.cli` (which parses options and turns errors into exit
codes): :class:`Steps` is the :data:`~approxmlp.progress.Progress` the CLI hands to the
library (rich bars on a terminal, one line per finished step otherwise), and the
``print_*`` functions draw each command's summary.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .progress import Task

console = Console(stderr=True, highlight=False)
# Tables of figures with intervals are wide: off a terminal (CI logs, files) do not wrap them at 80.
out_console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _bars_wanted() -> bool:
    """Live bars only for a person at a terminal: not in CI logs, pipes or files."""
    return console.is_terminal and out_console.is_terminal


class _Bar(Task):
    """A rich progress bar on stderr, gone when closed (the step's ✓ line stays)."""

    def __init__(self, description: str, total: int, fields: dict):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True)
        self.bar.start()
        self.id = self.bar.add_task(description, total=total, info=self._info(fields))

    @staticmethod
    def _info(fields: dict) -> str:
        return "  ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items())

    def advance(self, n: int = 1, **fields) -> None:
        if self.bar is not None:
            self.bar.update(self.id, advance=n, **({"info": self._info(fields)} if fields else {}))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Steps:
    """Progress for long steps (see :mod:`approxmlp.progress`): on a terminal a spinner per
    step and a bar per counted task; elsewhere one line per finished step; nothing when
    disabled (``--quiet``)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.status = None
        self.current: str | None = None
        self.t0 = 0.0

    def task(self, description: str, total: int, **fields) -> Task:
        if not (self.enabled and _bars_wanted()):
            return Task()
        if self.status is not None:  # the bar replaces the step's spinner
            self.status.stop()
            self.status = None
        return _Bar(description, total, fields)

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        self._finish()
        self.current, self.t0 = message, time.perf_counter()
        if _bars_wanted():
            self.status = console.status(message)
            self.status.start()

    def _finish(self) -> None:
        if self.current is None:
            return
        if self.status is not None:
            self.status.stop()
            self.status = None
        console.print(f"[dim]✓ {self.current} ({time.perf_counter() - self.t0:.1f} s)[/dim]")
        self.current = None

    def close(self) -> None:
        self._finish()


def print_summary(report: dict, out: Path) -> None:
    from .backend.report import summary_rows

    table = Table(title=f"approxmlp: {report['model']['name']} → {report['target']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in summary_rows(report):
        table.add_row(k, v)
    out_console.print(table)
    out_console.print(f"RTL: {out / report['rtl']}   report: {out / 'report.md'}")


class TrainProgress:
    """Training progress on stderr: a live bar for the current phase on a terminal, and one
    line per finished phase (epochs run, best validation accuracy, time)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.phase: str | None = None
        self.last: tuple[int, dict] = (0, {})
        self.t0 = 0.0

    def __call__(self, phase: str, epoch: int, total: int, metrics: dict) -> None:
        if not self.enabled:
            return
        if phase != self.phase:
            self._end_phase()
            self.phase, self.t0 = phase, time.perf_counter()
            if _bars_wanted():
                if self.bar is None:
                    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                    self.bar = Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                                        TextColumn("epochs, best val {task.fields[best]}"), TimeElapsedColumn(),
                                        console=console, transient=True)
                    self.bar.start()
                self.task = self.bar.add_task(phase, total=total, best="—")
        self.last = (epoch, metrics)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=epoch, best=f"{metrics.get('best_val_acc', 0):.4f}")

    def _end_phase(self) -> None:
        if self.phase is None:
            return
        epoch, metrics = self.last
        if self.bar is not None and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        console.print(f"[dim]✓ {self.phase}: {epoch} epochs, best val accuracy "
                      f"{metrics.get('best_val_acc', float('nan')):.4f} ({time.perf_counter() - self.t0:.1f} s)[/dim]")
        self.phase = None

    def close(self) -> None:
        self._end_phase()
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def print_train_summary(s: dict, out: Path, data: str, seed: int) -> None:
    def pct(v) -> str:
        return "—" if v is None or v != v else f"{100 * v:.2f} %"

    cfg = s["config"]
    table = Table(title=f"approxmlp train: {s['data']} {s['topology']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("quantization", f"{cfg['input_bits']}-bit inputs, {cfg['weight_bits']}-bit {s['weights']} weights, "
                                  f"{cfg['bias_bits']}-bit biases, {cfg['act_bits']}-bit activations; "
                                  "power-of-two scales")
    fa, qa = s["float_accuracy"], s["accuracy"]
    table.add_row("float accuracy", f"val {pct(fa['val'])}   test {pct(fa['test'])}")
    table.add_row("quantized accuracy", f"train {pct(qa['train'])}   val {pct(qa['val'])}   test {pct(qa['test'])}")
    eq = s["brevitas_equals_golden"]
    table.add_row("Brevitas = golden", f"{eq['samples'] - eq['mismatches']}/{eq['samples']} samples")
    ep = s["epochs"]
    table.add_row("training", f"seed {s['seed']} (best of {s['restarts']}), float {ep['float']} epochs, "
                              f"QAT {ep['qat']} epochs (best {ep['qat_best']}), {s['train_seconds']:.1f} s")
    out_console.print(table)
    out_console.print("integer ranges (accumulator and output as seen on the training set):")
    for r in s["ranges"]:
        out_console.print(f"  layer {r['layer']} ({r['shape']}, {r['activation']}): weights {r['weights'][0]}..{r['weights'][1]}, "
                          f"biases {r['biases'][0]}..{r['biases'][1]}, shift {r['shift']}, accumulator "
                          f"{r['acc_seen'][0]}..{r['acc_seen'][1]} ({r['acc_bits_worst']}-bit worst case), "
                          f"output {r['out_seen'][0]}..{r['out_seen'][1]}")
    seed_opt = f" --seed {seed}" if seed else ""
    out_console.print(f"model: {out}   IR sha256 {s['ir_sha256'][:16]}…")
    out_console.print(f"next: approxmlp compile {out} --data {data}{seed_opt} --out <folder>")


def print_demo(summary: dict) -> None:
    """Exact against the chosen approximate design, and the files to open."""
    from .backend.report import fmt, fmt_acc, fmt_loss

    d = summary["demo"]
    ex, ch = d["exact"], d["chosen"]
    metric = summary["metric"]
    unit = "cm²" if metric == "area_cm2" else "LUTs"
    title = f"approxmlp demo: {summary['data']} {d['topology']} on {summary['target']}"
    if ch is None:
        out_console.print(f"{title}: no verified design certified within {d['budget']:.0%} loss; see {d['report']}")
        return
    table = Table("", "exact", f"approximate ({ch['id']})", "reduction", title=title)

    def ratio(a, b):
        return f"{a / b:.1f}x" if a is not None and b else "—"

    def vectors(p):
        v = p["verification"]
        return f"{v['vectors'] - v['mismatches']}/{v['vectors']}" + ("" if v["passed"] else " FAILED")

    table.add_row("validation accuracy (picked on)", fmt_acc(ex["validation_accuracy"], ex["validation_interval"]),
                  fmt_acc(ch["validation_accuracy"], ch["validation_interval"]), "")
    table.add_row("validation loss, paired (points)", "", fmt_loss(ch["validation_loss"]),
                  f"bound {100 * ch['loss_bound']:+.1f}")
    table.add_row("test accuracy (reported)", fmt_acc(ex["test_accuracy"], ex["test_interval"]),
                  fmt_acc(ch["test_accuracy"], ch["test_interval"]), "")
    table.add_row("test loss, paired (points)", "", fmt_loss(ch["test_loss"]), "")
    table.add_row(f"area ({unit})", fmt(ex[metric]), fmt(ch[metric]), ratio(ex[metric], ch[metric]))
    table.add_row("power (mW)", fmt(ex["power_mw"], 3), fmt(ch["power_mw"], 3), ratio(ex["power_mw"], ch["power_mw"]))
    table.add_row("cells", str(ex["cells"]), str(ch["cells"]), ratio(ex["cells"], ch["cells"]))
    table.add_row("vectors verified (RTL = golden)", vectors(ex), vectors(ch), "")
    out_console.print(table)
    conf = summary["selection"]["confidence"]
    out_console.print(f"the smallest verified design whose validation loss against the exact one is within "
                      f"{d['budget']:.0%} with {conf:.0%} confidence (of {summary['search']['realized_designs']} "
                      "front designs made real)")
    out_console.print("brackets: 95% intervals; losses paired against the exact design on the same samples")
    if d["pick"].get("note"):
        out_console.print(d["pick"]["note"])
    out_console.print(f"RTL:    {d['rtl']}")
    out_console.print(f"Pareto: {d['pareto_png']}")
    out_console.print(f"report: {d['report']}")
