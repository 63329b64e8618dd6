"""MAML, FO-MAML and HF-MAML over task families; the exact objective."""
