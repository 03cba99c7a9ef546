"""Resource budgets of one load, and a file reader that enforces the byte budget before each read."""
import dataclasses

from .errors import Refusal

#: defaults: far above any real clustering model (a KMeans pickle holds about 100 objects; a 100 000 x 1000
#: float64 KernelKMeans is 800 MB), far below what would stall or exhaust a service
DEFAULT_MAX_FILE_BYTES = 1 << 30
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_MAX_OBJECTS = 1_000_000
DEFAULT_MAX_DEPTH = 1000


def _size(n):
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= scale:
            return f'{n / scale:.3g} {unit}'
    return f'{n} bytes'


@dataclasses.dataclass
class Budget:
    """What one load may consume; each limit has a keyword of :func:`~exporters.loading.load_model`.

    Attributes
    ----------
    max_file_bytes : int
        Size of the file on disk.
    max_bytes : int
        Bytes the load may read or allocate: decompressed stream bytes, array data (counted from the
        declared shapes before allocation), zip members of ``.skops`` and ``.pt`` files.
    max_objects : int
        Pickle opcodes executed, memo entries, and objects of the loaded graph counted as a tree (so that
        shared references cannot stand for more objects than this).
    max_depth : int
        Nesting depth of the pickle's mark stack and of the loaded graph.
    """
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_bytes: int = DEFAULT_MAX_BYTES
    max_objects: int = DEFAULT_MAX_OBJECTS
    max_depth: int = DEFAULT_MAX_DEPTH
    used_bytes: int = 0

    def spend(self, n, what):
        """Count ``n`` bytes about to be read or allocated for ``what``; refuse past ``max_bytes``."""
        if n < 0:
            raise Refusal(f'it declares a negative size for {what}', 'which no model holds', 'negative size')
        if self.used_bytes + n > self.max_bytes:
            raise Refusal(f'it asks for {_size(self.used_bytes + n)} ({what})',
                          f'more than the memory budget of {_size(self.max_bytes)} (max_bytes)',
                          'memory budget')
        self.used_bytes += n

    def objects(self, n, what='objects'):
        """Refuse when ``n`` objects exceed ``max_objects``."""
        if n > self.max_objects:
            raise Refusal(f'it holds more than {self.max_objects} {what}',
                          'more than the object budget (max_objects)', 'object budget')

    def depth(self, n, what='nesting'):
        """Refuse when a depth ``n`` exceeds ``max_depth``."""
        if n > self.max_depth:
            raise Refusal(f'its {what} is deeper than {self.max_depth} levels',
                          'deeper than the depth budget (max_depth)', 'depth budget')


class BudgetedReader:
    """A read-only file wrapper counting every byte against a :class:`Budget` *before* reading it.

    Decompressing readers (zlib, gzip, ...) allocate what ``read(n)`` asks for, so ``n`` is checked first.
    """
    def __init__(self, raw, budget, what='the decompressed stream', size=None):
        self.raw, self.budget, self.what, self.left = raw, budget, what, size

    def read(self, n=-1):
        if n is None or n < 0:
            raise Refusal('it asks to read an unbounded amount', 'which the loader never does', 'unbounded read')
        if self.left is not None:  # a plain file: a read past its end is a truncated file, not a bomb
            n = min(n, self.left)
            self.left -= n
        self.budget.spend(n, self.what)
        data = self.raw.read(n)
        self.budget.used_bytes -= n - len(data)
        return data

    def readinto(self, buffer):
        view = memoryview(buffer).cast('B')
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def readline(self, size=-1):
        # text opcodes of protocols 0-1 (protocol 0 spells array data as one text line): read at most
        # what the budget has left, so that a stream without newlines cannot be read whole
        left = self.budget.max_bytes - self.budget.used_bytes
        limit = left + 1 if size is None or size < 0 else min(size, left + 1)
        line = self.raw.readline(limit)
        self.budget.spend(len(line), self.what)
        return line

    def peek(self, n=1):
        return self.raw.peek(n) if hasattr(self.raw, 'peek') else b''
