"""Correlation of predicted (projection difference) and measured (fine-tuning) shifts in docs/VECTORS.md.

The numbers are the `vectors predict` and `vectors shift` outputs quoted there (layer 20): five
datasets (warm, cold, low_agreeableness, warm_but_firm, and a 50/50 warm/cold mixture) x four traits.
python docs/vector_prediction_correlation.py
"""

import numpy as np
from scipy import stats

TRAITS = ["warmth", "sycophancy", "agreeableness", "compliance"]
PREDICTED = {  # vectors predict --limit 60, reply projection difference
    "warm": [1.471, 9.327, 9.071, 1.741],
    "cold": [-4.964, 3.891, 3.453, -3.362],
    "low_agreeableness": [-2.116, 3.538, -0.217, 3.369],
    "warm_but_firm": [-0.072, 7.795, 7.651, -0.118],
    "mix_warm_cold": [-1.788, 6.471, 6.075, -0.783],  # even rows warm, odd rows cold
}
MEASURED = {  # vectors shift: (last prompt token, reply average) per trait
    "warm": [(-8.692, -8.000), (0.392, 4.091), (3.712, 8.068), (-0.894, -7.431)],
    "cold": [(-18.429, -16.642), (-4.921, 0.646), (0.035, 14.890), (-3.639, -3.017)],
    "low_agreeableness": [(-8.148, -7.408), (-3.697, -3.958), (-1.356, 7.766), (-3.129, -4.926)],
    "warm_but_firm": [(-11.363, -11.387), (-1.603, -4.952), (2.422, 12.658), (-1.675, -6.345)],
    "mix_warm_cold": [(-13.122, -12.900), (-2.402, -1.000), (1.553, 11.611), (-2.717, -6.411)],
}


def main() -> None:
    datasets = list(PREDICTED)
    pred = np.array([PREDICTED[d] for d in datasets])
    for k, span in enumerate(("last prompt token", "reply average")):
        meas = np.array([[m[k] for m in MEASURED[d]] for d in datasets])
        r, p = stats.pearsonr(pred.ravel(), meas.ravel())
        rho = stats.spearmanr(pred.ravel(), meas.ravel())[0]
        rc, pc = stats.pearsonr((pred - pred.mean(0)).ravel(), (meas - meas.mean(0)).ravel())
        print(f"{span}: r = {r:.2f} (p = {p:.2g}), rho = {rho:.2f}, within-trait r = {rc:.2f} (p = {pc:.2g})")
        for t, trait in enumerate(TRAITS):
            rt = stats.pearsonr(pred[:, t], meas[:, t])[0]
            print(f"  {trait}: r = {rt:.2f} over {len(datasets)} datasets")


if __name__ == "__main__":
    main()
