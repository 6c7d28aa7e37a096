#!/usr/bin/env python3
"""tb-devcluster takes SIGUSR1 (view change) and SIGUSR2 (pause) as soon as it has printed its
"listening on" line: harnesses signal it right away, and a signal that arrives before the
handlers are installed would end the process (the default action). Repeated, because the
window is short.

usage: devcluster_signals.py --devcluster=B
"""
import argparse
import signal
import sys

import harness

ROUNDS = 20


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devcluster", required=True)
    args = parser.parse_args()
    died = []
    for number in range(ROUNDS):
        cluster, _ = harness.start_devcluster(args.devcluster, flags=["--replica-count=3"])
        cluster.send(signal.SIGUSR1 if number % 2 == 0 else signal.SIGUSR2)
        cluster.send(signal.SIGUSR1)
        # SIGTERM comes after the others, so an exit code of 0 shows they were all handled.
        code = cluster.stop(signal.SIGTERM)
        if code != 0:
            died.append((number, code))
    if died:
        print("devcluster_signals FAILED: rounds ended by a signal (round, exit code): %s"
              % died)
        return 1
    print("devcluster_signals passed: %d rounds" % ROUNDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
