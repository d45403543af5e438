"""The lecture: the VAE in plain NumPy, one formula per line. Read it in this order.

1. ``tiny_vae``         the whole VAE in sixty lines: one dense layer each way, its loss and its backward
2. ``dense``            the dense layer ``x @ W + b``, its three gradients; weight initialisation
3. ``activations``      ReLU, leaky ReLU, tanh, and the stable sigmoid and softplus
4. ``modules``          Dense and the activations as modules; Sequential and the MLP (the chain rule)
5. ``gradcheck``        checking a backward by central differences
6. ``gaussian``         the reparameterised sample and its KL to the prior N(0, I)
7. ``gaussian_density`` the KL between two diagonal Gaussians, the Gaussian log-density
8. ``gaussian_full``    the KL between two full-covariance Gaussians, through their Cholesky factors
9. ``likelihoods``      the decoder's Bernoulli (from logits) and Gaussian log-likelihoods
10. ``linear_gaussian`` an exactly solvable model: the ELBO's gap is KL(q || posterior)
11. ``vae``             the whole model as one chain, forward and backward, on the ops it is handed
12. ``estimators``      the estimators L^A and L^B, the minibatch estimator, the importance-weighted bound
13. ``collapse``        which latent dimensions the model uses: KL per dimension, active units
14. ``optim``           SGD with momentum, Adagrad, Adam, as the textbooks write them
15. ``training``        binarisation, dequantisation, KL weight, learning rate, the training step

Two helpers sit beside them: ``validate`` (the argument checks every op makes)
and ``ops`` (the ops a model runs on by default, as plain imports;
``scratchvae.engine.ops`` is the engine's module of the same names).
The derivations are in ``docs/``; each backward links its section.
"""
