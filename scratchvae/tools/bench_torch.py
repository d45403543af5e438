"""The PyTorch twin of the benchmark's standard model: scratchvae's contender in PyTorch.

The same model, loss, optimiser and minibatches as the ``scratchvae``
contender of scratchvae/tools/bench_contenders.py; scratchvae/tools/bench.py
times them side by side. PyTorch is
optional (``pip install torch``): it is imported only inside
these functions, and without it they return None, so importing this module
never needs it.
"""

import time

__all__ = ["pytorch_contender", "torch_version"]


def torch_version():
    """PyTorch's version string, or None when it is not installed.

    Examples
    --------
    >>> version = torch_version()
    >>> version is None or isinstance(version, str)
    True
    """
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def pytorch_contender(images, threads, standard, seed=0):
    """``epoch(start, stop) -> seconds``: the same model in PyTorch eager mode, over ``images[start:stop]``.

    None without torch.

    Written as a PyTorch user would: ``nn.Linear`` layers, ``torch.bernoulli``
    for the dynamic binarisation, ``torch.randn`` for eps,
    ``torch.optim.Adam`` with its defaults, the images as one preloaded tensor.

    Parameters
    ----------
    images : ndarray, shape (N, 784), float32
        Shared with the tensor, not copied.
    threads : int
        ``torch.set_num_threads``: the same number as NumPy's BLAS uses.
    standard : dict
        The model and batch sizes, :data:`scratchvae.tools.bench_contenders.STANDARD`.
    seed : int

    Returns
    -------
    callable or None

    Examples
    --------
    >>> import numpy as np
    >>> sizes = {"input_dim": 784, "hidden": 400, "latent_dim": 20, "batch_size": 128, "lr": 1e-3}
    >>> epoch = pytorch_contender(np.zeros((256, 784), dtype=np.float32), 1, sizes)
    >>> epoch is None or epoch(0, 128) > 0
    True
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    D, H, Z, B = (standard[k] for k in ("input_dim", "hidden", "latent_dim", "batch_size"))
    nn, F = torch.nn, torch.nn.functional
    encoder, head = nn.Linear(D, H), nn.Linear(H, 2 * Z)
    decoder, decoder_head = nn.Linear(Z, H), nn.Linear(H, D)
    layers = (encoder, head, decoder, decoder_head)
    optimizer = torch.optim.Adam([p for layer in layers for p in layer.parameters()],
                                 lr=standard["lr"])
    x_all = torch.from_numpy(images)  # (N, D)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(x, eps):
        # loss = (1/B) sum_b [ -log p(x_b | z_b) + KL(q(z | x_b) || N(0, I)) ]
        mu, log_var = head(torch.relu(encoder(x))).chunk(2, dim=1)  # (B, D_z) each
        z = mu + torch.exp(0.5 * log_var) * eps  # (B, D_z)
        logits = decoder_head(torch.relu(decoder(z)))  # (B, D)
        reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(1)  # (B,)
        return (reconstruction + kl).mean()

    def epoch(first, stop):
        start = time.perf_counter()
        for idx in (first + torch.randperm(stop - first, generator=generator)).split(B):
            x = torch.bernoulli(x_all[idx], generator=generator)  # (B, D), fresh 0/1 draw
            eps = torch.randn(len(idx), Z, generator=generator)  # (B, D_z)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(x, eps)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    return epoch
