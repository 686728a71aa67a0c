"""``tinct gradcheck``: verify the NumPy network's backpropagation and the XOR test.

Prints one line per checked parameter array (ratio ||G_num - G_bp|| / ||G_num + G_bp||),
then the XOR results for [2, 2, 1] and [2, 3, 1]; exits 1 if any ratio is >= 1e-10 or an
XOR network does not reach an error below 1e-6, else 0.
"""

from __future__ import annotations

import argparse
import time


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "gradcheck",
        help="check the NumPy network's gradients and the XOR test",
        description=(
            "Compare backpropagation with central finite differences (float64) for every "
            "activation / output / loss / L2 combination of tinct.numpynet, then train [2, 2, 1] and "
            "[2, 3, 1] sigmoid networks on XOR. Exit code 1 if anything fails."
        ),
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the gradient-check networks and data (default: %(default)s)")
    p.add_argument("--xor-seed", type=int, default=0, help="first initialisation seed for XOR (default: %(default)s)")
    p.add_argument(
        "--xor-max-iters", type=int, default=10_000, help="Adam iterations per XOR attempt (default: %(default)s)"
    )
    p.add_argument("--skip-xor", action="store_true", help="only run the gradient check")
    p.add_argument("--failures-only", action="store_true", help="print only failing parameters and the summary")
    p.set_defaults(func=run)


def _print_gradient_check(seed: int, failures_only: bool) -> bool:
    from tinct.numpynet.gradients import DEFAULT_ORDER, DEFAULT_STEP, RATIO_THRESHOLD, check_all_configurations

    started = time.perf_counter()
    results = check_all_configurations(seed=seed)
    elapsed = time.perf_counter() - started
    failures = [result for result in results if not result.passed]
    for result in results:
        if failures_only and result.passed:
            continue
        status = "ok  " if result.passed else "FAIL"
        print(f"{status} {result.ratio:9.2e}  {result.configuration}  {result.parameter}")
    worst = max(results, key=lambda result: result.ratio)
    configurations = len({result.configuration for result in results})
    print(
        f"gradient check: {len(results) - len(failures)}/{len(results)} parameter arrays below "
        f"{RATIO_THRESHOLD:g} over {configurations} configurations (central differences, order "
        f"{DEFAULT_ORDER}, h={DEFAULT_STEP:g}); worst {worst.ratio:.2e} ({worst.configuration}, "
        f"{worst.parameter}); {elapsed:.1f} s"
    )
    return not failures


def _print_xor(seed: int, max_iters: int) -> bool:
    from tinct.numpynet.xor import TARGET_ERROR, run_xor

    all_converged = True
    for hidden in (2, 3):
        started = time.perf_counter()
        run = run_xor(hidden, seed=seed, max_iters=max_iters)
        elapsed = time.perf_counter() - started
        architecture = list(run.layer_sizes)
        failed_seeds = [attempt.seed for attempt in run.attempts if not attempt.converged]
        restarts = f"; seeds {failed_seeds} did not converge" if failed_seeds else ""
        if run.converged:
            print(
                f"ok   XOR {architecture}: error {run.final_error:.3e} < {TARGET_ERROR:g} after "
                f"{run.iterations} iterations (seed {run.seed}{restarts}); {elapsed:.1f} s"
            )
        else:
            print(
                f"FAIL XOR {architecture}: error {run.final_error:.3e} >= {TARGET_ERROR:g} after "
                f"{len(run.attempts)} attempts of {max_iters} iterations{restarts}; {elapsed:.1f} s"
            )
        all_converged = all_converged and run.converged
    return all_converged


def run(args: argparse.Namespace) -> int:
    if args.xor_max_iters < 1:
        from tinct.errors import TinctError

        raise TinctError(f"--xor-max-iters must be >= 1, got {args.xor_max_iters}")
    gradients_ok = _print_gradient_check(args.seed, args.failures_only)
    xor_ok = True if args.skip_xor else _print_xor(args.xor_seed, args.xor_max_iters)
    return 0 if gradients_ok and xor_ok else 1
