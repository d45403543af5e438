"""The tools around the course: the ``scratchvae`` command, data, the training loop, figures, the benchmark.

``cli`` (the command), ``data``, ``download`` and ``http_get`` (MNIST, verified by checksum),
``train`` (fit: epochs, progress, checkpoints, resume), ``history`` (the record of
the epochs), ``evaluation`` (the test set's ELBO and log-likelihood), ``plots`` and
``plot_maths`` (the figures), ``gradcheck_report`` (``scratchvae gradcheck``),
``bench``, ``bench_contenders``, ``bench_machine`` and ``bench_torch``
(``scratchvae bench``).
"""
