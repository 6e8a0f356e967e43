"""Permuted sequential MNIST (Le, Jaitly & Hinton 2015): as seq-mnist, but the pixels are read in one
fixed seeded random order (permutation_seed), which scatters nearby pixels across the whole
sequence and so demands long-range memory."""

from bench.images import image_task

TASK = image_task(
    "perm-mnist",
    permuted=True,
    description="classify an MNIST digit read pixel by pixel in one fixed random order; 10 classes",
    references="Le, Jaitly & Hinton 2015; Arjovsky, Shah & Bengio 2016",
)
