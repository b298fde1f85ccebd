"""Example competitor that crashes part-way: prints some progress, then dies with a traceback."""

import argparse
import sys


def train(steps_before_crash: int) -> None:
    for step in range(steps_before_crash):
        print(f"step {step}: loss {2.0 / (step + 1):.3f}", flush=True)
    raise RuntimeError(f"crasher example: deliberate failure after step {steps_before_crash}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    args, _unknown = parser.parse_known_args()
    print(f"crasher writing to {args.output_dir} (it never will)", file=sys.stderr, flush=True)
    train(3)
