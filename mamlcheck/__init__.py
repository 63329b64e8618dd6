"""mamlcheck: the convergence theory of MAML (Fallah, Mokhtari & Ozdaglar 2020), made runnable."""
from __future__ import annotations
