"""`slmscale generate RUN --prompt WAV --seconds S --out WAV [--vocoder VOC] [sampling flags]`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The output is 16 kHz mono, exactly S seconds: the prompt's own samples (converted to 16 kHz mono) "
        "followed by the vocoded continuation; without --prompt, S seconds generated from scratch. Without "
        "--vocoder, the mean-mel vocoder of the run's tokenizer is learned from the tokenizer's training corpus "
        "(seconds) and cached under $SLMSCALE_CACHE/vocoders/.")
    parser.add_argument("run", metavar="RUN", help="a completed run dir (from `slmscale train`)")
    parser.add_argument("--prompt", metavar="WAV", help="spoken prompt (any soundfile format, rate, channels)")
    parser.add_argument("--seconds", type=float, required=True, metavar="S", help="length of the output wav")
    parser.add_argument("--out", required=True, metavar="WAV", help="output wav file")
    parser.add_argument("--vocoder", metavar="VOC",
                        help="`slmscale vocoder train` dir, or a unit HiFi-GAN dir (config.json + g_XXXXXXXX)")
    parser.add_argument("--temperature", type=float, default=1.0, metavar="T", help="0 = greedy (default 1)")
    parser.add_argument("--top-k", type=int, metavar="K", help="sample among the K most likely tokens")
    parser.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling threshold")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="sampling seed (default 0)")
    parser.add_argument("--units-out", metavar="FILE",
                        help="also write the prompt and generated units, durations and tokens as JSON")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the LM runs")


def run(args: argparse.Namespace) -> int:
    from slmscale.lm.generate import SamplingConfig
    from slmscale.vocoder.speech_continuation import generate_speech

    sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    summary = generate_speech(args.run, args.out, args.seconds, args.prompt, args.vocoder, sampling,
                              args.units_out, device=args.device)
    print(f"{args.out}: {summary['seconds']:.2f} s at {summary['sample_rate']} Hz = "
          f"{summary['prompt_seconds']:.2f} s of prompt ({len(summary['prompt_units'])} units) + "
          f"{len(summary['units'])} generated units vocoded by {summary['vocoder']}")
    return 0
