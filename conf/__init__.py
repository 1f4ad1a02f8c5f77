"""The Hydra configs, installed as the package `ganad_bench.conf`. Importing it (Hydra does, to read it)
stores every detector's parameter defaults as `model_params/<model>` (`ganad_bench.config`) and the pack
launcher's config (`hydra/launcher=pack`; imported here too because Hydra's plugin scan misses the
`hydra_plugins` folder of an editable install)."""

from ganad_bench.config import register_configs
from hydra_plugins.ganad_pack_launcher import pack_launcher

register_configs()
pack_launcher.register()
