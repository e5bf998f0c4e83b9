"""``tfviz predict``: top-k classes for images."""
from __future__ import annotations

import click

from .common import IMAGE, default_images, model_options


@click.command("predict")
@click.argument("images", nargs=-1, type=IMAGE)
@click.option("-k", "--top", "k", default=5, show_default=True, type=click.IntRange(1, None),
              help="How many classes to list per image.")
@model_options()
def predict_cmd(images, k, bundle):
    """Print the model's top-k classes for each IMAGE (default: the bundled cat and
    coffee photos). IMAGE is a file or a bundled photo's name: chelsea (a cat), coffee,
    rocket, astronaut.

    \b
    Examples:
      tfviz predict                       # chelsea the cat and a coffee cup
      tfviz predict rocket astronaut -k 3
      tfviz predict my_dog.jpg --model mobilenet_v2
    """
    import os
    for path in default_images(images):
        batch = bundle.load_images([path])
        click.echo(f"{os.path.basename(path)}  ({bundle.name})")
        for rank, (idx, name, p) in enumerate(bundle.top_k(batch, k)[0], 1):
            click.echo(f"  {rank}. {name:<30s} {p:6.1%}   (class {idx})")


COMMANDS = [predict_cmd]
