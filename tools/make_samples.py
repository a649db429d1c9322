"""Regenerate the embedded sample datasets shipped inside the template.

The samples are synthetic, with a known generating process, so the template carries no third-party data and every
number in it can be reproduced: ``python tools/make_samples.py``. They include categorical columns and missing
values on purpose, because real tables do.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / ".samples"
ROWS = 3000
SEED = 20261121


def _churn_rows(rng: random.Random) -> list[dict[str, str | float]]:
    rows = []
    for _ in range(ROWS):
        contract = rng.choices(["month-to-month", "one-year", "two-year"], [0.55, 0.25, 0.20])[0]
        tenure = rng.randint(0, 72)
        monthly = round(rng.uniform(20, 120), 2)
        calls = min(int(rng.expovariate(0.6)), 12)
        age = rng.randint(18, 85)
        region = rng.choice(["north", "south", "east", "west"])
        payment = rng.choice(["card", "bank-transfer", "e-check", "mailed-check"])
        total = round(tenure * monthly * rng.uniform(0.95, 1.05), 2)
        logit = (
            -1.2
            + {"month-to-month": 1.4, "one-year": -0.2, "two-year": -1.6}[contract]
            - 0.045 * tenure
            + 0.018 * (monthly - 70)
            + 0.35 * calls
            + (0.5 if payment == "e-check" else 0.0)
            + rng.gauss(0, 0.6)
        )
        churned = "yes" if rng.random() < 1 / (1 + math.exp(-logit)) else "no"
        rows.append(
            {
                "age": age,
                "tenure_months": tenure,
                "monthly_charges": monthly,
                "total_charges": "" if rng.random() < 0.03 else total,
                "support_calls": calls,
                "contract": contract,
                "payment_method": "" if rng.random() < 0.04 else payment,
                "region": region,
                "churned": churned,
            }
        )
    return rows


def _house_rows(rng: random.Random) -> list[dict[str, str | float]]:
    rows = []
    for _ in range(ROWS):
        area = round(rng.uniform(30, 250), 1)
        rooms = max(1, min(8, round(area / 32 + rng.gauss(0, 0.7))))
        age = rng.randint(0, 120)
        distance = round(rng.uniform(0.5, 40), 2)
        hood = rng.choices(["centre", "riverside", "suburbs", "industrial"], [0.2, 0.2, 0.45, 0.15])[0]
        garden = "yes" if rng.random() < (0.2 if hood == "centre" else 0.6) else "no"
        rating = rng.choice("ABCDEFG")
        price = (
            40
            + 2.6 * area
            + 9 * rooms
            - 0.35 * age
            - 3.2 * distance
            + {"centre": 120, "riverside": 80, "suburbs": 20, "industrial": -30}[hood]
            + (15 if garden == "yes" else 0)
            - 6 * "ABCDEFG".index(rating)
            + rng.gauss(0, 25)
        )
        rows.append(
            {
                "area_m2": area,
                "rooms": rooms,
                "building_age_years": age,
                "distance_to_centre_km": distance if rng.random() > 0.03 else "",
                "neighbourhood": hood,
                "has_garden": garden,
                "energy_rating": "" if rng.random() < 0.05 else rating,
                "price_k": round(max(price, 20), 1),
            }
        )
    return rows


def _write(name: str, rows: list[dict[str, str | float]]) -> None:
    path = SAMPLES / name / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def main() -> None:
    """Write both samples."""
    _write("classification", _churn_rows(random.Random(SEED)))
    _write("regression", _house_rows(random.Random(SEED + 1)))


if __name__ == "__main__":
    main()
