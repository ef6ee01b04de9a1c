"""Built-in joint layouts, one YAML file each (data, not code)."""
