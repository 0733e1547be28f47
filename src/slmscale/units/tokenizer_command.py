"""`slmscale tokenizer train CORPUS --out TOK` and `slmscale tokenizer import-kmeans FILE --out TOK`.

Both spell the feature spec the same way: the flags below or `features.<key>=value` overrides.
"""

from __future__ import annotations

import argparse


def _feature_flags(parser: argparse.ArgumentParser, cmvn_default: str) -> None:
    parser.add_argument("--features", choices=("mfcc", "logmel", "hubert"), help="feature kind (features.kind)")
    parser.add_argument("--hubert-path", metavar="DIR", help="local HuBERT/mHuBERT dir (features.hubert_path)")
    parser.add_argument("--layer", type=int, metavar="L", help="HuBERT layer (features.layer)")
    parser.add_argument("--frame-rate", type=int, metavar="HZ",
                        help="unit frames per second: 100, 50, 25 or 0 = the features' native rate, the "
                             "default (features.frame_rate)")
    parser.add_argument("--cmvn", action=argparse.BooleanOptionalAction, default=None,
                        help=f"per-utterance mean/variance normalisation of the features (features.cmvn; "
                             f"default {cmvn_default})")


FEATURE_FLAGS = {"features": "features.kind", "hubert_path": "features.hubert_path", "layer": "features.layer",
                 "frame_rate": "features.frame_rate", "cmvn": "features.cmvn"}


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import IntermixedParser, add_config_arguments
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    train = sub.add_parser("train", help="fit k-means units on the train split of a corpus",
                           description="Fit k-means on a seeded random sample of the train split's feature "
                                       "frames; writes TOK/tokenizer.json, centroids.safetensors, config.yaml.")
    train.add_argument("corpus", nargs="?", metavar="CORPUS", help="corpus dir (manifest.jsonl)")
    train.add_argument("--out", metavar="TOK", help="output tokenizer dir")
    _feature_flags(train, "on")
    train.add_argument("--k", type=int, metavar="K", help="number of units (k)")
    train.add_argument("--workers", type=int, metavar="N", help="feature-extraction processes (0 = one per core)")
    add_config_arguments(train)
    imp = sub.add_parser("import-kmeans", help="import k-means centroids (.npy, .safetensors, or a "
                                               "textlesslib/fairseq pickle) as a tokenizer dir",
                         description="Import centroids fitted elsewhere as a tokenizer dir, with the feature "
                                     "spec they were fitted on (tokenize computes exactly those features). "
                                     "FILE is a .npy [k, dim] array, a .safetensors file (tensor "
                                     "\"centroids\"), or a joblib-pickled scikit-learn KMeans such as TWIST's "
                                     "..._L11_km500.bin, which needs --trust-pickle: unpickling runs arbitrary "
                                     "code from the file. CMVN is off unless --cmvn: released quantizers were "
                                     "fitted on raw features.")
    imp.add_argument("file", nargs="?", metavar="FILE", help="the centroids or the pickled k-means model")
    imp.add_argument("--out", metavar="TOK", help="output tokenizer dir")
    _feature_flags(imp, "off")
    imp.add_argument("--trust-pickle", action="store_true",
                     help="I trust this file: allow unpickling it (it can run arbitrary code)")
    imp.add_argument("--no-dedup", dest="dedup", action="store_const", const=False, default=None,
                     help="default tokenize to no dedup (dedup)")
    add_config_arguments(imp)


def _describe(tok) -> str:  # noqa: ANN001 - a Tokenizer
    cmvn = "CMVN" if tok.spec.cmvn else "no CMVN"
    layer = f" layer {tok.spec.layer}" if tok.spec.kind == "hubert" else ""
    return (f"tokenizer {tok.fingerprint}: {tok.spec.kind}{layer} {tok.spec.frame_rate} Hz, {cmvn}, k={tok.k}, "
            f"dim {tok.centroids.shape[1]}, vocab {tok.vocab_size} (eos {tok.eos_id}, pad {tok.pad_id})")


def feature_overrides(overrides: list[str]) -> list[str]:
    """Bare feature keys as `features.<key>`: `frame_rate=50` (the old import-kmeans spelling) and
    `features.frame_rate=50` mean the same for train and import-kmeans (no other key shares a name)."""
    from dataclasses import fields

    from slmscale.units.features import FeatureSpec
    names = {f.name for f in fields(FeatureSpec)}
    return [f"features.{item.strip()}" if item.split("=", 1)[0].strip() in names else item for item in overrides]


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError

    if args.action == "train":
        from slmscale.units.config import TokenizerConfig
        from slmscale.units.tokenizer import train_tokenizer
        if args.show_config:
            return show_config(TokenizerConfig)
        if args.corpus is None or args.out is None:
            raise StageError("give CORPUS and --out TOK (see slmscale tokenizer train --help)")
        args.overrides = feature_overrides(args.overrides)
        config = build_config(TokenizerConfig, args, {**FEATURE_FLAGS, "k": "k", "workers": "workers"})
        print(_describe(train_tokenizer(args.corpus, args.out, config)))
        return 0
    from slmscale.units.config import ImportConfig
    from slmscale.units.pickle_import import import_kmeans
    if args.show_config:
        return show_config(ImportConfig)
    if args.file is None or args.out is None:
        raise StageError("give FILE and --out TOK (see slmscale tokenizer import-kmeans --help)")
    args.overrides = feature_overrides(args.overrides)
    config = build_config(ImportConfig, args, {**FEATURE_FLAGS, "dedup": "dedup"})
    print(_describe(import_kmeans(args.file, args.out, config, trust_pickle=args.trust_pickle)))
    return 0
