"""The tfviz TensorBoard plugin (stub until its dashboards land)."""
from __future__ import annotations

from tensorboard.plugins import base_plugin

PLUGIN_NAME = "tfviz"


class TfvizPlugin(base_plugin.TBPlugin):
    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider

    def get_plugin_apps(self):
        return {}

    def is_active(self):
        return False

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="tfviz")


class TfvizPluginLoader(base_plugin.TBLoader):
    def load(self, context):
        return TfvizPlugin(context)
