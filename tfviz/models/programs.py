"""The one cache of what methods build from a model (traced programs, derived models,
facts found by walking it), kept per :class:`~tfviz.models.ModelBundle`."""
from __future__ import annotations


class Programs:
    """What methods build from one model, built once per :class:`ModelBundle`.

    Traced ``tf.function``s, feature and rewritten models, and facts found by walking the
    model (its ReLU count, its default layers) all live here, under one key scheme:
    ``(what, layers, signature)``:

    * ``what`` -- a dotted name for the program: its module and purpose
      (``"attribution.gradient"``, ``"inspect.forward"``, ``"synthesis.forward"``);
    * ``layers`` -- the layer names it reads, a tuple (``()`` for the logits or the whole
      model; one name or ``None`` are accepted and normalized);
    * ``signature`` -- everything else that changes the program: options such as
      ``relu="guided"`` or ``probability=True``, and an input shape ``(h, w, c)`` where a
      program is built for one shape.

    A ``tf.function`` kept here traces once per input shape and reuses its traces on every
    later call, so a method called twice with the same key does not trace again. A cached
    program lives as long as its bundle; the bundle never changes the user's model.
    ``len(bundle.programs)`` and ``list(bundle.programs)`` show what has been built."""

    def __init__(self):
        self._store: dict = {}

    @staticmethod
    def key(what: str, layers=(), signature=()) -> tuple:
        if layers is None:
            layers = ()
        elif not isinstance(layers, (list, tuple)):  # one name, or a score function's head
            layers = (layers,)
        if not isinstance(signature, tuple):
            signature = (signature,)
        return (str(what), tuple(layers), signature)

    def get(self, what: str, layers=(), signature=(), build=None):
        """The program under ``(what, layers, signature)``; ``build()`` makes it the
        first time (without ``build``, a missing program raises ``KeyError``)."""
        k = self.key(what, layers, signature)
        if k not in self._store:
            if build is None:
                raise KeyError(k)
            self._store[k] = build()
        return self._store[k]

    def put(self, what: str, layers=(), signature=(), value=None):
        """Keep ``value`` under the key (replacing what was there); returns it."""
        self._store[self.key(what, layers, signature)] = value
        return value

    def has(self, what: str, layers=(), signature=()) -> bool:
        return self.key(what, layers, signature) in self._store

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self):
        return iter(list(self._store))

    def clear(self):
        """Forget every program (to free memory; new weights need no clearing: programs
        read the model's variables)."""
        self._store.clear()
