"""Flags shared by several verbs (not a verb itself: main.py skips this module)."""

from __future__ import annotations

import argparse


def add_model_data_arguments(parser: argparse.ArgumentParser, model_default: str | None = "lenet5",
                             model_help: str | None = None) -> None:
    """--model, --data and --image-size, for the verbs that build a zoo model on a data set."""
    a = parser.add_argument
    a("--model", default=model_default,
      help=model_help or f"zoo model name (default {model_default})")
    a("--data", metavar="PATH",
      help="image folder or .tar/.tar.gz/.zip archive (default: the embedded digits)")
    a("--image-size", type=int, help="input side in pixels (default: the model's)")


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --no-fast, for the verbs that run a trained model (predict, evaluate)."""
    a = parser.add_argument
    a("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    a("--no-fast", dest="fast", action="store_false",
      help="run the plain eval-mode model, not its fast copy (BatchNorm folded into the convs, "
      "channels_last, bf16 where native; in fp32 the logits agree to ~1e-5)")
