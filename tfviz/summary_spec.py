"""What a tfviz summary is, for its writer and its readers: the plugin's name, the kinds
of summaries and the dashboard's views, and how many points TensorBoard keeps of each.

Defined once here and read by the writer (:mod:`tfviz.summary`), the TensorBoard plugin
(``tb_plugin.plugin``) and ``tfviz board``. Plain constants, no TensorFlow: the plugin
runs in TensorBoard's process and ``tfviz board``'s options are built for ``tfviz --help``,
and neither should wait for TensorFlow to import.
"""
from __future__ import annotations

PLUGIN_NAME = "tfviz"
KINDS = ("filters", "activations", "patches", "attribution", "embeddings", "optimization", "params", "info")
VIEWS = KINDS[:6]  # the dashboard views, in tab order
DEFAULT_SAMPLES = 1000          # snapshots read per tfviz tag (TensorBoard's own default: 10)
DEFAULT_SCALAR_SAMPLES = 10000  # loss points kept per curve (TensorBoard's own default: 1000)

__all__ = ["PLUGIN_NAME", "KINDS", "VIEWS", "DEFAULT_SAMPLES", "DEFAULT_SCALAR_SAMPLES"]
