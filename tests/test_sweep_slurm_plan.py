"""`sweep plan --launcher slurm`: a dry run that prints the Slurm job array the sweep would submit,
on a machine without Slurm, and is the very script a submission hands to `sbatch`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from slmscale.cli import main
from slmscale.units.fixtures import make_units_dir

pytest.importorskip("submitit")
GRID = {"name": "main", "variants": ["raw"], "sizes": ["tiny-L1", "tiny-L2"], "tokens": [512, 768]}
SLURM = {"partition": "gpu", "gpus_per_run": 1, "cpus_per_run": 4, "mem_gb": 48, "time_minutes": 90,
         "array_parallelism": 3}


def _config(tmp_path: Path, grid: dict = GRID, **slurm) -> Path:
    make_units_dir(tmp_path / "units")
    data = {"variants": [{"name": "raw", "units": "units"}], "grids": [grid],
            "train": ["context=32", "tokens_per_update=256", "eval_every=0"], "slurm": {**SLURM, **slurm}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _no_slurm(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _script(out: str) -> str:
    """The sbatch script of the plan's output, as the file it would be (the plan indents it)."""
    lines = out.split("the sbatch script", 1)[1].splitlines()[1:]
    return "\n".join(line[2:] for line in lines) + "\n"


def test_plan_with_the_slurm_launcher_prints_what_it_would_submit_and_submits_nothing(tmp_path, monkeypatch,
                                                                                      capsys):
    path = _config(tmp_path)  # the config's launcher is local: --launcher slurm must reach the plan
    _no_slurm(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "SW"
    assert main(["sweep", "plan", str(path), "--no-measure", "--launcher", "slurm", "--out", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing submitted" in out and "1 job array of 4 tasks" in out
    assert "each task: time 90 min, cpus 4, gpus 1, mem 48GB, partition gpu" in out
    script = _script(out)
    for flag in ("--array=0-3%3", "--time=90", "--cpus-per-task=4", "--gpus-per-node=1", "--mem=48GB",
                 "--partition=gpu"):
        assert f"#SBATCH {flag}\n" in script
    assert str(sweep / "slurm") in script
    # Array tasks in submission order: the largest runs first.
    tasks = [line.split(": ")[1] for line in out.splitlines() if line.startswith("  task ")]
    assert tasks == ["raw-tiny-L2-d768", "raw-tiny-L2-d512", "raw-tiny-L1-d768", "raw-tiny-L1-d512"]
    assert sorted(os.listdir(tmp_path)) == ["no-slurm-here", "sweep.yaml", "units"]  # nothing written


def test_several_gpus_per_run_show_the_torchrun_command_and_local_launcher_plans_show_none(tmp_path, monkeypatch,
                                                                                          capsys):
    path = _config(tmp_path, gpus_per_run=4)
    _no_slurm(tmp_path, monkeypatch)
    assert main(["sweep", "plan", str(path), "--no-measure", "launcher=slurm"]) == 0
    out = capsys.readouterr().out
    assert "--nproc-per-node 4 -m slmscale.sweep.worker SWEEP RUN_ID" in out and "#SBATCH --gpus-per-node=4" in out
    assert main(["sweep", "plan", str(path), "--no-measure"]) == 0
    assert "sbatch" not in capsys.readouterr().out


@pytest.mark.parametrize("sizes", [["tiny-L1", "tiny-L2"], ["tiny-L1"]])  # 4 runs: an array; 1 run: a plain job
def test_the_printed_script_is_the_one_a_sweep_hands_to_sbatch(sizes, tmp_path, monkeypatch, capsys):
    """A fake Slurm (`srun`, and an `sbatch` that keeps the file it is given) stands in for a cluster;
    the jobs' results are not waited for."""
    import submitit
    path = _config(tmp_path, {**GRID, "sizes": sizes, "tokens": GRID["tokens"][:len(sizes)]})
    bin_dir, kept = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {kept}\necho Submitted batch job 4242\n")
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(submitit.SlurmJob, "result", lambda self: "done")
    sweep = tmp_path / "SW"
    assert main(["sweep", "plan", str(path), "--no-measure", "--launcher", "slurm", "--out", str(sweep)]) == 0
    printed = capsys.readouterr().out
    planned = _script(printed)
    assert ("#SBATCH --array=" in planned) == (len(sizes) > 1) and ("plain job" in printed) == (len(sizes) == 1)
    assert main(["sweep", str(path), "--out", str(sweep), "--launcher", "slurm"]) == 0
    assert kept.read_text() == planned
