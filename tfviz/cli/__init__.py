"""The ``tfviz`` command line: a click group whose subcommands live one family per
module in this package (``predict.py``, ``attribute.py``, ``inspect.py``, ...). Each
subcommand is a thin shell over one library function; errors print as one line."""
from __future__ import annotations

import importlib
import os
import pkgutil

import click

from .common import run_main

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=100)


class _Group(click.Group):
    """Loads subcommand modules lazily so ``tfviz --help`` stays fast."""

    def _modules(self):
        here = os.path.dirname(__file__)
        return [m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_") and m.name != "common"]

    def _load_all(self):
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for name in self._modules():
            mod = importlib.import_module(f"{__name__}.{name}")
            for cmd in getattr(mod, "COMMANDS", []):
                self.add_command(cmd)

    def list_commands(self, ctx):
        self._load_all()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load_all()
        return super().get_command(ctx, name)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(package_name="tfviz")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors (also accepted "
                                            "after the command name).")
@click.pass_context
def cli(ctx, debug):
    """tfviz: see what a Keras convolutional network has learned and why it decides.

    Every command works offline on built-in defaults: the ImageNet classifier
    efficientnet_lite0 and photos bundled with tfviz (name them as images: chelsea,
    coffee, rocket, astronaut). Use --model to point at your own model (a .keras/.h5 file
    or a keras.applications name such as vgg16). Pictures go into ./tfviz-out unless -o
    says otherwise; --logdir adds TensorBoard data (tfviz board LOGDIR shows it).

    \b
    Examples:
      tfviz demo --quick                 # every method, a gallery page and TensorBoard logs (3 min)
      tfviz predict                      # top-5 classes of the bundled photos
      tfviz attribute all coffee         # every attribution method on the coffee photo
      tfviz layers digits_cnn            # the layer names --layer options accept
      tfviz predict my_photo.jpg --model resnet50
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv=None):
    return run_main(cli, argv)
