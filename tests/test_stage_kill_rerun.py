"""Each long-running stage killed once (SIGKILL: no cleanup runs) and run again: the rerun finishes,
removes what the dead run left under a temporary name, and gives the uninterrupted run's output
(integration). synth, tokenize, train and sweep have their own kill tests beside their stages."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration

# Run the CLI with the stage module's `mark_completed` replaced by a SIGKILL of the process: the
# stage dies with every output written but before its marker, the latest moment a kill can hit.
KILL_BEFORE_MARKER = """
import importlib, os, signal, sys
module = importlib.import_module(sys.argv[1])
module.mark_completed = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from slmscale.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def _cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "slmscale", *args], env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr


def _outputs(directory: Path) -> dict[str, bytes]:
    """Every file of an output dir, but the stage's wall-clock timings."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "tokenizer.json":
                record = json.loads(data)
                record["trained_on"] = {k: v for k, v in record["trained_on"].items() if not k.endswith("_s")}
                data = json.dumps(record).encode()
            files[str(path.relative_to(directory))] = data
    return files


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    from slmscale.audio.fixtures import make_speech_corpus
    from slmscale.units.fixtures import make_units_dir
    root = tmp_path_factory.mktemp("inputs")
    make_speech_corpus(root / "corpus", utterances=40, seconds=1.0)
    make_units_dir(root / "U")
    _cli("tokenizer", "train", str(root / "corpus"), "--out", str(root / "TOK"), "k=16", "frames_sample=5000")
    return root


STAGES = {
    "tokenizer train": ("slmscale.units.tokenizer",
                        lambda root: ["tokenizer", "train", str(root / "corpus"), "k=16", "frames_sample=5000"]),
    "unigram train": ("slmscale.units.unigram",
                      lambda root: ["unigram", "train", str(root / "U"), "--vocab-size", "40"]),
    "vocoder train": ("slmscale.vocoder.mean_mel",
                      lambda root: ["vocoder", "train", str(root / "corpus"), "--tokenizer", str(root / "TOK")]),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_killed_before_its_marker_reruns_to_the_uninterrupted_output(inputs, tmp_path, stage):
    module, args = STAGES[stage]
    reference, out = tmp_path / "reference", tmp_path / "out"
    _cli(*args(inputs), "--out", str(reference))
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_MARKER, module, *args(inputs), "--out", str(out)],
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / ".completed").exists()
    _cli(*args(inputs), "--out", str(out))
    assert (out / ".completed").is_file()
    assert not list(tmp_path.glob(".out.*")), "the dead run's temporary dir was left behind"
    assert _outputs(out) == _outputs(reference)


def _scores(study: Path) -> dict[str, dict[str, float]]:
    """Per run, its test and valid loss and benchmark accuracies (not its wall time)."""
    with (study / "sweep" / "results.csv").open(newline="") as handle:
        return {row["run_id"]: {k: float(row[k]) for k in ("loss", "valid_loss", "sblimp", "swuggy", "ssc", "tsc")}
                for row in csv.DictReader(handle)}


def test_a_study_killed_mid_sweep_resumes_to_the_uninterrupted_results(tmp_path):
    from test_study import MINI
    grids = "[{name: main, variants: [raw], sizes: [tiny-L1, tiny-L2], tokens: [4096, 8192, 16384]}]"
    config = [*MINI, f"sweep.grids={grids}", "sweep.train=[context=64, tokens_per_update=1024, eval_every=0]",
              "sweep.eval=[bootstrap=20]"]
    _cli("study", "--out", str(tmp_path / "reference"), *config)
    study = tmp_path / "study"
    driver = subprocess.Popen([sys.executable, "-m", "slmscale", "study", "--out", str(study), *config], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(study.glob("sweep/runs/*/sweep_done.json"))) < 2:
        if driver.poll() is not None:
            pytest.fail("the study ended before the kill")
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the study, its sweep driver and workers
    driver.wait()
    assert not (study / ".completed").exists()
    _cli("study", "--out", str(study), *config)
    record = json.loads((study / "study.json").read_text())
    assert record["sweep"]["status"] == {"completed": 6}
    got, want = _scores(study), _scores(tmp_path / "reference")
    assert sorted(got) == sorted(want)
    for run_id, scores in want.items():  # a resumed run is the uninterrupted one, to round-off
        assert got[run_id] == pytest.approx(scores, rel=1e-4), run_id
    assert not [p for p in study.rglob(".*.tmp*")], "temporary files of the dead run were left behind"
