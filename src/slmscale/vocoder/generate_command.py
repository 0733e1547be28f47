"""`slmscale generate RUN --prompt WAV --seconds S --out WAV [--vocoder VOC] [sampling flags] [key=value ...]`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The output is 16 kHz mono, exactly S seconds: the prompt's own samples (converted to 16 kHz mono) "
        "followed by the vocoded continuation; without --prompt, S seconds generated from scratch. Without "
        "--vocoder, the mean-mel vocoder of the run's tokenizer is learned from the tokenizer's training corpus "
        "(seconds) and cached under $SLMSCALE_CACHE/vocoders/; a cached one serves even once that corpus is gone. "
        "Every argument is checked before the model loads or a vocoder is learned.")
    from slmscale.cli import add_config_arguments
    # RUN, --seconds and --out are not required by argparse, which would refuse `--show-config`
    # without them; run checks them.
    parser.add_argument("run", nargs="?", metavar="RUN", help="a completed run dir (from `slmscale train`)")
    parser.add_argument("--prompt", metavar="WAV", help="spoken prompt (any soundfile format, rate, channels)")
    parser.add_argument("--seconds", type=float, metavar="S", help="length of the output wav")
    parser.add_argument("--out", metavar="WAV", help="output wav file")
    parser.add_argument("--vocoder", metavar="VOC",
                        help="`slmscale vocoder train` dir, or a unit HiFi-GAN dir (config.json + g_XXXXXXXX)")
    # No argparse defaults: a flag left out must not override --config (SamplingConfig has the defaults).
    parser.add_argument("--temperature", type=float, metavar="T",
                        help="0 = greedy (config key temperature; default 1)")
    parser.add_argument("--top-k", type=int, metavar="K", help="sample among the K most likely tokens (top_k)")
    parser.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling threshold (top_p)")
    parser.add_argument("--seed", type=int, metavar="N", help="sampling seed (config key seed; default 0)")
    parser.add_argument("--units-out", metavar="FILE",
                        help="also write the prompt and generated units, durations and tokens as JSON")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the LM runs")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    from slmscale.lm.config import SamplingConfig
    from slmscale.vocoder.speech_continuation import generate_speech

    if args.show_config:
        return show_config(SamplingConfig)
    if args.run is None or args.seconds is None or args.out is None:
        raise StageError("give RUN, --seconds S and --out WAV (see slmscale generate --help)")
    sampling = build_config(SamplingConfig, args, {"temperature": "temperature", "top_k": "top_k",
                                                   "top_p": "top_p", "seed": "seed"})
    summary = generate_speech(args.run, args.out, args.seconds, args.prompt, args.vocoder, sampling,
                              args.units_out, device=args.device)
    print(f"{args.out}: {summary['seconds']:.2f} s at {summary['sample_rate']} Hz = "
          f"{summary['prompt_seconds']:.2f} s of prompt ({len(summary['prompt_units'])} units) + "
          f"{len(summary['units'])} generated units vocoded by {summary['vocoder']}")
    return 0
