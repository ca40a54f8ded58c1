"""Train the NumPy reference LeNet-5 on the embedded digits: every layer, gradient and update by hand.

The network, its backward pass, the softmax cross-entropy and the optimiser steps are plain
float64 NumPy in cnnlab/reference/ (no torch), written to be read beside the course notes. It
prints the loss and train/test accuracy after each epoch and the final test accuracy; the
defaults reach about 97% on the 360 test digits in 10 to 30 seconds on 2 CPU cores.

--optimizer picks one of sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam; --lr
defaults to a step size that works for it. --max-steps stops early, for a quick look.

examples:
  cnnlab reference-train                                   # Adam, 10 epochs
  cnnlab reference-train --optimizer momentum --lr 0.02 --epochs 10
  cnnlab reference-train --optimizer sgd --max-steps 100 --json > run.json
"""

from __future__ import annotations

VERB = "reference-train"
HELP = "train the NumPy reference LeNet-5 (hand-written layers and backprop) on the embedded digits"


def add_arguments(parser) -> None:
    from cnnlab.reference.train import DEFAULT_LR, ReferenceTrainConfig

    d = ReferenceTrainConfig()
    parser.add_argument("--epochs", type=int, default=d.epochs,
                        help=f"passes over the training set (default {d.epochs})")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default depends on the optimizer: "
                        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"minibatch size (default {d.batch_size})")
    parser.add_argument("--optimizer", default=d.optimizer,
                        help=f"update rule: {', '.join(DEFAULT_LR)} (default {d.optimizer})")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed for the weights and batch order (default 0)")
    parser.add_argument("--schedule", choices=["cosine", "constant"], default=d.schedule,
                        help="learning-rate schedule: cosine decay to 0 over the run, or constant (default cosine)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many updates")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads during training (default 1: the matrices are small, and "
                        "extra BLAS threads only contend on a busy machine)")
    parser.add_argument("--json", action="store_true", help="print the run report as JSON instead of text")


def run(args) -> int:
    import contextlib
    import json

    from cnnlab.errors import ConfigError
    from cnnlab.reference.train import ReferenceTrainConfig, fit_lenet

    cfg = ReferenceTrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                               optimizer=args.optimizer, seed=args.seed, schedule=args.schedule,
                               max_steps=args.max_steps)
    if args.blas_threads < 1:
        raise ConfigError(f"--blas-threads must be >= 1; got {args.blas_threads}.")
    try:
        from threadpoolctl import threadpool_limits    # ships with scikit-learn

        limit = threadpool_limits(limits=args.blas_threads, user_api="blas")
    except ImportError:
        limit = contextlib.nullcontext()

    def show(rec):
        print(f"epoch {rec['epoch']:>2}/{cfg.epochs}  loss {rec['loss']:.4f}  "
              f"train {100 * rec['train_accuracy']:5.1f}%  test {100 * rec['test_accuracy']:5.1f}%  "
              f"{rec['seconds']:.1f} s", flush=True)

    if not args.json:
        print(f"NumPy LeNet-5, {cfg.optimizer} lr {cfg.resolved_lr:g} ({cfg.schedule}), "
              f"batch {cfg.batch_size}, seed {cfg.seed}", flush=True)
    with limit:
        _, report = fit_lenet(cfg, on_epoch_end=None if args.json else show)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"final test accuracy: {100 * report['test_accuracy']:.1f}% on {report['n_test']} digits "
              f"({report['params']:,} parameters, {report['steps']} steps, {report['seconds']:.1f} s)")
    return 0
