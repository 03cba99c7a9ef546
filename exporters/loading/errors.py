"""The loader's errors and the one-line refusal messages every format shares."""
import pickle

#: how the override is spelled in messages (the command-line flag; ``trust_pickle=True`` in Python)
TRUST_FLAG = '--trust-pickle'


class ModelFileError(ValueError):
    """A model file that cannot be read: missing, unreadable, corrupt, of an unknown kind, or not a model."""


class UnsafePickleError(pickle.UnpicklingError):
    """A file refused because of what it holds or asks for; nothing it names was called.

    Raised for every format (pickle, joblib, skops, torch): a name outside the allow-list, a constructor
    called with arguments no supported model produces, a budget exceeded, or an estimator whose fitted
    state is not what its family reads.

    Attributes
    ----------
    refused : str
        What was refused: a full name (``module.qualname``) or a short description.
    """
    def __init__(self, message, refused):
        super().__init__(message)
        self.refused = refused


def _override(kind):
    if kind == 'skops':
        return (f'If you made this file yourself and trust it, pass {TRUST_FLAG} (trust_pickle=True in Python) '
                'to trust every type it names.')
    return f'If you made this file yourself and trust it, pass {TRUST_FLAG} (trust_pickle=True in Python).'


def refuse(source, what, why, refused, kind='pickle'):
    """The one-line error for a refused file.

    Parameters
    ----------
    source : str
        The file, as the user named it.
    what : str
        What was found (``'it references posix.system'``).
    why : str
        Why that is refused.
    refused : str
        The short name stored on the error.
    kind : {'pickle', 'skops', 'torch'}
        The file format, for the wording of the override.
    """
    message = f'refused to load {source}: {what}, {why}. {_override(kind)}'
    return UnsafePickleError(' '.join(message.split()), refused=refused)


class Refusal(Exception):
    """Raised deep inside a reader, where the file's name is not known; turned into an UnsafePickleError.

    Parameters
    ----------
    what, why, refused : str
        As for :func:`refuse`.
    """
    def __init__(self, what, why, refused):
        super().__init__(what)
        self.what, self.why, self.refused = what, why, refused

    def error(self, source, kind):
        return refuse(source, self.what, self.why, self.refused, kind)
