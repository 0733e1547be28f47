"""Every command line of the README, run as written on tiny inputs (integration), so the README
cannot drift from the code. Each README command is rewritten only mechanically: a few arguments
made tiny (`replace`), trailing `key=value`s appended (`extra`), an optional `[...]` part dropped
(`drop`). A command the table does not know, or a table entry the README lost, fails the test.

The real-data placeholders are made in their real formats: a LibriSpeech tree, a folder of mixed
audio, a TinyStories file, a randomly initialised HuBERT of the real shape (12 layers, 768 wide) in
the Hugging Face layout, a pickled scikit-learn k-means of 500 centroids, Muennighoff et al.'s runs
table, sLM21 and StoryCloze folders (the synthesised ones, copied), and a sweep file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration

SMALL_WORLD = ("sentence_records=40", "text_only_stories=40", "syntax_pairs_per_subtype=2", "cloze_per_subtype=2",
               "lexical_nonwords_per_word=1", "lexical_oov_words=4", "lexical_words=20", "valid_fraction=0.1", "test_fraction=0.1")
SMALL_TOKENIZER = ("k=16", "frames_sample=20000")
TINY_TRAIN = ("context=32", "tokens_per_update=512", "eval_every=0", "threads=1")


@dataclasses.dataclass(frozen=True)
class Tiny:
    replace: dict[str, str] = dataclasses.field(default_factory=dict)
    """README argument -> the argument run here (a whole shell word)."""
    extra: tuple[str, ...] = ()
    """Arguments appended (the trailing key=value overrides every stage takes)."""
    drop: tuple[str, ...] = ()
    """Optional `[...]` parts of the README line left out (the others are kept, brackets removed)."""
    refused: str | None = None
    """Expected to exit non-zero with this text in a one-line error (a command this machine cannot
    run by design, e.g. Slurm without Slurm)."""


# README command line -> how it runs here. Commands run in this order, in one workspace.
COMMANDS: dict[str, tuple[Tiny, ...]] = {
    "slmscale --help": (Tiny(),),
    "slmscale world --out W --stories 2000 --seed 0": (Tiny({"2000": "40"}, SMALL_WORLD),),
    "slmscale world --out W stories=500 syntax_pairs_per_subtype=200":
        (Tiny({"W": "W2", "stories=500": "stories=6", "syntax_pairs_per_subtype=200": "syntax_pairs_per_subtype=2"},
              ("sentence_records=6", "cloze_per_subtype=2", "lexical_nonwords_per_word=1", "lexical_oov_words=0",
               "lexical_words=4")),),
    "slmscale synth W --out S": (Tiny(extra=("workers=2",)),),
    "slmscale synth W --out S --backend piper": (Tiny({"W": "W2", "S": "S_piper"}),),
    "slmscale corpus import-librispeech LibriSpeech/ --out C": (Tiny(),),
    "slmscale corpus import-folder my_audio/ --out C": (Tiny({"C": "C_folder"}),),
    "slmscale corpus import-tinystories TinyStories-valid.txt --out T": (Tiny({"T": "TS"}),),
    "slmscale tokenizer train S/corpus --out TOK": (Tiny(extra=SMALL_TOKENIZER),),
    "slmscale tokenizer train C --out TOK --features hubert --hubert-path mhubert/ --layer 11 --k 500":
        (Tiny({"TOK": "TOK_hubert"}),),
    "slmscale tokenizer import-kmeans km500.bin --out TOK --features hubert --hubert-path mhubert/ --layer 11 "
    "--trust-pickle": (Tiny({"TOK": "TOK_km500"}),),
    "slmscale tokenize S/corpus --tokenizer TOK --out U": (Tiny(),),
    "slmscale tokenize S/benchmarks/zr2021/lexical/dev --tokenizer TOK --out UB": (Tiny(),),
    "slmscale tokenize S/corpus --tokenizer TOK --out Ush --shard 0/2": (Tiny(),),
    "slmscale tokenize S/corpus --tokenizer TOK --out Ush --shard 1/2": (Tiny(),),
    "slmscale tokenize S/corpus --tokenizer TOK --out Ush --merge": (Tiny(),),
    "slmscale units check U --tokenizer TOK": (Tiny(),),
    "slmscale unigram train U --out SPM --vocab-size 5000": (Tiny({"5000": "40"}),),
    "slmscale unigram encode U --model SPM --out U5k": (Tiny(),),
    "slmscale tokenize-text W/text.jsonl --out T --alphabet phonemes": (Tiny(),),
    "slmscale sizes [--json] [--vocab-size 202]": (Tiny(), Tiny(drop=("--json", "--vocab-size 202"))),
    "slmscale train --units U --size tiny-L4 --tokens 2000000 --out RUN":
        (Tiny({"tiny-L4": "tiny-L1", "2000000": "4096"}, TINY_TRAIN),),
    "slmscale train --units U --size tiny-L4 --tokens 4000000 --unique-tokens 1000000 --out RUN4ep":
        (Tiny({"tiny-L4": "tiny-L1", "4000000": "4096", "1000000": "1024"}, TINY_TRAIN),),
    "torchrun --nproc-per-node 2 -m slmscale train --units U --size 20m --tokens 660000000 --out RUN20m":
        (Tiny({"20m": "tiny-L1", "660000000": "4096"}, TINY_TRAIN),),
    "slmscale train --mixture MIX.yaml --size tiny-L4 --tokens 2000000 --out RUNmix":
        (Tiny({"tiny-L4": "tiny-L1", "2000000": "4096"}, TINY_TRAIN),),
    "slmscale export RUN --out HF": (Tiny(),),
    "slmscale eval RUN --benchmark S/benchmarks": (Tiny(extra=("bootstrap=20",)),),
    "slmscale eval RUN --benchmark UB": (Tiny(extra=("bootstrap=20",)),),
    "slmscale eval RUN --benchmark sLM21/ --benchmark sSC/ --benchmark tSC/ --write-scores SUB":
        (Tiny(extra=("bootstrap=20",)),),
    "slmscale eval RUNtext --benchmark W/benchmarks": (Tiny(extra=("bootstrap=20",)),),
    "slmscale eval --scores SUB/sLM21 --benchmark sLM21/ [--set dev] [--out report.json]": (Tiny(),),
    "slmscale sweep plan out/demo/sweep.yaml [--gpu h100]": (Tiny(), Tiny(drop=("--gpu h100",))),
    "slmscale sweep SWEEP.yaml --out SW [--workers 2] [--launcher slurm]":
        (Tiny(drop=("--launcher slurm",)), Tiny({"SW": "SW_slurm"}, refused="Slurm")),
    "slmscale fit SW/results.csv --law chinchilla --bootstrap 1000 --out FIT extrapolate_below=1e13":
        (Tiny({"1000": "20", "extrapolate_below=1e13": "extrapolate_below=3e10"}),),  # holds out 2 of 12
    "slmscale fit runs.csv --law data-constrained --fix E=1.869,A=520.8,B=1487.7,alpha=0.3527,beta=0.3527":
        (Tiny(),),
    "slmscale fit SW/results.csv --law downstream --metric sblimp --text-reference pythia --out FIT":
        (Tiny({"FIT": "FIT_downstream"}, ("bootstrap=20",)),),
    "slmscale report SW --out REPORT": (Tiny(),),
    # The paper's artifacts: a checkpoint in their native format on U's vocabulary (see _before), packed shards.
    "slmscale import-checkpoint gslm-scaling-85m-43p5b/ --units U --out R85m":
        (Tiny({"gslm-scaling-85m-43p5b/": "native/"}, ("tokens=4096",)),),
    "slmscale eval R85m --benchmark sLM21/ --benchmark sSC/ --benchmark tSC/": (Tiny(extra=("bootstrap=20",)),),
    "slmscale sweep SWEEP.yaml --out SW --with R85m": (Tiny(),),
    "slmscale export R85m --format slm-scaling --out R85m-native/": (Tiny(),),
    "slmscale units import-packed data/scaling-mixture/train/ --out UP --tokenizer TOK":
        (Tiny(extra=("test_fraction=0.2",)),),
    "slmscale vocoder train S/corpus --tokenizer TOK --out VOC": (Tiny(),),
    "slmscale generate RUN --prompt prompt.wav --seconds 6 --out continuation.wav [--vocoder VOC]":
        (Tiny(),),
    "slmscale study --out STUDY [--config configs/study/tiny.yaml]": (Tiny(),),  # overrides: _study_extra
    "slmscale study --out out/demo": (Tiny({"out/demo": "STUDY"}),),
    "slmscale study --out GPU --config configs/study/gpu.yaml --plan --gpu h100": (Tiny(),),  # writes nothing
}
NOT_RUN = {
    "slmscale study --out STUDY --config configs/study/paper.yaml":
        "the paper's grid on real corpora and GPUs; tests/test_study.py loads and expands this config",
    "slmscale study --out GPU --config configs/study/gpu.yaml":
        "hours on a GPU; tests/test_gpu_study.py expands and plans it, and runs it at tiny shapes on the CPU",
}
"""README commands not run here, each with the reason and where instead it is checked."""


def readme_commands(text: str) -> list[str]:
    """The command lines of the README: every `slmscale`/`torchrun` line of its ```sh blocks (split
    at `&&`, comments removed) and every inline `slmscale ...` span that is a whole command (not a
    bare stage name or an elided `...`)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("slmscale ", "torchrun ")):
                commands += [part.strip() for part in line.split("&&")]
    for span in re.findall(r"`(slmscale [^`]+)`", text):
        if "..." not in span and len(span.split()) > 2:
            commands.append(span)
    return commands


def _argv(command: str, tiny: Tiny) -> list[str]:
    for part in tiny.drop:
        assert f"[{part}]" in command, f"{command!r} has no optional part [{part}]"
        command = command.replace(f"[{part}]", "")
    command = command.replace("[", "").replace("]", "")
    words = [tiny.replace.get(word, word) for word in shlex.split(command)]
    assert all(old in shlex.split(command) for old in tiny.replace), (command, tiny.replace)
    words += tiny.extra
    if words[0] == "torchrun":  # torchrun is `python -m torch.distributed.run`; a free local port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return [sys.executable, "-m", "torch.distributed.run", "--master-addr", "127.0.0.1",
                "--master-port", str(port), *words[1:]]
    return [sys.executable, "-m", *words]


def test_the_table_names_every_readme_command_and_nothing_else():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert len(commands) == len(set(commands))
    missing = [c for c in commands if c not in COMMANDS and c not in NOT_RUN]
    stale = [c for c in [*COMMANDS, *NOT_RUN] if c not in commands]
    assert not missing, f"README commands this test does not run: {missing}"
    assert not stale, f"commands of this test the README no longer has: {stale}"


def _workspace(ws: Path) -> None:
    """The inputs the README's commands name, in their real formats."""
    from slmscale.audio.fixtures import make_audio_folder, make_librispeech_tree, make_tinystories_file
    from slmscale.units.model_fixtures import save_pickled_kmeans, save_random_hubert
    make_librispeech_tree(ws / "LibriSpeech" / "train-clean-100", speakers=2, chapters=2, utterances=4, seconds=(1.5, 2.5))
    make_audio_folder(ws / "my_audio")
    make_tinystories_file(ws / "TinyStories-valid.txt", 30)
    save_random_hubert(ws / "mhubert")
    save_pickled_kmeans(ws / "km500.bin", 500, 768)
    shutil.copy(ROOT / "tests/data/reference/datablations/c4_runs_final_val_loss.csv", ws / "runs.csv")
    (ws / "configs").symlink_to(ROOT / "configs")  # the README's commands run in a checkout
    sweep = {"variants": [{"name": "raw", "units": "U", "corpus": "all", "tokenizer": "raw"}],
             "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1", "tiny-L2", "tiny-L3"],
                        "tokens": [4096, 8192, 16384, 32768]}],
             "train": list(TINY_TRAIN), "benchmarks": ["S/benchmarks"], "eval": ["bootstrap=20"], "workers": 2}
    (ws / "SWEEP.yaml").write_text(yaml.safe_dump(sweep))
    # Two units dirs of one tokenizer: U and its sharded twin Ush, made by the README's lines before.
    (ws / "MIX.yaml").write_text(yaml.safe_dump({"corpora": [{"units": "U"}, {"units": "Ush", "in_test_loss": False}]}))
    (ws / "out" / "demo").mkdir(parents=True)
    (ws / "out" / "demo" / "sweep.yaml").write_text(yaml.safe_dump({**sweep, "variants": [
        {**sweep["variants"][0], "units": "../../U"}], "benchmarks": ["../../S/benchmarks"]}))


def _before(command: str, ws: Path, env: dict[str, str]) -> None:
    """What a README reader has made by the time they run `command`, beyond the README's lines."""
    if command.startswith("slmscale eval RUN --benchmark sLM21/"):
        bench = ws / "S" / "benchmarks"
        shutil.copytree(bench / "zr2021", ws / "sLM21")
        shutil.copytree(bench / "storycloze" / "sSC", ws / "sSC")
        shutil.copytree(bench / "storycloze" / "tSC", ws / "tSC")
    elif command.startswith("slmscale eval RUNtext"):  # a text-arm run, as the study trains them
        _run([sys.executable, "-m", "slmscale", "train", "--units", "T", "--size", "tiny-L1", "--tokens", "4096",
              "--out", "RUNtext", *TINY_TRAIN], ws, env)
    elif command.startswith("slmscale import-checkpoint"):  # a checkpoint of the paper's code on U's units
        from slmscale.lm.slm_scaling_fixtures import write_native_checkpoint
        vocab = json.loads((ws / "U" / "meta.json").read_text())["vocab_size"]
        write_native_checkpoint(ws / "native", vocab_size=vocab, block_size=256)
    elif command.startswith("slmscale units import-packed"):  # shards of the paper's pipeline, TOK's k units
        from slmscale.units.packed_fixtures import make_packed_dir
        make_packed_dir(ws / "data" / "scaling-mixture" / "train", k=json.loads((ws / "TOK" / "tokenizer.json")
                                                                                .read_text())["k"])
    elif command.startswith("slmscale generate"):
        import soundfile as sf  # the first 1.5 s of a corpus utterance, as a user would cut one
        samples, rate = sf.read(sorted((ws / "S" / "corpus").rglob("*.wav"))[0])
        sf.write(ws / "prompt.wav", samples[: int(1.5 * rate)], rate)


def _study_extra(command: str) -> tuple[str, ...]:
    """The study at test size: the miniature of tests/test_study.py."""
    if not command.startswith("slmscale study"):
        return ()
    from test_study import MINI
    grids = ("[{name: main, variants: [raw], sizes: [tiny-L1, tiny-L2, tiny-L3], tokens: [4096, 8192, 16384]},"
             " {name: corpus, variants: [stories, sentences], sizes: [tiny-L1, tiny-L2], tokens: [4096]},"
             " {name: unigram, variants: [unigram], sizes: [tiny-L1, tiny-L2], tokens: [4096]},"
             " {name: text, variants: [text], sizes: [tiny-L1, tiny-L2], tokens: [4096, 8192]}]")
    return (*MINI, f"sweep.grids={grids}", "sweep.train=[context=64, tokens_per_update=1024, eval_every=0]",
            "sweep.eval=[bootstrap=20]")


def _run(argv: list[str], ws: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=900)


def test_every_readme_command_runs_as_written_on_tiny_inputs(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    _workspace(ws)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT / "tests"),
           "OMP_NUM_THREADS": "1", "SLMSCALE_CACHE": str(tmp_path / "cache"),
           "PATH": os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                   if not (Path(p) / "sbatch").exists())}
    for command, variants in COMMANDS.items():
        _before(command, ws, env)
        for tiny in variants:
            argv = _argv(command, dataclasses.replace(tiny, extra=(*tiny.extra, *_study_extra(command))))
            done = _run(argv, ws, env)
            shown = f"{command}\n  ran: {shlex.join(argv[1:])}\n{done.stderr[-3000:]}"
            if tiny.refused:
                assert done.returncode != 0 and tiny.refused in done.stderr, shown
                assert "Traceback" not in done.stderr, shown
            else:
                assert done.returncode == 0, shown
    assert (ws / "continuation.wav").is_file() and (ws / "STUDY" / "report" / "report.md").is_file()
    assert (ws / "SW" / "results.csv").is_file() and (ws / "HF" / "config.json").is_file()
