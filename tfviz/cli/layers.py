"""``tfviz layers`` and ``tfviz classes``: the names a model's --layer and --target
options accept."""
from __future__ import annotations

import functools

import click

from .common import model_options


def _model_argument(f):
    """``tfviz layers MODEL`` is ``tfviz layers --model MODEL``."""
    @functools.wraps(f)
    def wrapper(*args, model_name=None, model_spec=None, **kwargs):
        return f(*args, model_spec=model_name or model_spec, **kwargs)
    return wrapper


@click.command("layers")
@click.argument("model_name", required=False, metavar="[MODEL]")
@click.option("--spatial", is_flag=True, help="Only layers with a spatial [H, W, C] output (activations, "
                                              "patches, Grad-CAM, neurons, DeepDream).")
@click.option("--conv", is_flag=True, help="Only convolution layers (filters).")
@_model_argument
@model_options()
def layers_cmd(spatial, conv, bundle):
    """List the layers of MODEL (default: efficientnet_lite0; same as --model) with their
    output shapes: the names every --layer option and unit target accepts.

    \b
    Examples:
      tfviz layers                          # efficientnet_lite0
      tfviz layers digits_cnn --spatial
      tfviz layers my_model.keras --conv
    """
    from ..models import describe_layers
    rows = describe_layers(bundle, spatial=spatial, conv=conv)
    width = max((len(r[0]) for r in rows), default=5)
    click.echo(f"{bundle.name}: {len(rows)} layer(s)")
    for name, kind, shape in rows:
        click.echo(f"  {name:<{width}s}  {kind:<22s} {shape}")


@click.command("classes")
@click.argument("model_name", required=False, metavar="[MODEL]")
@click.option("--grep", "pattern", help="Only classes whose name contains this text (case-insensitive).")
@_model_argument
@model_options()
def classes_cmd(pattern, bundle):
    """List the class indices and names of MODEL (default: efficientnet_lite0): what
    --target and class arguments accept (a name or an index).

    \b
    Examples:
      tfviz classes --grep cat              # the ImageNet cats
      tfviz classes digits_cnn
    """
    n = bundle.num_classes
    names = [bundle.class_name(i) for i in range(n)]
    rows = [(i, c) for i, c in enumerate(names) if not pattern or pattern.lower() in c.lower()]
    click.echo(f"{bundle.name}: {n} classes" + (f", {len(rows)} matching {pattern!r}" if pattern else ""))
    for i, c in rows:
        click.echo(f"  {i:5d}  {c}")


COMMANDS = [layers_cmd, classes_cmd]
