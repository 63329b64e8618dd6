"""robust-regression's data: its documented defaults, the law of the generated
data (feature radii, label noise, outlier counts, task optima), and the
validation of given data, each pinned where a slip would change every result
computed on the family (mutation testing found these unpinned)."""
import math

import numpy as np
import pytest

from mamlcheck.problems import FAMILIES, family_parameters, make_family


def test_the_defaults_are_the_documented_ones():
    params = family_parameters("robust-regression")
    assert {k: params[k] for k in ("d", "M", "N", "R", "spread", "noise", "outlier_frac", "outlier_scale", "seed")} \
        == dict(d=5, M=10, N=50, R=None, spread=1.0, noise=0.1, outlier_frac=0.1, outlier_scale=5.0, seed=0)


@pytest.mark.parametrize("name, bad", [("d", 0), ("M", 0), ("N", 0), ("spread", -1.0), ("noise", -1.0),
                                       ("outlier_frac", -0.1), ("outlier_frac", 1.5), ("outlier_scale", -1.0),
                                       ("R", 0.0)])
def test_a_bad_parameter_is_refused_by_its_name(name, bad):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        make_family("robust-regression", **{name: bad})


def test_given_data_is_validated_with_messages_that_say_what_is_wrong():
    X = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="Y requires X"):
        make_family("robust-regression", d=4, M=2, N=3, Y=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X must be finite"):
        make_family("robust-regression", d=4, M=2, N=3, X=np.full((2, 3, 4), np.nan))
    with pytest.raises(ValueError, match="Y must be finite"):
        make_family("robust-regression", d=4, M=2, N=3, X=X, Y=np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match=r"Y must have shape \(M, N\) = \(2, 3\), got \(3, 2\)"):
        make_family("robust-regression", d=4, M=2, N=3, X=X, Y=np.zeros((3, 2)))


def test_every_point_may_be_an_outlier():
    fam = make_family("robust-regression", M=3, N=10, outlier_frac=1.0)
    assert fam.outliers.all()


@pytest.mark.parametrize("frac, N", [(0.1, 50), (0.3, 10), (0.0, 7)])
def test_each_task_has_exactly_its_rounded_count_of_outliers(frac, N):
    fam = make_family("robust-regression", M=6, N=N, outlier_frac=frac)
    assert fam.outliers.sum(axis=1).tolist() == [round(frac * N)] * 6


def test_generated_features_fill_the_unit_ball_with_varied_radii():
    fam = make_family("robust-regression", d=3, M=20, N=50)
    r = np.linalg.norm(fam.X, axis=-1)
    assert fam.R == 1.0 and r.max() <= 1.0 + 1e-12
    # radius U^{1/d}: P(r < 0.5) = 1/8 per point; 1000 points with one radius are caught
    assert 0.05 < np.mean(r < 0.5) < 0.25 and r.max() > 0.95


def test_label_noise_and_outliers_have_their_scales():
    """Residuals ``y − xᵀw*``: ``noise·N(0,1)`` on clean points, plus
    ``outlier_scale·N(0,1)`` on outliers.  Bounds at 6.5 standard deviations
    (P ≤ 8e-11 per point, ≤ 1e-7 over the points) catch heavy-tailed slips
    (a division by a normal); the spread of the clean residuals (450 draws:
    sample sd within 25 % of noise except with P < 1e-9) catches one shared draw."""
    fam = make_family("robust-regression", d=4, M=10, N=50, noise=0.1, outlier_scale=5.0)
    res = fam.Y - np.einsum("mnd,md->mn", fam.X, fam.w_star)
    clean, out = res[~fam.outliers], res[fam.outliers]
    assert np.abs(clean).max() <= 6.5 * 0.1
    assert 0.75 * 0.1 <= clean.std() <= 1.25 * 0.1
    assert np.abs(out).max() <= 6.5 * math.hypot(0.1, 5.0) and out.std() > 1.0


def test_task_optima_spread_around_a_random_centre_with_normal_tails():
    fam = make_family("robust-regression", d=20, M=200, N=5, spread=1.0)
    centre = fam.w_star.mean(axis=0)
    assert np.abs(fam.w_star - centre).max() <= 6.5 * math.sqrt(1 + 1 / 200)    # N(0, 1) deviations
    assert np.ptp(centre) > 0.5              # the centre is a normal vector, not one number repeated


def test_an_explicit_radius_is_kept_and_given_features_may_touch_it():
    X = np.zeros((2, 3, 4))
    X[0, 0, 0] = 0.5
    assert make_family("robust-regression", d=4, M=2, N=3, X=X, R=2.0).R == 2.0
    assert make_family("robust-regression", d=4, M=2, N=3, X=X).R == 0.5
    a = 1.0 * (1 + 1e-12)                                  # exactly at the tolerance
    X[0, 0, 0] = a
    assert np.linalg.norm(X, axis=-1).max() == a
    assert make_family("robust-regression", d=4, M=2, N=3, X=X, R=1.0).R == 1.0
    X[0, 0, 0] = 1.0 + 1e-11
    with pytest.raises(ValueError, match="ball of radius R"):
        make_family("robust-regression", d=4, M=2, N=3, X=X, R=1.0)


def test_integer_features_give_the_same_family_as_floats():
    rng = np.random.default_rng(3)
    Xi = rng.integers(-2, 3, size=(2, 4, 3))
    a = make_family("robust-regression", d=3, M=2, N=4, X=Xi)
    b = make_family("robust-regression", d=3, M=2, N=4, X=Xi.astype(float))
    w = np.array([0.3, -0.2, 0.1])
    assert a.X.dtype == np.float64 and np.array_equal(a.grad(w, 1), b.grad(w, 1))
    assert a.constants().values() == b.constants().values()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_certified_constant_says_exact_or_upper_bound_with_a_bool(name):
    consts = make_family(name).constants()
    for n in consts.NAMES:
        assert type(getattr(consts, n).exact) is bool, n


def test_the_default_data_of_seed_0_is_the_data_every_figure_was_made_with():
    """A pin of the generated data (rounded to 1e-10 against BLAS rounding): a
    change of draw order, sign or scale in the generator changes every
    robust-regression result; if it is intended, regenerate the figures and
    update this digest in the same commit."""
    import hashlib
    fam = make_family("robust-regression")
    h = hashlib.sha256()
    for a in (fam.X, fam.Y, fam.w_star, fam.outliers.astype(float)):
        h.update(np.round(a, 10).tobytes())
    assert h.hexdigest() == "3ba9d8af77bdd4d78a3dbd2af581b4613fa50571fb18f21c5f0bd9f9b449f053"


def test_describe_names_every_parameter_of_the_data():
    fam = make_family("robust-regression", d=3, M=2, N=4, noise=0.2, outlier_frac=0.25, outlier_scale=4.0,
                      spread=0.5)
    assert fam.describe() == dict(family="robust-regression", d=3, M=2, N=4, R=1.0, spread=0.5, noise=0.2,
                                  outlier_frac=0.25, outlier_scale=4.0, data="generated")
    X = np.ones((2, 4, 3)) * 0.1
    assert make_family("robust-regression", d=3, M=2, N=4, X=X).describe()["data"] == "given X"
    assert make_family("robust-regression", d=3, M=2, N=4, X=X, Y=np.zeros((2, 4))).describe()["data"] == "given X, Y"


def test_the_centre_is_the_mean_optimum_or_the_origin_without_one():
    fam = make_family("robust-regression", d=3, M=4)
    centre, length = fam.centre_and_length()
    assert np.array_equal(centre, fam.p @ fam.w_star) and length == 1.0 + np.linalg.norm(centre)
    given = make_family("robust-regression", d=3, M=2, N=4, X=np.full((2, 4, 3), 0.1), Y=np.zeros((2, 4)))
    c0, l0 = given.centre_and_length()
    assert np.array_equal(c0, np.zeros(3)) and l0 == 1.0
    assert given.w_star is None and given.outliers is None          # nothing is known of given labels


def test_the_gradients_rounding_scale_is_its_formula_on_explicit_data():
    """``mean_k ‖x_k‖(|φ'(r_k)| + |y_k| + ‖x_k‖‖x‖)``, ``φ'(r) = 2r/(2 + r²)``, by hand."""
    X = np.array([[[0.6, 0.0], [0.0, 0.8]]])                 # one task, two points
    Y = np.array([[1.0, -2.0]])
    fam = make_family("robust-regression", d=2, M=1, N=2, X=X, Y=Y)
    x = np.array([3.0, 4.0])                                  # ‖x‖ = 5
    r = np.array([0.6 * 3.0 - 1.0, 0.8 * 4.0 + 2.0])           # residuals x_kᵀx − y_k
    nx = np.array([0.6, 0.8])
    hand = np.mean(nx * (np.abs(2 * r / (2 + r ** 2)) + np.abs(Y[0]) + nx * 5.0))
    assert fam.grad_rounding_scale(x, 0) == pytest.approx(hand, rel=1e-14)
