"""`slmscale tokenizer train CORPUS --out TOK` and `slmscale tokenizer import-kmeans FILE --out TOK`."""

from __future__ import annotations

import argparse


def _feature_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", choices=("mfcc", "logmel", "hubert"), help="feature kind (features.kind)")
    parser.add_argument("--hubert-path", metavar="DIR", help="local HuBERT/mHuBERT dir (features.hubert_path)")
    parser.add_argument("--layer", type=int, metavar="L", help="HuBERT layer (features.layer)")


FEATURE_FLAGS = {"features": "features.kind", "hubert_path": "features.hubert_path", "layer": "features.layer"}


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import IntermixedParser, add_config_arguments
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    train = sub.add_parser("train", help="fit k-means units on the train split of a corpus",
                           description="Fit k-means on a seeded random sample of the train split's feature "
                                       "frames; writes TOK/tokenizer.json, centroids.safetensors, config.yaml.")
    train.add_argument("corpus", nargs="?", metavar="CORPUS", help="corpus dir (manifest.jsonl)")
    train.add_argument("--out", metavar="TOK", help="output tokenizer dir")
    _feature_flags(train)
    train.add_argument("--k", type=int, metavar="K", help="number of units (k)")
    train.add_argument("--workers", type=int, metavar="N", help="feature-extraction processes (0 = one per core)")
    add_config_arguments(train)
    imp = sub.add_parser("import-kmeans", help="convert a textlesslib/fairseq k-means pickle into a tokenizer dir",
                         description="Convert a joblib-pickled scikit-learn KMeans (e.g. TWIST's "
                                     "..._L11_km500.bin) into a tokenizer dir. Needs --trust-pickle: "
                                     "unpickling runs arbitrary code from the file.")
    imp.add_argument("file", metavar="FILE", help="the pickled k-means model")
    imp.add_argument("--out", required=True, metavar="TOK", help="output tokenizer dir")
    _feature_flags(imp)
    imp.add_argument("--trust-pickle", action="store_true",
                     help="I trust this file: allow unpickling it (it can run arbitrary code)")
    imp.add_argument("--no-dedup", dest="dedup", action="store_false", help="default tokenize to no dedup")
    imp.add_argument("overrides", nargs="*", metavar="key=value", help="feature spec overrides, e.g. chunk_seconds=20")


def _describe(tok) -> str:  # noqa: ANN001 - a Tokenizer
    return (f"tokenizer {tok.fingerprint}: {tok.spec.kind} {tok.spec.frame_rate} Hz, k={tok.k}, "
            f"dim {tok.centroids.shape[1]}, vocab {tok.vocab_size} (eos {tok.eos_id}, pad {tok.pad_id})")


def run(args: argparse.Namespace) -> int:
    from slmscale.config import load_config
    from slmscale.files import StageError

    if args.action == "train":
        from slmscale.cli import build_config, show_config
        from slmscale.units.tokenizer import TokenizerConfig, train_tokenizer
        if args.show_config:
            return show_config(TokenizerConfig)
        if args.corpus is None or args.out is None:
            raise StageError("give CORPUS and --out TOK (see slmscale tokenizer train --help)")
        config = build_config(TokenizerConfig, args, {**FEATURE_FLAGS, "k": "k", "workers": "workers"})
        print(_describe(train_tokenizer(args.corpus, args.out, config)))
        return 0
    from slmscale.units.features import FeatureSpec
    from slmscale.units.pickle_import import import_kmeans
    flags = [f"{key.split('.', 1)[1]}={getattr(args, dest)}" for dest, key in FEATURE_FLAGS.items()
             if getattr(args, dest) is not None]
    spec = load_config(FeatureSpec, None, flags + list(args.overrides))
    print(_describe(import_kmeans(args.file, args.out, spec, trust_pickle=args.trust_pickle, dedup=args.dedup)))
    return 0
