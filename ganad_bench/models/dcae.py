"""DCAE — deep convolutional autoencoder baseline (Masci et al. 2011; as used by Ruff et al., ICML 2018,
Sec. 4.1, whose MNIST / CIFAR-10 numbers MEMGAN Table 1 reprints in its DCAE column; RCGAN Table 1).

Network: Deep SVDD's own autoencoder (`kit.lenet`: the LeNet-type encoder and its mirrored
decoder for images, the bias-free MLP for tabular rows), not the Table IX family of `kit.blocks`.
Why: the published DCAE column is Ruff et al.'s DCAE, which "uses the same network as the Deep SVDD
encoder, mirrored as decoder" (Ruff Sec. 4.1), so this is the network that produced the numbers we
compare with, and DCAE is then exactly Deep SVDD's pretraining stage run as a detector. As there,
the layers are bias-free (`bias`, default false) and the images are globally contrast normalised (l1)
and min-max scaled to [0, 1] with the training images' extremes (`contrast_norm`, default l1), with a
sigmoid output.

Training: mean squared error, Adam (lr 1e-4, weight decay 1e-6, batch 200), 150 epochs with the
learning rate x 0.1 after epoch 50 (the PyTorch reference code's settings; conf/model/dcae.yaml). The
published MNIST / CIFAR-10 DCAE columns come from the authors' Theano code, whose scripts drop the rate
later: MNIST 150 + 100 epochs (drop at 150), CIFAR-10 250 + 100 (conf/dataset_model/mnist_dcae.yaml,
cifar10_dcae.yaml). On MNIST the earlier drop stops the autoencoder before it has learnt its class
(docs/measured.md, "DCAE's learning-rate drop"). Those runs also trained on five sixths of the normal
class's MNIST images (four fifths on CIFAR-10; the rest held out by the code's default validation share),
which the same files set as protocol.val_fraction (docs/measured.md, "DCAE's held-out sixth"), and
initialised their networks differently from PyTorch (`init=theano`, `kit.lenet`; "DCAE's initialisation").
Score: the squared reconstruction error ||x - x_rec||_2^2 (Ruff Sec. 4.1; RCGAN's text says the l2 norm
of the reconstruction error, its square root: the same ranking, so the same AUROC / F1).
"""

from __future__ import annotations

from ganad_bench.models.kit.contract import check_choice
from ganad_bench.models.kit.deep import DeepDetector
from ganad_bench.models.kit.lenet import INITS, autoencoder_module
from ganad_bench.models.kit.registry import register


@register("dcae")
class DCAE(DeepDetector):
    """DCAE (module docstring). Parameters: `rep_dim` (null: MNIST 32, CIFAR-10 128, tabular by width),
    `hidden` (tabular hidden sizes, null: by width), `bias` (false: Ruff's bias-free layers),
    `contrast_norm` (l1 | l2 | null; images only), `init` (pytorch | theano: `kit.lenet`, images only)."""

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), *,
                 rep_dim: int | None = None, hidden=None, bias: bool = False, contrast_norm: str | None = "l1",
                 init: str = "pytorch"):
        super().__init__(seed, trainer, checkpoint_dir, callbacks)
        check_choice("init", init, INITS)

    def build(self, input_shape):
        p = self.params
        return autoencoder_module(input_shape, p["rep_dim"], p["hidden"], bool(p["bias"]),
                                  sigmoid=self.contrast_normalised(input_shape), init=p["init"], seed=self.seed)
