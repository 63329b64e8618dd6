"""Every numerical constant taken from the literature, in one place.

Provenance: Fallah, Mokhtari & Ozdaglar, "On the convergence theory of
gradient-based model-agnostic meta-learning algorithms", AISTATS 2020
(arXiv 1908.10400), as transcribed in THEORY.md §3–§6 (the paper's full text
was not available; the derivable ones were re-derived there).  Carmon, Duchi,
Hinder & Sidford, "Lower bounds for finding stationary points II",
Math. Programming 2019, for the hard chain (THEORY.md §7).  A corrected
transcription is a one-line change here.
"""
from __future__ import annotations

# --- smoothness lemma of F (THEORY.md §3): L(w) = 4L + 2ρα E_i‖∇f_i(w)‖ -------
SMOOTH_L_FACTOR = 4.0          # the 4 in 4L
SMOOTH_RHO_FACTOR = 2.0        # the 2 in 2ρα

# --- step-size lemma (THEORY.md §3) -----------------------------------------
STEP_C = {"maml": 12.0, "fomaml": 18.0, "hfmaml": 25.0}   # β_k = 1/(c·L̃(w_k)), §4, §5, §6
INV_LT_MEAN_LOWER = 0.8        # E[1/L̃] ≥ 0.8 / L(w)
INV_LT_SQ_UPPER = 3.125        # E[1/L̃²] ≤ 3.125 / L(w)²
B_PRIME_FACTOR = 0.5           # B′ ≥ ⌈½ (ρασ/L)²⌉
D_BETA_FACTOR = 4.0            # D_β ≥ ⌈(2ρασ̃/L)²⌉ = ⌈4 (ρασ̃/L)²⌉

# --- theorem conditions -------------------------------------------------------
ALPHA_MAX_LD = {"maml": 1.0 / 6.0, "fomaml": 1.0 / 10.0, "hfmaml": 1.0 / 6.0}  # α ≤ c/L
B_MIN = 20                     # B ≥ 20 (MAML theorem, §4)
D_H_FACTOR = {"maml": 2.0, "hfmaml": 36.0}  # D_h ≥ ⌈2α²σ_H²⌉ (§4), ⌈36(ασ_H)²⌉ (§6)

# --- moment bounds (7), (8) -----------------------------------------------------
M1_GRAD = 2.0                  # (7): 2‖∇F‖²
M1_NOISE = 0.08                # (7): 0.08 σ̃²/D_in   (2·(7/36)² = 0.0756 ≤ 0.08)
M2_GRAD = 40.0                 # (8): 40‖∇F‖²
M2_SIGMA = 14.0                # (8): 14σ²
M2_DO = 2.0                    # (8): σ̃²·2/D_o
M2_DIN = 1.0 / 6.0             # (8): σ̃²·1/(6 D_in)

# --- per-step decrease (11) and rate (14) ------------------------------------
DECREASE_DEN = 1600.0          # (11), (14): 1/1600

# --- noise floors of the three theorems -----------------------------------------
FLOOR = {                      # E‖∇F‖ ≤ max{√(a(1+ρασ/L)S), b(ρα/L)S, ε}
    "maml": (61.0, 61.0),      # §4: √(61(1+ρασ/L)S), 61(ρα/L)S
    "fomaml": (14.0, 14.0),    # §5: √(14(1+ρασ/L)S′), 14(ρα/L)S′
    "hfmaml": (36.0, 36.0),    # §6: 6√((1+ρασ/L)S) = √(36(..)S), 36(ρα/L)S
}
FOMAML_FLOOR_ALPHA = 20.0      # §5: S′ = σ²(1/B + 20α²L²) + ...

# --- HF-MAML finite-difference step (§6) ------------------------------------------
HF_DELTA_DEN = 6.0             # δ = 1/(6ρα‖v_i‖)

# --- hard chain (Carmon et al. 2019; THEORY.md §7) --------------------------------
CHAIN_GRAD_LIP = 152.0         # ∇f̄_T is 152-Lipschitz
CHAIN_GAP_PER_COORD = 12.0     # f̄_T(0) − inf f̄_T ≤ 12T
CHAIN_T_DEN = CHAIN_GAP_PER_COORD * CHAIN_GRAD_LIP   # 1824: T(ε) = ⌊ΔL/(1824ε²)⌋
