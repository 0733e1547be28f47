"""`run_study(out, cfg)`: the paper's study end to end, each stage skipped when its output is complete.

world -> synth -> tokenizer -> units (raw, and split by corpus) -> unigram -> text arm
-> sweep (train + eval every run) -> report (fits, figures, report.md)

Every stage is the same function its own command runs, writing under OUT (world/, speech/,
tokenizer/, units/<variant>/, unigram/, sweep/, report/); each skips finished work and
resumes unfinished work, so an interrupted study resumes where it stopped; an output made with
another config (an edited study, a changed default) moves to superseded/ and is redone. `study.json`
records each stage's wall time (and whether it was skipped) for the run that wrote it, and the
one precision every run trained in (the sweep chooses it once; the report states it).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slmscale.config import ConfigError, fingerprint, to_dict
from slmscale.files import MARKER, DifferentConfig, StageError, content_hash, is_completed, mark_completed, write_json, write_text
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now
from slmscale.study.config import STUDY_VARIANTS, StudyConfig
from slmscale.sweep.config import Variant
from slmscale.world.config import world_dict

log = get_logger(__name__)
STUDY_FILE = "study.json"


def _used_variants(cfg: StudyConfig) -> set[str]:
    if cfg.sweep.variants or cfg.sweep.benchmarks:
        raise ConfigError("sweep.variants / sweep.benchmarks: the study fills them; name variants in "
                          "sweep.grids (and give real data as `prepared` and `benchmarks`)")
    used = {name for grid in cfg.sweep.grids for name in grid.variants}
    known = [v.name for v in cfg.prepared] or list(STUDY_VARIANTS)
    unknown = used - set(known)
    if unknown:
        raise ConfigError(f"sweep.grids: unknown variant(s) {', '.join(sorted(unknown))} "
                          f"(the study has {', '.join(known)})")
    if not used:
        raise ConfigError("sweep.grids: the study needs at least one grid")
    return used


class _Stages:
    """Times each stage and notes whether it had anything to do.

    A stage output completed under another config (the study was edited, or a default changed) is
    moved to OUT/superseded/ and the stage redone; `superseded` then says the trained runs rest on
    other data, so the study moves the sweep and the report aside too (a run's fingerprint covers
    its units, and a sweep refuses a run dir of other units)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.timings: dict[str, dict[str, Any]] = {}
        self.superseded: list[Path] = []

    def supersede(self, directory: Path) -> None:
        """Move a stage output under OUT/superseded/<its path, / as ->-<UTC time>/."""
        directory = Path(directory)
        name = "-".join(directory.resolve().relative_to(self.out.resolve()).parts)
        target = self.out / "superseded" / f"{name}-{utc_now().replace(':', '')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        directory.rename(target)
        log.warning("study: %s was made with another config; moved to %s", directory, target)
        self.superseded.append(target)

    def __call__(self, name: str, done: Callable[[], bool], work: Callable[[], Any]) -> Any:
        skipped = done()
        start = time.perf_counter()
        log.info("study: %s%s", name, " (complete)" if skipped else "")
        while True:
            try:
                result = work()
                break
            except DifferentConfig as err:
                inside = Path(err.directory).resolve().is_relative_to(self.out.resolve())
                if not inside or Path(err.directory).resolve() == self.out.resolve():
                    raise
                self.supersede(err.directory)
                skipped = False
        self.timings[name] = {"seconds": round(time.perf_counter() - start, 1), "skipped": skipped}
        return result


def _complete(path: Path) -> Callable[[], bool]:
    return lambda: is_completed(path)


def _sweep_config(cfg: StudyConfig, out: Path, used: set[str]) -> dict[str, Any]:
    """sweep.yaml's content. Its paths are absolute: the sweep reads relative ones from the folder of
    sweep.yaml (the study dir), while the study's own (`--out`, `prepared`, `benchmarks`,
    `sweep.with_runs`) are relative to the current directory."""
    out = out.resolve()
    taken = tuple(dataclasses.replace(w, run=str(Path(w.run).resolve())) for w in cfg.sweep.with_runs)
    shrink = cfg.shrink.train if cfg.shrink.sizes else ()  # a shrunk study's train overrides come last
    grids = cfg.shrink.grids(cfg.sweep.grids)
    if cfg.prepared:
        prepared = tuple(dataclasses.replace(v.resolved(Path.cwd()), train=(*v.train, *shrink)) for v in cfg.prepared)
        benchmarks = tuple(str(Path(path).resolve()) for path in cfg.benchmarks)
        return to_dict(dataclasses.replace(cfg.sweep, variants=prepared, benchmarks=benchmarks, with_runs=taken,
                                           grids=grids))
    labels = {"raw": ("all", "raw"), "stories": ("stories", "raw"), "sentences": ("sentences", "raw"),
              "unigram": ("all", "unigram"), "text": ("all", cfg.text.alphabet)}
    train = {"text": cfg.text_train, "unigram": cfg.unigram_train}
    variants = [Variant(name, str(out / "units" / name), *labels[name], train=(*train.get(name, ()), *shrink))
                for name in STUDY_VARIANTS if name in used]
    benchmarks = out / "speech" / "benchmarks"
    sweep = dataclasses.replace(
        cfg.sweep, variants=tuple(variants), with_runs=taken, grids=grids,
        benchmarks=(str(benchmarks),) if benchmarks.is_dir() else (),
        text_benchmarks=(str(out / "world" / "benchmarks"),) if "text" in used else ())
    return to_dict(sweep)


def _report_stamp(results: Path, cfg: StudyConfig) -> str:
    """The report depends on the results table and the fit settings only."""
    return content_hash(results.read_bytes(), fingerprint(cfg.fit))


def _report(sweep: Path, report: Path, cfg: StudyConfig, stamp: str) -> Any:
    from slmscale.report.report import make_report
    if is_completed(report, stamp):
        return None
    (report / MARKER).unlink(missing_ok=True)  # stale: the sweep has new results
    fit = cfg.fit
    result = make_report(sweep, report, bootstrap=fit.bootstrap, seed=fit.seed, delta=fit.delta,
                         tie_alpha_beta=fit.tie_alpha_beta, fixed=fit.fixed())
    mark_completed(report, stamp)
    return result


def _data_stages(out: Path, cfg: StudyConfig, used: set[str], stage: _Stages) -> None:
    """The built-in world's data: world, speech, tokenizer and the units of each variant."""
    from slmscale.audio.synth import synth
    from slmscale.units.subset import subset_units
    from slmscale.units.text_units import tokenize_text
    from slmscale.units.tokenize import tokenize_corpus
    from slmscale.units.tokenizer import train_tokenizer
    from slmscale.units.unigram import encode_units, train_unigram
    from slmscale.world.generate import build_world
    world, speech, units = out / "world", out / "speech", out / "units"
    stage("world", _complete(world), lambda: build_world(world, cfg.world))
    stage("synth", _complete(speech), lambda: synth(world, speech, cfg.synth))
    stage("tokenizer", _complete(out / "tokenizer"),
          lambda: train_tokenizer(speech / "corpus", out / "tokenizer", cfg.tokenizer))
    stage("units", _complete(units / "raw"),
          lambda: tokenize_corpus(speech / "corpus", out / "tokenizer", units / "raw", workers=cfg.tokenizer.workers))
    for name, prefix in (("stories", cfg.story_prefix), ("sentences", cfg.sentence_prefix)):
        if name in used:
            stage(f"units-{name}", _complete(units / name), lambda n=name, p=prefix: subset_units(
                units / "raw", units / n, (p,)))
    if "unigram" in used:
        stage("unigram", lambda: _complete(out / "unigram")() and _complete(units / "unigram")(),
              lambda: encode_units(units / "raw", train_unigram(units / "raw", out / "unigram", cfg.unigram),
                                   units / "unigram"))
    if "text" in used:
        stage("text", _complete(units / "text"), lambda: tokenize_text(world / "text.jsonl", units / "text", cfg.text))


def run_study(out_dir: str | Path, cfg: StudyConfig) -> dict[str, Any]:
    """Run (or resume) the study in `out_dir`; returns study.json's contents."""
    out = Path(out_dir)
    used = _used_variants(cfg)
    out.mkdir(parents=True, exist_ok=True)
    # The world as its own config.yaml has it: a world key added since, at its default, is left out.
    write_text(out / "study.yaml", yaml.safe_dump({**to_dict(cfg), "world": world_dict(cfg.world)}, sort_keys=False))
    stage = _Stages(out)
    started = time.perf_counter()
    if not cfg.prepared:
        _data_stages(out, cfg, used, stage)
    if stage.superseded:
        for later in (out / "sweep", out / "report"):
            if later.exists():
                stage.supersede(later)
    sweep_yaml = out / "sweep.yaml"
    write_text(sweep_yaml, yaml.safe_dump(_sweep_config(cfg, out, used), sort_keys=False))
    from slmscale.sweep.sweep import pending, prepare, record_precision, run_sweep
    prepare(sweep_yaml, out / "sweep")
    record_precision(out / "sweep")  # one precision for every run, before `pending` looks at them
    summary = stage("sweep", lambda: not pending(out / "sweep"), lambda: run_sweep(sweep_yaml, out / "sweep"))
    report = out / "report"
    stamp = _report_stamp(out / "sweep" / "results.csv", cfg)
    stage("report", lambda: is_completed(report, stamp), lambda: _report(out / "sweep", report, cfg, stamp))
    record = {"out": str(out.resolve()), "stages": stage.timings,
              "wall_seconds": round(time.perf_counter() - started, 1), "sweep": summary,
              "precision": summary.get("precision"),  # every run's, chosen once (sweep/precision.json)
              "report": str(report / "report.md"), "git_revision": git_revision(), "finished": utc_now()}
    write_json(out / STUDY_FILE, record)
    return record


def _planned_vocab(cfg: StudyConfig, name: str) -> int | None:
    """The vocab size a study variant's units will have (its ids, then EOS and pad), None where only
    the built units can tell (a character or phoneme text arm: the world's own symbols)."""
    if name in ("raw", "stories", "sentences"):
        return cfg.tokenizer.k + 2
    if name == "unigram":
        return cfg.unigram.vocab_size + 2
    return cfg.text.subword_vocab + 2 if cfg.text.alphabet == "subwords" else None


def plan_study(out_dir: str | Path, cfg: StudyConfig, gpu: str | None = None) -> list[str]:
    """The sweep the study in `out_dir` would run (`sweep plan` of the sweep.yaml it would write),
    before or between its stages: FLOPs, memory and, with `gpu`, the training time on that GPU.
    Writes nothing under `out_dir`. A variant whose units are not built yet is planned at the vocab
    its config gives (a stand-in meta.json in a temporary dir); its epochs are then unknown, and
    without `gpu` no time is estimated (this CPU is measured on the built units)."""
    import tempfile
    from slmscale.sweep.sweep import plan_table
    out = Path(out_dir).resolve()
    sweep = _sweep_config(cfg, out, _used_variants(cfg))
    for key in ("benchmarks", "text_benchmarks"):  # not made yet; a plan scores nothing
        sweep[key] = [path for path in sweep.get(key) or () if Path(path).exists()]
    with tempfile.TemporaryDirectory(prefix="slmscale-plan-") as tmp:
        missing = []
        for variant in sweep["variants"]:
            if not variant.get("units") or (Path(variant["units"]) / "meta.json").is_file():
                continue  # built, or a mixture (prepared corpora, checked by the sweep)
            vocab = _planned_vocab(cfg, variant["name"])
            if vocab is None:
                raise StageError(f"{variant['units']}: not built yet, and a {cfg.text.alphabet} text arm's vocab "
                                 "is known only once it is: plan again after the study's text stage")
            stand_in = Path(tmp) / variant["name"]
            stand_in.mkdir()
            (stand_in / "meta.json").write_text(json.dumps(
                {"vocab_size": vocab, "eos_id": vocab - 2, "pad_id": vocab - 1}), encoding="utf-8")
            if variant["name"] == "text":
                (stand_in / "vocab.json").write_text("{}", encoding="utf-8")  # marks the text modality
            missing.append((str(stand_in), variant["units"]))
            variant["units"] = str(stand_in)
        sweep_yaml = Path(tmp) / "sweep.yaml"
        sweep_yaml.write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
        lines, _ = plan_table(sweep_yaml, measure=not missing, sweep_dir=out / "sweep", gpu=gpu)
    for stand_in, units in missing:  # its per-run "epochs unknown" warnings say once what the last line says
        lines = [line.replace(stand_in, units) for line in lines
                 if not (line.startswith("warning: ") and "epochs unknown" in line and stand_in in line)]
    if missing:
        lines.append(f"{len(missing)} variant(s) not built yet ({', '.join(Path(u).name for _, u in missing)}): "
                     "planned at the vocab their config gives, epochs unknown"
                     + ("" if gpu else "; no time estimated (give --gpu NAME, or plan again once the units exist)"))
    return lines
