"""Run ``python -m exporters.onnx FILE`` for many files under an address-space cap; print JSON results.

Usage: ``python capped.py LIMIT_BYTES TIMEOUT_S FILE...``. The interpreter imports the command line once,
then forks one child per file (a fresh process each, as ``python -m`` would give, without paying torch's
import every time); each child runs ``exporters.onnx.main([FILE])`` and exits with its status. The
parent reports, per file, the exit status or the signal, whether it timed out, its stderr, its time and
its peak resident memory.
"""
import json
import os
import resource
import signal
import sys
import time


def run(path, timeout):
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: stderr into the pipe, the command line's exit status as ours
        os.close(read)
        os.dup2(write, 2)
        sys.stderr = os.fdopen(2, 'w', buffering=1)
        from exporters.onnx import main
        status = main([path])
        sys.stderr.flush()
        os._exit(status)
    os.close(write)
    signal.alarm(timeout)
    try:
        _, status, usage = os.wait4(pid, 0)
        timed_out = False
    except InterruptedError:
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        timed_out = True
    signal.alarm(0)
    with os.fdopen(read) as pipe:
        stderr = pipe.read()
    return {'file': os.path.basename(path), 'exit': os.waitstatus_to_exitcode(status), 'timed_out': timed_out,
            'stderr': stderr, 'seconds': round(time.monotonic() - started, 3),
            'peak_mib': round(usage.ru_maxrss / 1024, 1)}


def main():
    limit, timeout, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(InterruptedError()))
    import exporters.onnx  # noqa: F401 -- imported once, before the children fork
    import exporters.loading
    from exporters.loading.pickle_files import pickle_names
    pickle_names()  # the registry, torch and every admitted module (sklearn's text, compose ...), before the fork
    print(json.dumps([run(path, timeout) for path in files]))


if __name__ == '__main__':
    main()
