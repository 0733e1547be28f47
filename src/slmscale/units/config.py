"""The configs of the units stages: `tokenizer train` and `tokenizer import-kmeans` (a feature spec
plus k-means), `tokenize` (audio to units), `unigram train`, the text arm (`tokenize-text`) and
`units import-packed` (the paper pipeline's packed units).

`tokenize`'s keys do not change the units, which the tokenizer fixes: they choose only how its
units are stored (`dedup`) and how the stage runs, which is why `tokenize_corpus` takes them as
plain arguments and the study passes its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from slmscale.config import ConfigError
from slmscale.units.features import FeatureSpec


@dataclass(frozen=True)
class TokenizerConfig:
    features: FeatureSpec = FeatureSpec(cmvn_stats="past")
    """The frame features clustered (kind mfcc|logmel|hubert, frame rate, CMVN, HuBERT path and layer).
    CMVN takes its statistics from the past frames: with whole-utterance statistics the two files of
    a cloze item or minimal pair get different units over their identical prompt, which biased the
    speech StoryCloze below chance (docs/LOG.md, 2026-12-07 night)."""
    k: int = 200
    """Number of k-means clusters = speech units (docs/DESIGN.md §5.2: k=200 beat k=50 on minimal pairs)."""
    frames_sample: int = 300_000
    """Frames drawn at random (with `seed`) from the train split to fit k-means on."""
    kmeans_iterations: int = 25
    """Lloyd iterations of k-means."""
    seed: int = 0
    """Seed of the utterance order, the frame sample and the k-means initialisation."""
    dedup: bool = True
    """Default for `slmscale tokenize`: collapse repeated units (durations kept beside them)."""
    workers: int = 0
    """Feature-extraction processes (0 = one per core). Does not change the output."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where HuBERT runs (TokenizeConfig `device`), in padded batches on CUDA. Not in the fingerprint."""

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: value {self.device!r} is not one of auto, cpu, cuda")
        if self.k < 1 or self.k + 2 > 65536:
            raise ConfigError(f"k={self.k}: must lie in [1, 65534] (units are stored as uint16 with EOS and PAD)")


@dataclass(frozen=True)
class ImportConfig:
    """How imported centroids are turned into a tokenizer dir."""
    features: FeatureSpec = FeatureSpec(cmvn=False)
    """The features the centroids were fitted on, which tokenize will compute (kind, HuBERT path and layer, frame rate, CMVN). CMVN is off by default, unlike `tokenizer train`: released quantizers (textlesslib, TWIST) were fitted on raw features. Set features.cmvn=true (--cmvn) only for centroids fitted on per-utterance-CMVN features, such as `tokenizer train` makes; CMVN here is per utterance, so its statistics come from each utterance at tokenize time and none are needed from the import. Checkpoints whose fairseq task normalised the waveform (HuBERT large/xlarge) also need features.normalize_waveform=true."""
    dedup: bool = True
    """Default for `slmscale tokenize`: collapse repeated units (durations kept beside them)."""


@dataclass(frozen=True)
class TokenizeConfig:
    """How `slmscale tokenize` turns audio into a units dir."""
    dedup: Optional[bool] = None
    """Collapse runs of a repeated unit into one (their lengths kept in .dur); null = the tokenizer's
    own setting (tokenizer.json `dedup`). `--no-dedup` sets false."""
    skip_bad: bool = False
    """Leave out unreadable or empty audio files (listed in meta.json `skipped`) instead of stopping."""
    workers: int = 0
    """Feature-extraction processes; 0 = one per CPU core."""
    hubert_path: Optional[str] = None
    """Where the tokenizer's HuBERT model lies now, if it moved since the tokenizer was made (checked
    to be the same weights, so the units do not change); null = where the tokenizer recorded it."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where HuBERT runs (mfcc/logmel always on the CPU): `auto` = CUDA when torch sees one. On CUDA
    one process extracts, with TF32 matmuls and no autocast (bf16 was slower, docs/LOG.md)."""
    batch_seconds: Optional[float] = None
    """HuBERT only: audio per padded batch of chunks (units/hubert_batch.py; the same frames as one
    chunk at a time, to float round-off); 0 = one chunk at a time; null = 480 on CUDA, 0 on a CPU."""

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: value {self.device!r} is not one of auto, cpu, cuda")
        if self.batch_seconds is not None and not self.batch_seconds >= 0:
            raise ConfigError(f"batch_seconds: value {self.batch_seconds!r} must be >= 0 (0 = one chunk at a time)")
        if self.workers < 0:
            raise ConfigError(f"workers: value {self.workers!r} must be >= 0 (0 = one per core)")
        if self.hubert_path == "":
            raise ConfigError("hubert_path: value '' names no directory; leave it null to use the tokenizer's")


@dataclass(frozen=True)
class TextUnitsConfig:
    alphabet: Literal["chars", "subwords", "phonemes"] = "chars"
    """`chars`: lowercase letters, space, apostrophe; `subwords`: BPE pieces of that text (like text
    LMs' tokens); `phonemes`: espeak-ng IPA phonemes."""
    subword_vocab: int = 1000
    """subwords only: BPE pieces learned on the train split (letters included)."""
    seed: int = 0
    """subwords only: seed of SentencePiece's trainer."""
    punctuation: bool = False
    """chars only: keep . , ! ? " as symbols (off: they become spaces, as speech has no marks)."""
    word_boundaries: bool = False
    """phonemes only: a space symbol between words (off, as in the de-risking phoneme topline)."""
    voice: str = "en-us"
    """phonemes only: the espeak-ng voice whose pronunciations are used."""


@dataclass(frozen=True)
class UnigramConfig:
    vocab_size: int = 5000
    """Number of sentencepiece pieces V (the paper used 5000); encoded ids are 0..V-1,
    then EOS = V and PAD = V+1. Must exceed the number of source units + 1 (<unk>)."""
    train_split: str = "train"
    """Split of the units dir the model is trained on."""
    max_piece_length: int = 16
    """Longest piece, in units (sentencepiece's max_sentencepiece_length)."""
    seed_pieces: int = 1_000_000
    """Candidate pieces taken from the suffix array before EM pruning (seed_sentencepiece_size)."""
    threads: int = 1
    """Trainer threads; 1 keeps training bit-for-bit reproducible (EM sums in a fixed order)."""
    seed: int = 0
    """Seed of sentencepiece's random generator."""

    def __post_init__(self) -> None:
        if self.max_piece_length < 1 or self.threads < 1:
            raise ConfigError("max_piece_length and threads must be at least 1")


@dataclass(frozen=True)
class PackedImportConfig:
    """How `slmscale units import-packed` splits the paper pipeline's packed units into a units dir."""
    valid_fraction: float = 0.01
    """Fraction of the utterances in the valid split, chosen by a hash of each id (the same ids whatever
    the shard order); unused when id lists are given."""
    test_fraction: float = 0.01
    """Fraction in the test split (the paper's random 1% where a corpus has no official test part)."""
    valid_ids: str = ""
    """A file of ids, one a line, that make the valid split; with valid_ids or test_ids the splits follow
    the lists (every other id is train) and the fractions are not used. `--valid-ids`."""
    test_ids: str = ""
    """A file of ids that make the test split (see valid_ids). `--test-ids`."""
    tokenizer: str = ""
    """A tokenizer dir of the same units (`tokenizer import-kmeans` of the quantizer the shards name), recorded
    so that eval and generate can tokenize audio for runs on these units; "" = none (training and the test
    loss need none). `--tokenizer`."""

    def __post_init__(self) -> None:
        for key in ("valid_fraction", "test_fraction"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key}: must lie in [0, 1), got {getattr(self, key)}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError(f"valid_fraction + test_fraction: {self.valid_fraction} + {self.test_fraction} "
                              "leave no train split")
