"""Synthesis speed: audio seconds per wall second of each TTS route, on the same texts.

Routes, each writing 16 kHz PCM16 wavs of the same fixed texts:
- baseline: the espeak-ng CLI, one process per utterance (`espeak-ng -v en-us -w f.wav "text"`,
  22.05 kHz as the CLI writes it);
- espeak in-process (libespeak-ng via ctypes, resampled to 16 kHz) with 1 and 2 workers;
- piper (joe voice) with 1 worker (onnxruntime's default threads).
Ratios are against the baseline measured in the same run. With `--acceptance` it also
times the whole `slmscale synth` stage on a 2000-story built-in world (`slmscale world`)
against the 3-minute target.
The results replace the synthesis section of benchmarks/RESULTS.md.

    python benchmarks/synthesis_speed.py [--texts 200] [--acceptance] [--no-piper]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from slmscale.audio.synth_jobs import Job, run_jobs
from slmscale.world.config import WorldConfig
from slmscale.world.generate import make_world
from slmscale.world.grammar import split_sentences
from results_md import RESULTS, update_results

BEGIN, END = "<!-- synthesis-speed:begin -->", "<!-- synthesis-speed:end -->"


def fixed_texts(count: int) -> list[str]:
    """`count` texts of 1-3 consecutive sentences from the stories of a small built-in world."""
    rng = random.Random(1234)
    records = make_world(WorldConfig(stories=max(50, count), sentence_records=0)).records
    sentences = [s for record in records for s in split_sentences(record["text"])]
    texts, at = [], 0
    while len(texts) < count:  # 1-3 sentences a text, about 6 a story: never runs out
        n = rng.randint(1, 3)
        texts.append(" ".join(sentences[at:at + n]))
        at += n
    return texts


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (pool workers, subprocesses)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_cli_baseline(texts: list[str], work: Path) -> tuple[float, float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    audio = 0.0
    for i, text in enumerate(texts):
        path = work / f"cli-{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
        audio += sf.info(str(path)).duration
    return audio, time.perf_counter() - start, cpu_seconds() - cpu


def time_route(texts: list[str], work: Path, backend: str, voice: str, workers: int) -> tuple[float, float, float]:
    out = work / f"{backend}-{workers}"
    jobs = [Job(f"{i}.wav", f"text {i}", voice, text=text) for i, text in enumerate(texts)]
    start, cpu = time.perf_counter(), cpu_seconds()
    audio = run_jobs(jobs, out, backend, {}, workers, lambda results: None, desc=f"{backend} x{workers}")
    return audio, time.perf_counter() - start, cpu_seconds() - cpu


def time_acceptance(work: Path) -> dict:
    """The whole stage on a 2000-story world, as `slmscale synth W --out S` runs it."""
    world = work / "world"
    subprocess.run([sys.executable, "-m", "slmscale", "-q", "world", "--out", str(world), "--stories", "2000"],
                   check=True)
    source = "slmscale world --stories 2000"
    start, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run([sys.executable, "-m", "slmscale", "-q", "synth", str(world), "--out", str(work / "speech")],
                   check=True)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    summary = json.loads((work / "speech" / "synth.json").read_text())
    train_h = sum(summary["corpus"]["hours"].get("train", {}).values())
    return {"source": source, "wall_s": wall, "cpu_s": cpu, "train_hours": train_h, "summary": summary,
            "load": os.getloadavg()[0]}


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.split("Data")[0]

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "load": os.getloadavg()[0],
            "date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "espeak": espeak.replace("eSpeak NG text-to-speech:", "espeak-ng").strip(),
            "versions": {n: version(n) for n in ("piper-tts", "onnxruntime", "soxr", "numpy", "soundfile")}}


def render(info: dict, texts: int, rows: list[tuple[str, float, float, float]], acceptance: dict | None) -> str:
    baseline = rows[0][1] / rows[0][2]
    lines = [BEGIN, "## Synthesis speed (`benchmarks/synthesis_speed.py`)", "",
             f"{info['date']}, {info['cpu']}, {info['cores']} cores (1-min load average {info['load']:.2f} "
             f"at the start: other jobs on a shared machine slow the numbers down), Python {info['python']}, "
             f"{info['espeak']}, " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".", "",
             f"The same {texts} texts (1-3 consecutive sentences of built-in world stories each) through every route; "
             "in-process routes include resampling to 16 kHz and writing the wav, and the 2-worker "
             "route its pool start-up. CPU s counts this process and its children; audio s per CPU s "
             "does not depend on what else runs on the machine. The CLI writes 22.05 kHz wavs ending "
             "in a sentence pause, hence its slightly longer audio.", "",
             "| route | audio s | wall s | CPU s | audio s per wall s | audio s per CPU s | vs baseline (wall) |",
             "|---|---|---|---|---|---|---|"]
    for name, audio, wall, cpu in rows:
        lines.append(f"| {name} | {audio:.0f} | {wall:.1f} | {cpu:.1f} | {audio / wall:.0f} | {audio / cpu:.0f} | "
                     f"{audio / wall / baseline:.2g}x |")
    if acceptance:
        s = acceptance["summary"]
        bench = ", ".join(f"{k} {v['files']} files" for k, v in s["benchmarks"].items())
        verdict = "meets" if acceptance["wall_s"] < 180 and acceptance["train_hours"] >= 1 else "MISSES"
        lines += ["", "### Acceptance: `slmscale synth W --out S` on a 2000-story world", "",
                  f"World: {acceptance['source']}. {s['corpus']['utterances']} corpus utterances, "
                  f"{acceptance['train_hours']:.2f} h of training audio, {s['corpus']['total_hours']:.2f} h corpus "
                  f"in all; benchmarks: {bench}. {s['synthesized_files']} wavs, "
                  f"{s['synthesized_audio_s'] / 3600:.2f} h of audio in all.", "",
                  f"**{acceptance['wall_s']:.0f} s wall** for the whole command (stage: {s['wall_s']:.0f} s, "
                  f"{s['audio_s_per_wall_s']:.0f} audio-s per wall-s with {s['workers']} workers; "
                  f"{acceptance['cpu_s']:.0f} CPU-s, i.e. {acceptance['cpu_s'] / info['cores']:.0f} s if all "
                  f"{info['cores']} cores were free; 1-min load average {acceptance['load']:.2f} at the end): "
                  f"{verdict} the target of >= 1 h of training audio and all benchmark folders in < 180 s."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--acceptance", action="store_true", help="also time the whole stage on 2000 stories")
    parser.add_argument("--no-piper", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    info = machine()
    texts = fixed_texts(args.texts)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(("baseline: espeak-ng CLI, a process per utterance", *time_cli_baseline(texts, work)))
        rows.append(("espeak in-process, 1 worker", *time_route(texts, work, "espeak", "en-us@175", 1)))
        rows.append(("espeak in-process, 2 workers", *time_route(texts, work, "espeak", "en-us@175", 2)))
        if not args.no_piper and importlib.util.find_spec("piper") is not None:
            rows.append(("piper joe, 1 worker", *time_route(texts, work, "piper", "joe@1.0", 1)))
        acceptance = time_acceptance(work) if args.acceptance else None
    section = render(info, len(texts), rows, acceptance)
    print(section)
    if not args.no_write:
        update_results(section, BEGIN, END)
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
