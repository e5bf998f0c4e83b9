"""TensorBoard plugin "tfviz": dashboards for what tfviz.summary writes."""
