"""Default values that the library and the command line share, in one place.

No TensorFlow here: the ``tfviz`` command reads these when it starts (its options show
them in ``--help``) without loading the library."""

#: Integrated Gradients' quadrature rules (``integrated_gradients(rule=)``, ``--rule``).
IG_RULES = ("trapezoid", "midpoint", "gausslegendre")

#: SmoothGrad's reductions of the noisy maps (``smoothgrad(variant=)``, ``--variant``).
SMOOTHGRAD_VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")

#: Fooling images: the Adam learning rate, in grey levels per step (``fooling_image(lr=)``, ``tfviz fool --lr``).
FOOLING_LR = 0.6

#: DeepDream: the mean absolute change of a pixel per step, in grey levels (``--step-size``).
DREAM_STEP_SIZE = 2.5

#: TCAV (``tfviz.concepts.tcav``, ``tfviz concepts``): the texture concepts tfviz draws, the
#: images per concept and per random set, the random sets, the fewest images a concept may
#: have, and the significance level of the t-test.
TCAV_TEXTURES = ("striped", "dotted", "zigzagged", "checkered")
TCAV_EXAMPLES = 50
TCAV_RANDOM_SETS = 10
TCAV_MIN_EXAMPLES = 10
TCAV_ALPHA = 0.05
