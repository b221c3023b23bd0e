"""Reading a YAML file a user hands in (an experiment, a recipe): plain data, small, unambiguous.

    cfg = load_yaml("experiments/world_table.yaml")     # BadInput names the file, line and key

PyYAML's ``safe_load`` builds no objects, but it still expands aliases (a "billion laughs" file of a
few hundred bytes runs for a minute and takes gigabytes before anything fails) and lets a later
duplicate key silently replace an earlier one. Configuration never needs anchors, so they are
refused, as are duplicate keys and files over ``MAX_BYTES``.
"""
from __future__ import annotations

from halluc.errors import BadInput
from halluc.paths import read_text

MAX_BYTES = 1 << 20


def _loader():
    import yaml

    class Strict(yaml.SafeLoader):
        def compose_node(self, parent, index):
            ev = self.peek_event()
            if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
                m = ev.start_mark
                raise BadInput(f"{self.name}:{m.line + 1}: YAML anchors and aliases (&, *) are not allowed "
                               "here; write the value out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise BadInput(f"{self.name}:{key_node.start_mark.line + 1}: a mapping key must be a "
                                   "plain value") from None
                if key in seen:
                    raise BadInput(f"{self.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                   f"(first at line {seen[key]})")
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    return Strict


def load_yaml(path, what: str | None = None, max_bytes: int = MAX_BYTES):
    """The document in ``path`` (None for an empty file); BadInput for anything malformed."""
    import yaml
    label = f"{what} {path}" if what else str(path)
    text = read_text(path, what, max_bytes)
    loader = _loader()(text)
    loader.name = label
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        where = f"{label}:{m.line + 1}" if m else label
        raise BadInput(f"{where}: not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise BadInput(f"{label}: not valid YAML: {e}") from None
    except RecursionError:
        raise BadInput(f"{label}: YAML nested too deeply") from None
    finally:
        loader.dispose()
