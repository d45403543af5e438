"""The lecture: the VAE in plain NumPy, one formula per line. Read it in this order.

1. ``tiny_vae``        the whole VAE in sixty lines: one dense layer each way, its loss and its backward
2. ``dense``           the dense layer ``x @ W + b``, its three gradients; weight initialisation
3. ``activations``     ReLU, leaky ReLU, tanh, and the stable sigmoid and softplus
4. ``modules``         Dense and the activations as modules; Sequential and the MLP (the chain rule)
5. ``gradcheck``       checking a backward by central differences
6. ``gaussian``        the reparameterised sample, the KL terms, the Gaussian log-density
7. ``gaussian_full``   the KL between two full-covariance Gaussians, through their Cholesky factors
8. ``likelihoods``     the decoder's Bernoulli (from logits) and Gaussian log-likelihoods
9. ``linear_gaussian`` an exactly solvable model: the ELBO's gap is KL(q || posterior)
10. ``vae``            the whole model as one chain, forward and backward, with its two engines
11. ``estimators``     note 004's L^A and L^B, the minibatch estimator, the importance-weighted bound
12. ``collapse``       which latent dimensions the model uses: KL per dimension, active units
13. ``optim``          SGD with momentum, Adagrad, Adam, as the textbooks write them
14. ``training``       binarisation and the five-line training step

Two helpers sit beside them: ``validate`` (the argument checks every op makes)
and ``ops`` (the table of ops a model runs on, and how an engine plugs in).
The derivations are in ``docs/``; each backward links its section.
"""
