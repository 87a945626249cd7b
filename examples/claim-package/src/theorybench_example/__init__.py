"""An example theorybench claim package (see ``docs/writing-a-claim-package.md``).

The claim (Ali, Kolter, Tibshirani, AISTATS 2019; Dobriban and Wager, Ann. Stat. 2018): on
noisy, over-parameterized linear regression, the test risk of gradient descent from zero has an
interior minimum along training time (early stopping helps), and a ridge penalty of the optimal
strength λ* = σ²d/(n‖β*‖²) removes it.

Importing this package (the ``theorybench.plugins`` entry point does) imports every public
module in it, and each module registers its entries:

* :mod:`.paths`            the method family ``regression-path`` and its methods ``gd`` and
                           ``gradient-flow``;
* :mod:`.early_stopping`   the experiment kind ``early_stopping_regression``;
* :mod:`.interior_minimum` the decision rule ``interior_minimum``.

So adding a rule, a method or a kind is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
