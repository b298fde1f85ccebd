"""Example competitor that ignores its budget and SIGTERM: it loops until SIGKILL."""

import signal
import time


def ignore_sigterm(signum: int, _frame: object) -> None:
    print(f"overtime: got signal {signum}, ignoring it", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, ignore_sigterm)
    step = 0
    while True:
        print(f"overtime: still training, step {step}", flush=True)
        step += 1
        time.sleep(0.2)
