"""The bounds of Fallah, Mokhtari & Ozdaglar (and the hard chain's) as pure functions.

Each function takes the constants (``L, rho, sigma, sigma_tilde, sigma_H``,
``Delta``) and hyperparameters as plain numbers, returns a float (an array
where an argument such as ``grad_F_norm`` is an array), and cites its equation
of the explainer (7)–(14) or its lemma of THEORY.md §3–§7.  Every literature
constant comes from ``theory.literature``.

Each bound has a *kind* (``KIND[name]``, also ``fn.kind``): ``upper`` (the
measured quantity must not exceed it), ``lower`` (must not fall below it) or
``value`` (a rule or definition, not a guarantee).  A check returns the
measured value and the bound side by side (``moment_check``) and the caller
asserts by the kind (``holds``).
"""
from __future__ import annotations

from mamlcheck.theory._calling import CONSTANT_NAMES, HYPER_FIELDS, KIND, holds, moment_check
from mamlcheck.theory.floors import (S_prime, chain_eps_prime, chain_lower_bound_iterations, chain_T,
                                     fomaml_dropped_term, hf_delta, hf_delta_formula, hf_fd_error, noise_floor,
                                     noise_S)
from mamlcheck.theory.lemmas import (B_prime_min, D_beta_min, D_h_min, hessian_factor_sq, inner_bias,
                                     local_L_formula, maml_bias, second_moment_inner, smooth_local_L,
                                     step_inv_mean_lower, step_inv_sq_upper)
from mamlcheck.theory.multistep import (inner_drift, multistep_alpha_max, multistep_bias,
                                        multistep_iterations_order, multistep_L_formula, multistep_second_moment,
                                        multistep_smooth_L, multistep_task_grad_range)
from mamlcheck.theory.rate import (conditional_rhs, descent_rhs, first_moment_bound, iterations_upper,
                                   per_step_decrease, second_moment_bound, telescoped_rhs)

__all__ = [
    "KIND", "HYPER_FIELDS", "CONSTANT_NAMES", "moment_check", "holds",
    "smooth_local_L", "step_inv_mean_lower", "step_inv_sq_upper", "B_prime_min", "D_beta_min",
    "D_h_min", "inner_bias", "maml_bias", "second_moment_inner", "hessian_factor_sq",
    "first_moment_bound", "second_moment_bound", "descent_rhs", "conditional_rhs",
    "per_step_decrease", "telescoped_rhs", "iterations_upper",
    "noise_S", "S_prime", "noise_floor", "fomaml_dropped_term",
    "hf_fd_error", "hf_delta", "hf_delta_formula", "local_L_formula", "chain_T", "chain_eps_prime", "chain_lower_bound_iterations",
    "multistep_smooth_L", "multistep_L_formula", "inner_drift", "multistep_bias", "multistep_second_moment",
    "multistep_task_grad_range", "multistep_alpha_max", "multistep_iterations_order",
]
