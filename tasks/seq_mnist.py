"""Sequential MNIST (Le, Jaitly & Hinton 2015): a 28x28 digit read one pixel per step, 784 steps,
classified at the last step. Hub id ylecun/mnist; local files with data_dir=... (see bench/images.py)."""

from bench.images import image_task

TASK = image_task(
    "seq-mnist",
    permuted=False,
    description="classify an MNIST digit read pixel by pixel (784 steps); 10 classes",
    references="Le, Jaitly & Hinton 2015; Arjovsky, Shah & Bengio 2016",
)
