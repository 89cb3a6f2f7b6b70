"""Feeds random and mutated argdata buffers to the runner's decoder.

Usage: fuzz_argdata.py COUNT SEED < seeds (one valid buffer per line, in hex)
Prints one JSON line: counts, the slowest buffer, and every failure (an exception other than
ArgdataError, or a decode slower than a second). Seeded, so a failure can be replayed.
"""

import json
import os
import random
import sys
import time

import importlib.util

_spec = importlib.util.spec_from_file_location('sockvisor_runner', os.environ['SOCKVISOR_RUNNER'])
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(6)
        if choice == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1 and data:
            del data[rng.randrange(len(data)):]
        elif choice == 2:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        elif choice == 3 and data:
            del data[rng.randrange(len(data))]
        elif choice == 4 and data:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        else:
            i = rng.randrange(len(data) + 1)
            data[i:i] = data[:rng.randrange(len(data) + 1)]
    return bytes(data)


def main():
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    seeds = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
    rng = random.Random(seed)
    stats = {'total': 0, 'decoded': 0, 'rejected': 0, 'failures': [], 'slowest_ms': 0.0}
    for i in range(count):
        if i % 4 == 0 or not seeds:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            data = mutate(rng, rng.choice(seeds))
        started = time.perf_counter()
        try:
            runner.decode_argdata(data)
            stats['decoded'] += 1
        except runner.ArgdataError:
            stats['rejected'] += 1
        except BaseException as e:  # any other exception is what the fuzzer is looking for
            stats['failures'].append({'input': data.hex(), 'error': '%s: %s' % (type(e).__name__, e)})
        elapsed = (time.perf_counter() - started) * 1000
        stats['slowest_ms'] = max(stats['slowest_ms'], elapsed)
        if elapsed > 1000:
            stats['failures'].append({'input': data.hex(), 'error': 'took %.0f ms' % elapsed})
        stats['total'] += 1
    print(json.dumps(stats))


if __name__ == '__main__':
    main()
