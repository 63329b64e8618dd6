"""The bounds and theorem conditions of Fallah, Mokhtari & Ozdaglar as code."""
