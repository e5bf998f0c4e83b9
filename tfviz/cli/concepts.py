"""``tfviz concepts``: TCAV (Kim et al. 2018) -- how much concepts (drawn textures, or
folders of your own examples) matter to a class, layer by layer, with their significance
against random directions. A thin shell over :func:`tfviz.concepts.tcav`."""
from __future__ import annotations

import contextlib
import os
import time

import click

from ..defaults import TCAV_ALPHA, TCAV_EXAMPLES, TCAV_MIN_EXAMPLES, TCAV_RANDOM_SETS, TCAV_TEXTURES
from .common import IMAGE, LazyProgress, logdir_option, model_options, out_option, out_path, slug


class ImageOrFolder(click.ParamType):
    """An image file, a bundled photo's name (as ``IMAGE``), or a folder of images."""
    name = "image|folder"

    def convert(self, value, param, ctx):
        if os.path.isdir(os.fspath(value)):
            return os.fspath(value)
        return IMAGE.convert(value, param, ctx)


def _parse_concepts(ctx, param, values):
    """``--concept NAME=DIR`` (a folder of examples) or ``--concept NAME`` (a drawn texture),
    checked when the command line is parsed: ``{name: folder or None}``."""
    if not values:
        return None
    out = {}
    for value in values:
        name, eq, folder = value.partition("=")
        name = name.strip()
        if not name:
            raise click.BadParameter(f"{value!r}: give NAME=DIR (a folder of example images) or the name of a "
                                     f"drawn texture ({', '.join(TCAV_TEXTURES)})", param=param)
        if name in out:
            raise click.BadParameter(f"concept {name!r} is named twice", param=param)
        if eq:
            if not os.path.isdir(folder):
                raise click.BadParameter(f"{name}={folder}: no such folder", param=param)
            out[name] = folder
        elif name in TCAV_TEXTURES:
            out[name] = None
        else:
            from ..utils import suggest
            close = suggest(name, TCAV_TEXTURES)
            guess = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise click.BadParameter(f"{name!r} is not a drawn texture; {guess}the drawn ones are "
                                     f"{', '.join(TCAV_TEXTURES)}; give your own as NAME=DIR", param=param)
    return out


def _class_images(paths):
    """The IMAGES arguments as one list of files (folders expanded), or None."""
    if not paths:
        return None
    from ..images import list_image_files
    files = []
    for p in paths:
        files.extend(list_image_files(p) if os.path.isdir(p) else [p])
    return files


@click.command("concepts")
@click.argument("images", nargs=-1, type=ImageOrFolder())
@click.option("--target", "-t", default=None,
              help="Class (name or index) whose dependence on the concepts is tested [the class most IMAGES "
                   "are assigned to].")
@click.option("--concept", "-c", "concepts", multiple=True, metavar="NAME[=DIR]", callback=_parse_concepts,
              help="A concept: NAME=DIR, a folder of at least "
                   f"{TCAV_MIN_EXAMPLES} example images, or the name of a texture tfviz draws "
                   f"({', '.join(TCAV_TEXTURES)}). Repeat for several [all drawn textures].")
@click.option("--layer", "-l", "layers", multiple=True,
              help="Spatial layer to test (repeat for several) [block outputs spread over the network; "
                   "tfviz layers --spatial lists them].")
@click.option("--random-sets", default=TCAV_RANDOM_SETS, show_default=True, type=click.IntRange(2, None),
              help="Random counterexample sets each concept is tested against (one CAV and score each).")
@click.option("--examples", default=TCAV_EXAMPLES, show_default=True, type=click.IntRange(TCAV_MIN_EXAMPLES, None),
              help="Images per concept (at most) and per random set.")
@click.option("--views", default=None, type=click.IntRange(1, None),
              help="Use N views (crops, flips) of IMAGES as the class images [IMAGES as given; without IMAGES: "
                   "--examples views of the bundled photos].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the drawn images, subsets and splits.")
@click.option("--alpha", default=TCAV_ALPHA, show_default=True, type=click.FloatRange(0, 1, min_open=True,
                                                                                     max_open=True),
              help="Significance level of the t-test against random directions.")
@click.option("--no-bonferroni", is_flag=True,
              help="Compare p-values with alpha itself, not alpha divided by the number of (concept, layer) tests.")
@click.option("--strict", is_flag=True, help="Fail on unreadable concept or class images instead of skipping them.")
@out_option(name="tcav-MODEL-TARGET.png")
@logdir_option
@click.option("--run", default=None, help="Run name under --logdir (default: concepts-MODEL).")
@model_options()
def concepts_cmd(images, target, concepts, layers, random_sets, examples, views, seed, alpha, no_bonferroni, strict,
                 out, logdir, run, bundle):
    """Test how much concepts matter to a class with TCAV (Kim et al. 2018): a linear
    classifier per layer tells a concept's examples from random images, its normal is the
    concept activation vector (CAV), and the TCAV score is the fraction of the class's
    IMAGES whose logit rises along it. Scores are repeated against --random-sets random sets
    and t-tested against random directions; non-significant ones are marked (*).

    IMAGES are the class's images: files, folders, or bundled photo names (chelsea, coffee,
    rocket, astronaut). Without IMAGES: views (crops, flips) of the bundled photos the
    model assigns to --target, or of the cat photo. Concepts default to textures drawn by
    tfviz (striped, dotted, zigzagged, checkered) and the random sets are drawn too, so
    this runs offline. Prints a table and writes a bar chart.

    \b
    Examples:
      tfviz concepts                                   # the cat photo, drawn textures, 4 layers
      tfviz concepts --concept striped --concept dotted --layer block3b_add
      tfviz concepts photos/zebras --target zebra --concept stripes=my/stripes -c dotted
    """
    from ..concepts import tcav
    from ..images import save_png

    files = _class_images(images)
    intro = (f"TCAV on {bundle.name}: {len(concepts) if concepts else len(TCAV_TEXTURES)} concept(s) against "
             f"{random_sets} random sets of {examples} images")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        state = {"bar": None, "done": 0}

        def progress(done, total):
            if state["bar"] is None:
                state["bar"] = stack.enter_context(LazyProgress(length=total, label="TCAV", intro=intro))
            state["bar"].update(done - state["done"])
            state["done"] = done

        result = tcav(bundle, concepts, target, list(layers) or None, images=files, views=views,
                      random_sets=random_sets, examples=examples, seed=seed, progress=progress, strict=strict,
                      alpha=alpha, bonferroni=not no_bonferroni)
    picture = result.picture()
    path = out_path(out, f"tcav-{bundle.name}-{slug(result.target_name)}.png")
    save_png(path, picture)
    click.echo(result.table())
    click.echo(f"wrote {path}  ({time.perf_counter() - start:.0f} s)")
    if logdir:
        from ..summary import Writer
        with Writer(logdir, run=run or f"concepts-{bundle.name}") as w:
            rows = result.rows()
            w.image("embeddings", f"tcav/{result.target_name}", picture, role="map", method="tcav",
                    caption=f"TCAV of class {result.target_name!r}: {result.n_images} images, "
                            f"{result.random_sets} random sets, * not significant (p >= {result.threshold:.2g})",
                    target=result.target_name, layers=result.layers, concepts=result.concepts,
                    scores=[round(r["score"], 4) for r in rows], stds=[round(r["std"], 4) for r in rows],
                    p_values=[r["p_value"] for r in rows], significant=[r["significant"] for r in rows],
                    rows=[[r["concept"], r["layer"]] for r in rows], threshold=result.threshold)
            w.params("concepts", dict(method="tcav", model=bundle.name, target=result.target_name,
                                      layers=result.layers, concepts=result.concepts, random_sets=random_sets,
                                      examples=examples, seed=seed, alpha=alpha, bonferroni=not no_bonferroni,
                                      images=result.images_note))
        click.echo(f"wrote TensorBoard data to {logdir} (tfviz board {logdir}: the Embeddings view)")


COMMANDS = [concepts_cmd]
