"""Concept explanations: which human concepts a class depends on, layer by layer.

* :func:`tcav` -- TCAV (Kim et al. 2018): concept activation vectors from example images
  against random counterexamples, the fraction of a class's images whose logit rises along
  them (the TCAV score), and its significance against random directions;
* :class:`TCAVResult` -- its scores, p-values and CAVs, ``.table()`` and ``.picture()``;
* :func:`draw_concept`, :func:`random_images`, :data:`TEXTURES` -- the texture concepts and
  random counterexamples tfviz draws, so TCAV runs offline;
* :func:`train_cav`, :func:`tcav_scores`, :func:`p_value` -- the steps, on arrays.

    import tfviz
    from tfviz.concepts import tcav
    result = tcav(tfviz.load_model())        # drawn textures, the cat photo, its top-1 class
    print(result.table())
"""
from .drawn import TEXTURES, draw_concept, photo_views, random_images
from .render import tcav_picture
from .tcav import DEFAULT_PHOTO, MIN_EXAMPLES, TCAVResult, check_layers, p_value, tcav, tcav_scores, train_cav

__all__ = ["tcav", "TCAVResult", "train_cav", "tcav_scores", "p_value", "check_layers", "draw_concept",
           "random_images", "photo_views", "tcav_picture", "TEXTURES", "MIN_EXAMPLES", "DEFAULT_PHOTO"]
