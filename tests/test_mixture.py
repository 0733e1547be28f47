"""Training on a mixture of units dirs (lm/mixture.py, lm/train_data.py): pools, shares and epochs,
deterministic windows, the tokenizer check, per-corpus test losses with the synthetic corpus outside
the headline, the single-dir fingerprint kept, and the paper's mixture (configs/study/paper.yaml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from slmscale.cli import main
from slmscale.config import ConfigError, load_config
from slmscale.files import StageError
from slmscale.lm.config import MixtureConfig, MixtureCorpus, TrainConfig
from slmscale.lm.mixture import MixtureWindows, mixture_shares
from slmscale.lm.plan import plan_run
from slmscale.lm.record import RunRecord
from slmscale.lm.train_data import open_train_data
from slmscale.lm.trainer import run_fingerprint, train
from slmscale.units.fixtures import make_units_dir

ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(size="tiny-L1", tokens=2048, context=32, tokens_per_update=256, eval_every=4, lr=1e-2,
                   device="cpu", threads=1)
# Table 2 of the paper (docs/PAPER.md §3): HuBERT units per corpus.
PAPER_TOKENS = {"librispeech": 67e6, "librilight": 3.74e9, "swc": 32e6, "tedlium3": 0.11e9,
                "peoples_speech": 0.48e9, "voxpopuli_en": 1.64e9, "stinystories": 4.82e9}


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> MixtureConfig:
    """Two natural corpora and a synthetic one of one fake tokenizer, 1 : 2 : 4 train tokens."""
    root = tmp_path_factory.mktemp("mix")
    sizes = {"books": 4000, "talks": 8000, "stories": 16000}
    for index, (name, tokens) in enumerate(sizes.items()):
        make_units_dir(root / name, tokens={"train": tokens, "valid": 600, "test": 600}, corpus_seed=index)
    return MixtureConfig(tuple(MixtureCorpus(str(root / name), in_test_loss=name != "stories") for name in sizes))


def test_shares_follow_the_train_tokens_or_the_weights():
    shares = mixture_shares("abc", [100, 300, 600], None, 1000, 8, "random")
    assert [s.unique_tokens for s in shares] == [100, 300, 600]
    assert [s.probability for s in shares] == [0.1, 0.3, 0.6]
    cut = mixture_shares("abc", [100, 300, 600], None, 501, 8, "random")  # a data-constrained run
    assert [s.unique_tokens for s in cut] == [50, 150, 301] and sum(s.unique_tokens for s in cut) == 501
    weighted = mixture_shares("abc", [100, 300, 600], [1, 1, 2], 1000, 8, "random")
    assert [s.probability for s in weighted] == [0.25, 0.25, 0.5]
    epochs = mixture_shares("abc", [100, 300, 600], None, 1000, 9, "epochs")  # 11 + 33 + 66 windows
    assert [round(s.probability * 110) for s in epochs] == [11, 33, 66]
    with pytest.raises(ConfigError, match="take no weights"):
        mixture_shares("abc", [100, 300, 600], [1, 1, 2], 1000, 8, "epochs")
    with pytest.raises(ConfigError, match="corpus 'a'.*fewer than one window"):
        mixture_shares("abc", [100, 300, 600], None, 200, 32, "random")


@pytest.mark.parametrize("sampling", ["random", "epochs"])
def test_windows_are_the_same_split_over_processes_and_after_a_resume(sampling):
    streams = [np.arange(n, dtype=np.uint16) + base for n, base in ((500, 0), (1500, 10000), (3000, 20000))]
    shares = mixture_shares("abc", [500, 1500, 3000], None, 5000, 16, sampling)
    whole = MixtureWindows(streams, shares, 16, sampling, seed=3)
    for update in (0, 7, 400):  # 400 x 8 windows: several epochs of the 310 under `epochs`
        batch = whole.batch(update, 8)
        resumed = MixtureWindows(streams, shares, 16, sampling, seed=3)  # a fresh process at this update
        halves = [resumed.batch(update, 8, slice(0, 4)), resumed.batch(update, 8, slice(4, 8))]
        assert (np.concatenate(halves) == batch.numpy()).all()
        assert (np.diff(batch.numpy(), axis=1) == 1).all()  # every window is consecutive tokens of one stream
    if sampling == "epochs":  # each window of the mixture once per epoch
        windows = sum((s.unique_tokens - 1) // 16 for s in shares)
        firsts = [int(whole.batch(u, 1)[0, 0]) for u in range(windows)]  # one window per update: one epoch
        assert len(set(firsts)) == len(firsts) == windows == 311


def test_a_three_corpus_mixture_trains_and_records_each_corpus(three, tmp_path, capsys):
    record = train(three, tmp_path / "run", TINY)
    assert record["status"] == "completed" and record["version"] == 2
    losses = {entry["corpus"]: entry for entry in record["test_losses"]}
    assert set(losses) == {"books", "talks", "stories"} and not losses["stories"]["in_test_loss"]
    assert record["test_loss_covers"] == ["books", "talks"]  # the synthetic corpus is not in the headline
    covered = [losses["books"], losses["talks"]]
    pooled = sum(e["loss"] * e["tokens"] for e in covered) / sum(e["tokens"] for e in covered)
    assert record["test_loss"] == pytest.approx(pooled, rel=1e-12)
    assert record["test_tokens"] == sum(e["tokens"] for e in covered)
    assert record["test_loss"] != pytest.approx(losses["stories"]["loss"], rel=1e-6)
    train_tokens = [c["train_tokens"] for c in record["mixture"]]
    assert record["unique_tokens"] == sum(train_tokens) and record["epochs"] == round(2048 / sum(train_tokens), 6)
    assert [c["probability"] for c in record["mixture"]] == [round(t / sum(train_tokens), 6) for t in train_tokens]
    assert all(c["epochs"] == pytest.approx(record["epochs"], abs=2e-6) for c in record["mixture"])
    assert [c["name"] for c in record["units"]["corpora"]] == ["books", "talks", "stories"]
    assert train(three, tmp_path / "run", dataclasses.replace(TINY, threads=2))["finished"] == record["finished"]
    moved = MixtureConfig(tuple(dataclasses.replace(c, weight=1.0) for c in three.corpora))
    with pytest.raises(StageError, match="different config"):  # weights are another run
        train(moved, tmp_path / "run", TINY)


def test_weights_give_each_corpus_its_own_epochs(three):
    weighted = MixtureConfig(tuple(dataclasses.replace(c, weight=1.0) for c in three.corpora))
    data = open_train_data(weighted, TINY)
    plan = plan_run(TINY, data.meta["vocab_size"], data.train_tokens("train"))
    summary = data.summary(TINY, plan)
    assert [c["probability"] for c in summary] == [round(1 / 3, 6)] * 3
    for corpus in summary:  # a third of D each, from pools of about 4k, 8k and 16k tokens
        assert corpus["epochs"] == pytest.approx(2048 / 3 / corpus["unique_tokens"], abs=1e-6)
    assert summary[0]["epochs"] > 1.9 * summary[1]["epochs"] > 3.7 * summary[2]["epochs"]


def test_a_mixture_of_two_tokenizers_or_without_a_headline_is_refused(three, tmp_path):
    other = make_units_dir(tmp_path / "other", seed=5)  # another (fake) tokenizer
    mixed = MixtureConfig((*three.corpora, MixtureCorpus(str(other))))
    with pytest.raises(StageError, match=r"other/meta.json: tokenizer_fingerprint .* one tokenizer"):
        train(mixed, tmp_path / "run", TINY)
    with pytest.raises(ConfigError, match="no corpus counts in the test loss"):
        MixtureConfig(tuple(dataclasses.replace(c, in_test_loss=False) for c in three.corpora))
    with pytest.raises(ConfigError, match="'books' is used twice"):
        MixtureConfig((three.corpora[0], three.corpora[0]))
    with pytest.raises(ConfigError, match="corpus 'talks' has no weight"):
        MixtureConfig((dataclasses.replace(three.corpora[0], weight=2.0), three.corpora[1]))
    no_test = make_units_dir(tmp_path / "notest", utterances={"train": 100}, corpus_seed=9)
    with pytest.raises(StageError, match="notest/meta.json: no split 'test'.*in_test_loss: false"):
        train(MixtureConfig((three.corpora[0], MixtureCorpus(str(no_test)))), tmp_path / "run2", TINY)


def test_a_single_units_dir_keeps_the_fingerprint_it_had_before_mixtures(tmp_path):
    """Run dirs trained before mixtures existed are still recognised as complete: the value below is what
    the trainer before them (branch issue20) gave this config and units dir."""
    units = make_units_dir(tmp_path / "units")
    fast = TrainConfig(size="tiny-L1", tokens=3000, context=32, tokens_per_update=256, log_every=1,
                       eval_every=4, lr=1e-2)
    assert run_fingerprint(fast, open_train_data(units, fast).identity()) == "ba54a1ac55b3bd2c"


def test_train_takes_a_mixture_file(three, tmp_path, capsys):
    spec = {"corpora": [{"units": str(Path(c.units).relative_to(Path(c.units).parent.parent)),
                         "in_test_loss": c.in_test_loss} for c in three.corpora]}
    mix = Path(three.corpora[0].units).parent.parent / "mix.yaml"
    mix.write_text(yaml.safe_dump(spec))
    assert load_config(MixtureConfig, mix).corpora[0].label == "books"
    assert main(["train", "--mixture", str(mix), "--out", str(tmp_path / "run"), "--size", "tiny-L1",
                 "--tokens", "1024", "context=32", "tokens_per_update=256", "eval_every=0", "threads=1"]) == 0
    out = capsys.readouterr().out
    assert "stories: test loss" in out and "(not in the headline loss)" in out
    assert main(["train", "--units", three.corpora[0].units, "--mixture", str(mix), "--out", str(tmp_path / "x")]) == 2


def _paper_study(tmp_path: Path):
    """configs/study/paper.yaml with its units dirs replaced by fake ones of Table 2's relative sizes
    (2e-5 of the paper's: 218k units in all; the unigram dirs at the same scale)."""
    from slmscale.config import from_dict
    from slmscale.study.config import StudyConfig
    from slmscale.study.study import _sweep_config
    from slmscale.sweep.config import SweepConfig
    from slmscale.sweep.grid import expand
    study = load_config(StudyConfig, ROOT / "configs" / "study" / "paper.yaml")
    prepared = []
    for variant in study.prepared:
        corpora = []
        for index, corpus in enumerate(variant.mixture):
            fake = tmp_path / variant.name / corpus.label
            make_units_dir(fake, units=500, tokens={"train": int(PAPER_TOKENS[corpus.label] * 2e-5), "test": 200},
                           corpus_seed=index)
            corpora.append(dataclasses.replace(corpus, units=str(fake)))
        prepared.append(dataclasses.replace(variant, mixture=tuple(corpora)))
    study = dataclasses.replace(study, prepared=tuple(prepared), benchmarks=())
    sweep = from_dict(SweepConfig, _sweep_config(study, tmp_path / "study", set()))
    return sweep, expand(sweep, tmp_path)


def test_the_papers_mixture_samples_in_proportion_to_table_2(tmp_path):
    from slmscale.sweep.grid import training_data
    from slmscale.sweep.worker import train_config
    sweep, specs = _paper_study(tmp_path)
    raw = [spec for spec in specs if spec.variant == "raw"]
    assert raw and all(len(spec.mixture) == 7 for spec in specs)
    assert [c["name"] for c in raw[0].mixture if not c["in_test_loss"]] == ["stinystories"]
    spec = next(s for s in raw if s.size == "20m" and s.grids == ["main"])
    cfg = dataclasses.replace(train_config(spec, sweep, "fp32"), context=32, tokens_per_update=32 * 64)
    data = open_train_data(training_data(spec), cfg)
    plan = plan_run(cfg, data.meta["vocab_size"], data.train_tokens("train"))
    summary = data.summary(cfg, plan)
    paper_share = {name: tokens / sum(PAPER_TOKENS.values()) for name, tokens in PAPER_TOKENS.items()}
    for corpus in summary:  # the fake dirs are Table 2 to within one utterance
        assert corpus["probability"] == pytest.approx(paper_share[corpus["corpus"]], abs=5e-4)
        assert corpus["epochs"] == pytest.approx(spec.tokens / data.train_tokens("train"), rel=1e-5)
    assert plan.unique_tokens == data.train_tokens("train") == sum(c["train_tokens"] for c in summary)
    windows = data.windows(cfg, plan)
    drawn = np.concatenate([windows.draw(update, 64)[0] for update in range(500)])  # 32,000 windows
    measured = np.bincount(drawn, minlength=7) / len(drawn)
    for corpus, share in zip(summary, measured):
        p = corpus["probability"]
        assert abs(share - p) < 4 * (p * (1 - p) / len(drawn)) ** 0.5 + 1e-4, corpus["corpus"]
    epoch_run = next(s for s in raw if s.grids == ["epochs"])  # 2-10 passes over the whole 10.89B
    assert epoch_run.unique_tokens == 10_890_000_000 and epoch_run.tokens / epoch_run.unique_tokens in (2, 4, 8, 10)


def test_a_record_from_before_mixtures_reads_with_its_one_test_loss():
    old = RunRecord.from_json({"version": 1, "status": "completed", "test_loss": 2.0, "test_tokens": 10})
    assert old.version == 1 and old.test_loss == 2.0 and old.test_losses is None and old.mixture is None
    assert "mixture" not in old.to_json() and "test_losses" not in old.to_json()
