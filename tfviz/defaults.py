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
