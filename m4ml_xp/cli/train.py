"""``m4ml-xp train``: an MLP classifier trained on MNIST by hand-written backpropagation."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from m4ml_xp import backends
from m4ml_xp.cli.options import (
    CLIError,
    add_backend_arguments,
    int_list,
    positive_float,
    positive_int,
    resolve,
)


def add_parser(commands: Any) -> None:
    """Add ``train`` to the sub-commands."""
    train = commands.add_parser("train", help="train an MLP classifier on MNIST by backprop")
    train.add_argument(
        "--data", help="MNIST directory (default $M4ML_XP_DATA, else the embedded sample)"
    )
    train.add_argument("--kind", default="test", choices=["test", "train"], help="which file set")
    train.add_argument(
        "--n-train", type=positive_int, help="train on the first N images (default: 8000, at most "
        "what --n-test leaves)",
    )  # fmt: skip
    train.add_argument(
        "--n-test",
        type=positive_int,
        help="test on the last N images (default: 2000, at most a fifth)",
    )
    train.add_argument(
        "--hidden", type=int_list, default=[128], help="hidden layer sizes, e.g. 128 or 256,64"
    )
    train.add_argument(
        "--activation", default="relu", choices=["relu", "tanh", "sigmoid"], help="hidden layers"
    )
    train.add_argument(
        "--optimizer", default="adam", choices=["adam", "sgd", "momentum"], help="update rule"
    )
    train.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    train.add_argument("--epochs", type=positive_int, default=10, help="passes over the data")
    train.add_argument("--batch-size", type=positive_int, default=100, help="images per step")
    train.add_argument(
        "--seed", type=int, default=0, help="initial weights and batch order (a NumPy Generator)"
    )
    add_backend_arguments(train, job="train")
    train.add_argument(
        "--dtype", default="float32", choices=["float32", "float64"], help="working dtype"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train the MLP by hand-written backpropagation and report its losses."""
    from m4ml_xp.datasets import load_mnist
    from m4ml_xp.nn import init_mlp, mlp_forward, train_mlp
    from m4ml_xp.optimize import adam, momentum, sgd

    label, xp, device = resolve(args.backend, args.device, "train")
    location = args.data or os.environ.get("M4ML_XP_DATA")  # None: the embedded sample
    dtype = getattr(xp, args.dtype)
    try:
        images, labels = load_mnist(location, kind=args.kind, xp=xp, device=device, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    n = images.shape[0]
    if location is None:
        location = f"the embedded sample ({n:,} images; --data for the full set)"
    n_test = args.n_test if args.n_test is not None else min(2000, n // 5)
    n_train = args.n_train if args.n_train is not None else min(8000, n - n_test)
    if n_train + n_test > n:
        raise CLIError(f"--n-train {n_train} + --n-test {n_test} > {n} images in {location}")
    args.n_train, args.n_test = n_train, n_test
    X_train, y_train = images[: args.n_train, :], labels[: args.n_train]
    X_test, y_test = images[n - args.n_test :, :], labels[n - args.n_test :]
    sizes = [images.shape[1], *args.hidden, 10]
    optimizer = {"sgd": sgd, "momentum": momentum, "adam": adam}[args.optimizer](args.lr)
    init = "he" if args.activation == "relu" else "glorot"
    params = init_mlp(sizes, seed=args.seed, xp=xp, device=device, dtype=dtype, init=init)
    print(
        f"MNIST {args.kind} from {location}: training on the first {args.n_train:,}, testing on the "
        f"last {args.n_test:,}; network {'-'.join(map(str, sizes))} ({args.activation}, softmax), "
        f"{args.optimizer}(lr={args.lr:g}), batch {args.batch_size}, {args.epochs} epochs, "
        f"backend {label}, {args.dtype}"
    )
    options = {"activation": args.activation, "output": "softmax"}
    start = time.perf_counter()
    result = train_mlp(
        params,
        X_train,
        y_train,
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        loss="cross_entropy",
        validation=(X_test, y_test),
        progress=not args.quiet,
        **options,
    )
    seconds = time.perf_counter() - start
    for epoch, (loss, val) in enumerate(zip(result.losses, result.val_losses, strict=True), 1):
        print(f"  epoch {epoch:>3}: training loss {loss:.4f}, test loss {val:.4f}")
    scores = backends.to_numpy(mlp_forward(result.params, X_test, **options)[-1])
    accuracy = float(np.mean(scores.argmax(axis=1) == backends.to_numpy(y_test)))
    print(
        f"{result.message} ({result.n_epochs} epochs) in {seconds:.2f} s "
        f"({seconds / max(result.n_epochs, 1):.2f} s/epoch); test accuracy {accuracy:.2%}"
    )
    return 0 if result.status != 2 else 1  # 2: diverged
