"""The Hydra configs, installed as the package `ganad_bench.conf`. Importing it (Hydra does, to read it)
stores every detector's parameter defaults as `model_params/<model>` (`ganad_bench.config`)."""

from ganad_bench.config import register_configs

register_configs()
