

def test_equal_per_seed_gains_are_an_exact_difference():
    # 74/108 - 70/108 and 72/108 - 68/108: the same gain, even though the float subtractions differ
    d = size_sweep._kd_vs_scratch([74 / 108, 72 / 108], [70 / 108, 68 / 108])
    assert d["per_pair"][0] == d["per_pair"][1] and d["p_value"] == 0.0
    assert d["diff_pts"] == pytest.approx(400 / 108)
