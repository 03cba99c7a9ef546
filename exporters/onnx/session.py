"""onnxruntime sessions for exported graphs, on the CPU or CUDA execution provider."""
import os

from .contract import ProviderUnavailableError

__all__ = ['PROVIDERS', 'check_provider', 'make_session']

PROVIDERS = {'cpu': 'CPUExecutionProvider', 'cuda': 'CUDAExecutionProvider'}


def check_provider(execution_provider):
    """The onnxruntime provider list for ``'cpu'`` or ``'cuda'``.

    Raises
    ------
    ValueError
        For another name.
    ProviderUnavailableError
        If this onnxruntime does not offer the provider.
    """
    name = str(execution_provider).lower()
    if name not in PROVIDERS:
        raise ValueError(f'execution_provider must be one of {", ".join(PROVIDERS)}, got {execution_provider!r}.')
    import onnxruntime

    provider = PROVIDERS[name]
    available = onnxruntime.get_available_providers()
    if provider not in available:
        raise ProviderUnavailableError(
            f'the {name.upper()} execution provider was requested, but this onnxruntime {onnxruntime.__version__} '
            f'offers only {", ".join(available)}. For CUDA install the onnxruntime-gpu package that matches your '
            f'CUDA version (in place of onnxruntime); or use the CPU provider (--provider cpu).')
    # CPU stays as the fallback for any node the GPU provider does not implement
    return [provider] if provider == 'CPUExecutionProvider' else [provider, 'CPUExecutionProvider']


def make_session(model, execution_provider='cpu', threads=None):
    """An onnxruntime session for an exported graph.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The graph (a file path, serialized bytes or the proto).
    execution_provider : {'cpu', 'cuda'}
        ``'cuda'`` needs the onnxruntime-gpu package and a working CUDA setup; CPU covers the nodes the
        GPU provider lacks.
    threads : int, optional
        Intra-op threads (default: onnxruntime's choice, one per physical core).

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    ProviderUnavailableError
        If the provider is not available, or onnxruntime could not start it.
    """
    import onnxruntime

    providers = check_provider(execution_provider)
    if hasattr(model, 'SerializeToString'):
        model = model.SerializeToString()
    elif not isinstance(model, bytes):
        model = os.fspath(model)
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    session = onnxruntime.InferenceSession(model, options, providers=providers)
    if providers[0] not in session.get_providers():
        # onnxruntime falls back to the CPU silently when CUDA libraries or the driver are missing
        raise ProviderUnavailableError(
            f'onnxruntime could not start the {providers[0]} (it fell back to {", ".join(session.get_providers())}); '
            'check the CUDA driver and libraries onnxruntime-gpu needs.')
    return session
