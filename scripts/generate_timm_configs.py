"""Write backbones/timm_configs/<module>.py from timm's model registry (a developer tool, run once
when timm changes: ``.venv/bin/python scripts/generate_timm_configs.py [module ...]``; all modules
of scripts/timm_tables by default).

For every model a ported timm module registers (``timm.list_models(module=...)``), the constructor
arguments its entrypoint passes (captured, not guessed: the entrypoint runs with ``_create_<module>``
replaced by a recorder) in a JSON-ready form, the widths of a pruned model's convs (timm adapts those
from a file), and every pretrained tag timm lists (hub repository, input size, mean / std, first conv).
timm is needed here only; keras-seg reads the generated tables.
"""

import importlib
import os
import pkgutil
import pprint
import sys

import timm

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
import timm_tables  # noqa: E402

TARGET_DIR = os.path.join(os.path.dirname(SCRIPTS), "backbones", "timm_configs")


HEADER = '''"""timm's {module} models that backbones.timm_{module} builds, generated from timm {version} by
scripts/generate_timm_configs.py (do not edit by hand).

{const}: ``{{name: {{'params': the builder's settings (timm's constructor arguments), 'default_tag': the
tag of the bare name (timm's; 'untrained' ones have no weights), 'tags': {{tag: {{'repo_id', 'input_size', 'mean', 'std',
'first_conv'}}}}}}}}``.
"""

TIMM_VERSION = {version!r}

'''


def write(module, const, table):
    path = os.path.join(TARGET_DIR, f"{module}.py")
    text = HEADER.format(module=module, const=const, version=timm.__version__)
    text += f"{const} = " + pprint.pformat(table, width=120, sort_dicts=True) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    print(f"{path}: {len(table)} models")


def main(modules):
    for module in modules or sorted(m.name for m in pkgutil.iter_modules(timm_tables.__path__)):
        generator = importlib.import_module(f"timm_tables.{module}")
        write(module, generator.CONST, generator.table())


if __name__ == "__main__":
    main(sys.argv[1:])
