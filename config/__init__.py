"""Default configuration files of avs, shipped as package data (importable as ``avs_config``).

setup.py maps this folder to the package ``avs_config`` so a wheel, an editable
install and a colcon install all carry the YAML files; ``avs_core.config.CONFIG_DIR``
finds them with ``importlib.resources``.
"""
