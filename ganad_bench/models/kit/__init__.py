"""The kit every method file builds on; it imports no method file.

* `contract`   — the detector contract (`Detector`), parameters read from the constructor, checks
* `catalog`    — what each method file registers (names, parameters and defaults, deep or not), read from its
                 source without importing it: composing a config loads no torch
* `registry`   — name -> class (importing that method file only), `create_detector` (the CLI's settings) and
                 `build_detector`
* `deep`       — `DeepDetector`: the contract on top of the training engine, input maps, stages, save / load
* `blocks`     — the one MLP builder, the one architecture resolver, ALAD's network family (Tables IX-XIII)
* `lenet`      — Ruff's LeNet-type and bias-free MLP autoencoders, the plain autoencoder module
* `bigan`      — the BiGAN module (E, G, D_xz, optional D_xx / D_zz) of ALAD, EGBAD, RCGAN
* `losses`     — bce, flat_norm, squared_error
* `input_map`  — contrast normalisation and PCA fitted on the training rows
"""
