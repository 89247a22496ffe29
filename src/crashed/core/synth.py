"""Deterministic generator of realistic synthetic VicRoads crashes (no real rows inside).

``generate_crashes`` returns the lower-case CSV shape of ``vic_crashes_2018.csv`` (40 columns)
plus the two original-schema columns that file lacks, ``dca_code`` and ``unlicencsed``, so all
20 model features (``crashed.core.features.RAW_FEATURES``) and the ``alcohol_related`` label
("Yes"/"No") are present.

Every table below holds *aggregate figures* (counts, proportions, medians) fitted from the real
files in ``shared/data/victoria-crashes``; no real row is copied. Abbreviations used in comments:

* ``[2018]``   ``vic_crashes_2018.csv`` (11,163 crashes of calendar 2018, label 3.20 % Yes).
* ``[2018-lc]`` the 10,416 rows of ``[2018]`` that carry ``light_condition`` / ``hit_run_flag``.
* ``[2015s]``  ``thanhtungdao_vic_crash_2015-07_fullschema_sample.csv`` (554 crashes, July 2015).

Generation is a chain of conditional draws (date -> hour -> place -> speed zone -> accident type
-> geometry -> vehicles -> people -> injuries), then the label from a latent logistic model whose
coefficients were tuned (iterative proportional fitting on 600k synthetic rows) so the synthetic
positive rates by hour, weekday, Fri/Sat night, accident type, vehicles, young drivers, sex mix,
speed zone, light, heavy vehicles, motorcycles, old drivers, severity, region and hit-and-run land
near the rates measured on ``[2018]``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from crashed.errors import InputError

__all__ = ["COLUMNS", "generate_crashes", "write_csv"]

#: Output columns: those of ``vic_crashes_2018.csv`` in order, then ``dca_code``, ``unlicencsed``.
COLUMNS: tuple[str, ...] = (
    "OBJECTID", "accident_no", "accident_date", "accident_time", "accident_type", "day_of_week",
    "road_geometry", "severity", "speed_zone", "node_id", "longitude", "latitude", "node_type",
    "lga_name", "region_name", "total_persons", "inj_or_fatal", "fatality", "seriousinjury",
    "otherinjury", "noninjured", "males", "females", "bicyclist", "passenger", "driver",
    "pedestrian", "pillion", "motorist", "old_pedestrian", "old_driver", "young_driver",
    "alcohol_related", "no_of_vehicles", "heavyvehicle", "passengervehicle", "motorcycle",
    "publicvehicle", "hit_run_flag", "light_condition", "dca_code", "unlicencsed",
)  # fmt: skip

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# ---------------------------------------------------------------------------------------------
# When: [2018] crashes per weekday (of the corrected date), per month, per hour and per minute.
# ---------------------------------------------------------------------------------------------
_WEEKDAY_COUNTS = (1546, 1666, 1672, 1715, 1753, 1518, 1293)  # [2018] Mon..Sun
_MONTH_COUNTS = (907, 964, 1098, 941, 986, 889, 944, 933, 818, 963, 890, 830)  # [2018] Jan..Dec
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# [2018] crashes per hour 0..23 for Mon-Thu, Fri, Sat, Sun (weekend nights are busier).
_HOUR_COUNTS = (
    (61, 58, 33, 27, 39, 84, 254, 386, 513, 379, 298, 320,
     304, 340, 402, 562, 557, 596, 497, 307, 197, 176, 133, 76),
    (11, 14, 14, 12, 18, 24, 45, 84, 111, 105, 78, 95,
     99, 95, 95, 165, 149, 156, 125, 73, 67, 50, 34, 34),
    (26, 32, 14, 23, 14, 26, 31, 38, 58, 68, 107, 110,
     122, 118, 101, 102, 91, 81, 96, 62, 53, 42, 48, 55),
    (48, 29, 19, 25, 19, 18, 20, 37, 38, 58, 74, 102,
     102, 88, 95, 95, 77, 79, 67, 61, 44, 39, 30, 29),
)  # fmt: skip
# [2018] minute heaping: counts at multiples of 5 (:00, :05, ..., :55); 53.5 = mean of the others.
_MINUTE_COUNTS_5 = (1675, 341, 544, 719, 679, 345, 1563, 325, 615, 790, 678, 323)
_MINUTE_COUNT_OTHER = 53.5

# ---------------------------------------------------------------------------------------------
# Where: [2018] crashes per LGA, its region (modal), median lat/lon and robust spread (IQR/1.349).
# ---------------------------------------------------------------------------------------------
_REGIONS = (
    "EASTERN REGION", "METROPOLITAN NORTH WEST REGION", "METROPOLITAN SOUTH EAST REGION",
    "NORTH EASTERN REGION", "NORTHERN REGION", "SOUTH WESTERN REGION", "WESTERN REGION",
)  # fmt: skip
_LGAS: tuple[tuple[str, int, int, float, float, float, float], ...] = (
    # (lga_name, region index, crashes, lat, lon, sd lat, sd lon)
    ("MELBOURNE", 1, 625, -37.811, 144.959, 0.014, 0.013),
    ("CASEY", 2, 472, -38.045, 145.290, 0.062, 0.041),
    ("GEELONG", 5, 452, -38.152, 144.355, 0.056, 0.036),
    ("HUME", 1, 389, -37.645, 144.920, 0.059, 0.042),
    ("MORELAND", 1, 356, -37.742, 144.961, 0.036, 0.019),
    ("DANDENONG", 2, 353, -37.979, 145.192, 0.029, 0.038),
    ("BRIMBANK", 1, 350, -37.758, 144.810, 0.037, 0.033),
    ("WHITTLESEA", 1, 336, -37.654, 145.028, 0.041, 0.036),
    ("MONASH", 2, 311, -37.900, 145.136, 0.023, 0.037),
    ("DAREBIN", 1, 290, -37.744, 145.007, 0.024, 0.018),
    ("YARRA RANGES", 2, 285, -37.786, 145.379, 0.093, 0.114),
    ("KINGSTON", 2, 278, -37.976, 145.094, 0.043, 0.037),
    ("YARRA", 1, 277, -37.800, 144.991, 0.015, 0.013),
    ("WYNDHAM", 1, 261, -37.873, 144.702, 0.038, 0.052),
    ("BOROONDARA", 2, 249, -37.817, 145.057, 0.023, 0.030),
    ("GLEN EIRA", 2, 239, -37.891, 145.038, 0.020, 0.028),
    ("WHITEHORSE", 2, 236, -37.822, 145.142, 0.017, 0.038),
    ("MORNINGTON PENINSULA", 2, 223, -38.308, 145.044, 0.094, 0.159),
    ("PORT PHILLIP", 1, 221, -37.854, 144.977, 0.020, 0.017),
    ("STONNINGTON", 2, 219, -37.852, 145.009, 0.012, 0.037),
    ("KNOX", 2, 217, -37.879, 145.252, 0.034, 0.038),
    ("BALLARAT", 6, 212, -37.560, 143.841, 0.026, 0.026),
    ("BENDIGO", 4, 199, -36.760, 144.280, 0.034, 0.048),
    ("MELTON", 1, 197, -37.709, 144.661, 0.045, 0.119),
    ("FRANKSTON", 2, 195, -38.125, 145.153, 0.034, 0.032),
    ("MOONEE VALLEY", 1, 195, -37.754, 144.910, 0.023, 0.024),
    ("BANYULE", 1, 187, -37.736, 145.070, 0.033, 0.028),
    ("CARDINIA", 2, 173, -38.070, 145.487, 0.069, 0.093),
    ("MANNINGHAM", 2, 167, -37.773, 145.153, 0.020, 0.043),
    ("MAROONDAH", 2, 151, -37.810, 145.263, 0.013, 0.038),
    ("HOBSONS BAY", 1, 147, -37.845, 144.837, 0.028, 0.061),
    ("MARIBYRNONG", 1, 145, -37.798, 144.885, 0.014, 0.020),
    ("LATROBE", 0, 123, -38.193, 146.421, 0.039, 0.179),
    ("MITCHELL", 4, 123, -37.300, 144.999, 0.201, 0.089),
    ("BAYSIDE", 2, 121, -37.921, 145.011, 0.031, 0.019),
    ("BAW BAW", 0, 121, -38.144, 145.938, 0.103, 0.183),
    ("SHEPPARTON", 3, 119, -36.390, 145.400, 0.029, 0.042),
    ("NILLUMBIK", 1, 113, -37.677, 145.161, 0.048, 0.061),
    ("EAST GIPPSLAND", 0, 108, -37.749, 147.857, 0.163, 0.583),
    ("WELLINGTON", 0, 97, -38.084, 146.986, 0.111, 0.196),
    ("COLAC OTWAY", 5, 94, -38.360, 143.591, 0.239, 0.136),
    ("MACEDON RANGES", 4, 83, -37.351, 144.592, 0.145, 0.131),
    ("MOORABOOL", 6, 79, -37.655, 144.326, 0.073, 0.296),
    ("SURF COAST", 5, 78, -38.338, 144.144, 0.084, 0.230),
    ("SOUTH GIPPSLAND", 0, 77, -38.476, 145.967, 0.166, 0.252),
    ("MILDURA", 6, 74, -34.219, 142.157, 0.045, 0.030),
    ("MURRINDINDI", 3, 71, -37.371, 145.594, 0.212, 0.242),
    ("WANGARATTA", 3, 64, -36.373, 146.324, 0.071, 0.081),
    ("CAMPASPE", 4, 64, -36.211, 144.756, 0.145, 0.177),
    ("BASS COAST", 0, 56, -38.521, 145.523, 0.080, 0.232),
    ("GOLDEN PLAINS", 5, 54, -37.864, 144.049, 0.179, 0.277),
    ("MOIRA", 3, 48, -36.010, 145.636, 0.100, 0.313),
    ("HEPBURN", 6, 46, -37.352, 144.140, 0.054, 0.268),
    ("WODONGA", 3, 46, -36.127, 146.890, 0.020, 0.040),
    ("MANSFIELD", 3, 43, -37.052, 146.099, 0.161, 0.230),
    ("MOYNE", 5, 43, -38.332, 142.476, 0.117, 0.280),
    ("WARRNAMBOOL", 5, 41, -38.381, 142.483, 0.012, 0.015),
    ("GLENELG", 5, 41, -38.167, 141.558, 0.396, 0.224),
    ("ALPINE", 3, 39, -36.721, 147.045, 0.145, 0.191),
    ("STRATHBOGIE", 3, 37, -36.778, 145.471, 0.101, 0.300),
    ("HORSHAM", 6, 36, -36.718, 142.197, 0.029, 0.025),
    ("INDIGO", 3, 33, -36.250, 146.687, 0.166, 0.139),
    ("SWAN HILL", 4, 32, -35.337, 143.548, 0.074, 0.103),
    ("CORANGAMITE", 5, 32, -38.354, 143.024, 0.188, 0.193),
    ("TOWONG", 3, 32, -36.176, 147.426, 0.254, 0.211),
    ("NORTHERN GRAMPIANS", 6, 31, -37.042, 142.785, 0.235, 0.233),
    ("SOUTHERN GRAMPIANS", 5, 30, -37.703, 142.013, 0.120, 0.321),
    ("MOUNT ALEXANDER", 4, 30, -37.055, 144.233, 0.069, 0.070),
    ("GANNAWARRA", 4, 30, -35.774, 144.017, 0.069, 0.258),
    ("BENALLA", 3, 28, -36.568, 145.969, 0.076, 0.069),
    ("CENTRAL GOLDFIELDS", 6, 24, -37.049, 143.739, 0.046, 0.019),
    ("ARARAT", 6, 22, -37.319, 142.919, 0.077, 0.071),
    ("PYRENEES", 6, 21, -37.413, 143.392, 0.282, 0.129),
    ("LODDON", 4, 14, -36.506, 143.876, 0.130, 0.211),
    ("HINDMARSH", 6, 13, -36.337, 141.995, 0.274, 0.204),
    ("BULOKE", 4, 12, -36.150, 143.165, 0.318, 0.356),
    ("WEST WIMMERA", 6, 11, -36.734, 141.361, 0.421, 0.172),
    ("YARRIAMBIACK", 6, 8, -36.380, 142.468, 0.278, 0.082),
    ("(FALLS CREEK)", 3, 4, -36.859, 147.274, 0.009, 0.005),
    ("(LAKE MOUNTAIN)", 3, 3, -37.509, 145.876, 0.005, 0.005),
    ("(MOUNT HOTHAM)", 3, 3, -36.974, 147.129, 0.006, 0.009),
    ("(MOUNT BULLER)", 3, 2, -37.123, 146.440, 0.006, 0.011),
    ("QUEENSCLIFFE", 5, 1, -38.266, 144.659, 0.005, 0.005),
)
# Victoria's bounding box (lat min, lat max, lon min, lon max);
# [2018] spans lat -39.02..-34.16, lon 141.0..149.75.
_VIC_BOX = (-39.15, -34.0, 140.97, 149.97)

# ---------------------------------------------------------------------------------------------
# Road: [2018] speed zone by rural/metro; accident type by speed band x time band; geometry by type.
# ---------------------------------------------------------------------------------------------
_SPEED_ZONES = (
    "30km/hr", "40 km/hr", "50 km/hr", "60 km/hr", "70 km/hr", "75 km/hr", "80 km/hr", "90 km/hr",
    "100 km/hr", "110 km/hr", "Camping grounds or off road", "Not known", "Other speed limit",
)  # fmt: skip
_SPEED_ZONE_COUNTS = (  # [2018] (rural, metro) per _SPEED_ZONES entry
    (5, 14), (103, 740), (461, 1362), (731, 2933), (105, 557), (1, 1), (389, 1342), (7, 14),
    (1086, 457), (97, 11), (51, 39), (143, 487), (6, 21),
)  # fmt: skip
# Speed band used by the accident-type table: 0 = up to 60 or unknown, 1 = 70..90, 2 = 100..110.
_SPEED_BAND = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0, 0])

_ACCIDENT_TYPES = (
    "Collision with a fixed object", "Collision with vehicle", "Fall from or in moving vehicle",
    "No collision and no object struck", "Other accident", "Struck Pedestrian", "Struck animal",
    "Vehicle overturned (no collision)", "collision with some other object",
)  # fmt: skip
_FIXED, _VEHICLE, _FALL, _NOCOLL, _OTHER, _PED, _ANIMAL, _OVERTURN, _OBJECT = range(9)
# [2018] accident type counts; rows = speed band (0, 1, 2) x time band (day, 18-21 h, 22-05 h).
_ACCIDENT_TYPE_COUNTS = (
    (442, 3597, 34, 185, 6, 701, 10, 151, 45),
    (136, 864, 6, 45, 1, 196, 4, 38, 6),
    (186, 294, 5, 24, 1, 75, 2, 34, 8),
    (235, 1332, 6, 37, 0, 62, 6, 58, 6),
    (55, 275, 1, 7, 1, 23, 6, 19, 3),
    (117, 116, 1, 8, 0, 18, 9, 10, 5),
    (379, 525, 3, 59, 0, 9, 37, 128, 27),
    (112, 81, 3, 8, 0, 1, 24, 37, 4),
    (110, 43, 0, 9, 1, 2, 16, 23, 10),
)
_ROAD_GEOMETRIES = (
    "Cross intersection", "Dead end", "Multiple intersection", "Not at intersection",
    "Private property", "Road closure", "T intersection", "Unknown", "Y intersection",
)  # fmt: skip
_INTERSECTION = np.array([1, 0, 1, 0, 0, 0, 1, 0, 1], dtype=bool)
_ROAD_GEOMETRY_COUNTS = (  # [2018] per accident type (rows) x _ROAD_GEOMETRIES
    (107, 5, 15, 1407, 1, 0, 222, 6, 9),
    (2037, 11, 156, 3060, 0, 1, 1840, 10, 12),
    (6, 0, 0, 42, 0, 0, 10, 1, 0),
    (54, 1, 7, 249, 0, 0, 67, 0, 4),
    (1, 0, 0, 6, 0, 0, 3, 0, 0),
    (276, 1, 17, 556, 1, 0, 235, 0, 1),
    (0, 0, 1, 104, 0, 0, 8, 1, 0),
    (43, 0, 4, 372, 0, 0, 76, 2, 1),
    (2, 0, 0, 100, 0, 0, 11, 0, 1),
)
_NODE_TYPES = ("Intersection", "Non-Intersection", "Off Road")
_NODE_TYPE_COUNTS = (  # [2018] per _ROAD_GEOMETRIES entry
    (2355, 167, 4), (0, 18, 0), (156, 44, 0), (172, 5622, 102), (1, 1, 0), (0, 1, 0),
    (2133, 323, 15), (4, 16, 0), (23, 5, 0),
)  # fmt: skip
_HIT_RUN = ("No", "Not known", "Yes")
_HIT_RUN_COUNTS = (  # [2018-lc] per accident type
    (1660, 7, 36), (6343, 18, 348), (45, 1, 1), (309, 3, 8), (8, 2, 0), (860, 9, 120),
    (103, 0, 0), (431, 3, 9), (89, 0, 3),
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Vehicles and people ([2018] unless noted).
# ---------------------------------------------------------------------------------------------
# no_of_vehicles 1, 2, 3, 4, 5, 6+ per accident type.
_NO_OF_VEHICLES_COUNTS = (
    (1664, 94, 14, 0, 0, 0), (0, 5901, 912, 233, 57, 24), (54, 4, 1, 0, 0, 0),
    (295, 78, 8, 1, 0, 0), (9, 1, 0, 0, 0, 0), (1043, 36, 6, 1, 1, 0), (109, 3, 1, 1, 0, 0),
    (453, 43, 2, 0, 0, 0), (96, 15, 2, 1, 0, 0),
)  # fmt: skip
# Vehicles per type (passenger vehicle, motorcycle, heavy, public, other = bicycles and the rest)
# per accident type; and the share of "other" vehicles that carried a recorded bicyclist.
_VEHICLE_TYPE_COUNTS = (
    (1624, 161, 43, 1, 65), (12756, 884, 421, 116, 1729), (31, 22, 1, 3, 8), (132, 260, 7, 2, 78),
    (5, 1, 0, 2, 3), (936, 21, 15, 34, 136), (64, 49, 1, 0, 8), (185, 266, 45, 1, 48),
    (71, 45, 8, 0, 12),
)  # fmt: skip
_BICYCLE_SHARE_OF_OTHER = (0.09, 0.63, 0.63, 0.65, 0.67, 0.18, 0.0, 0.33, 0.33)
_PILLION_PER_MOTORIST = 0.0435  # 74 pillions / 1,701 motorists
_OLD_PEDESTRIAN_SHARE = 0.187  # old_pedestrian / pedestrian
# Passengers per car/heavy/public vehicle by time band (day, evening, night): 0.321, 0.384, 0.387;
# drawn negative-binomial (dispersion 0.35) so ~72 % of crashes have no passenger, as in [2018].
_PASSENGER_MEAN = (0.321, 0.384, 0.387)
_PASSENGER_DISPERSION = 0.35
# Share of crashes with >= 1 pedestrian per accident type (Struck Pedestrian: always).
_PEDESTRIAN_SHARE = (0.0096, 0.0048, 0.051, 0.021, 0.30, 1.0, 0.0, 0.0, 0.044)
_EXTRA_PEDESTRIANS = (0.940, 0.050, 0.010)  # Struck Pedestrian: 1017 / 54 / 12+ with 1 / 2 / 3+
# Persons whose role is not recorded (total_persons exceeds the role columns): 4.2 % of crashes,
# 1 + geometric extra (394 / 52 / 11 / 7 crashes with 1 / 2 / 3 / 4+).
_UNKNOWN_ROLE_SHARE = 0.042
_UNKNOWN_ROLE_GEOMETRIC = 0.84
_PARKED_SHARE = 0.08  # assumed: other vehicles of multi-vehicle crashes with nobody in them
_OTHER_VEHICLE_DRIVER_SHARE = 0.5  # assumed: non-bicycle "other" vehicles with a driver
# (male, female) shares per person of each role by time band (day, evening, night): least-squares
# fit of males and females on the role counts in [2018]; the rest are of unknown sex.
_SEX_SHARES: dict[str, tuple[tuple[float, float], ...]] = {
    "driver": ((0.57, 0.43), (0.57, 0.41), (0.69, 0.27)),
    "motorist": ((0.90, 0.04),) * 3,
    "passenger": ((0.38, 0.48), (0.42, 0.44), (0.55, 0.38)),
    "pedestrian": ((0.42, 0.50), (0.57, 0.35), (0.78, 0.18)),
    "bicyclist": ((0.72, 0.20),) * 3,
    "pillion": ((0.19, 0.69),) * 3,
    "unknown": ((0.27, 0.17),) * 3,
}
_YOUNG_SHARE = (0.157, 0.230, 0.292)  # young_driver / (driver + motorist) by time band
_OLD_SHARE = (0.052, 0.029, 0.014)  # old_driver / (driver + motorist) by time band
# [2015s]: 23 of 554 crashes had an unlicensed driver (4.2 %); 4.0 % base x 1.2 with a young
# driver gives that overall (the 1.2 is an assumption: 8/170 vs 15/384 in [2015s] is too thin).
_UNLICENSED_SHARE = 0.040
_UNLICENSED_YOUNG_FACTOR = 1.2

# Injuries: inj_or_fatal = 1 + BetaBinomial(total_persons - 1, a, b), a and b fitted to the
# [2018] distribution of inj_or_fatal given total_persons (1: 81.5 %, 2: 13.6 %, 3: 3.1 %, ...).
_EXTRA_INJURED_BETA = (0.2, 0.85)
_SEVERITIES = ("Fatal accident", "Other injury accident", "Serious injury accident")
_SEVERITY_COUNTS = (  # [2018] (fatal, other, serious) per accident type
    (64, 1013, 695), (80, 5637, 1410), (1, 28, 30), (8, 254, 120), (1, 4, 5), (32, 701, 354),
    (0, 79, 35), (4, 313, 181), (1, 78, 35),
)  # fmt: skip
# Speed band multipliers on the fatal and serious shares: [2018] observed / expected-from-type
# counts per speed band (fatal 0.51, 1.43, 2.24; serious 0.88, 1.12, 1.28).
_FATAL_SPEED_FACTOR = (0.5, 1.4, 2.2)
_SERIOUS_SPEED_FACTOR = (0.88, 1.12, 1.28)
_EXTRA_FATALITY = 0.047  # fatal crashes with > 1 death: 9 / 191
_SERIOUS_IN_FATAL = 0.64  # serious injuries among other injured persons of fatal crashes
_EXTRA_SERIOUS = 0.40  # serious injuries among other injured persons of serious crashes

# ---------------------------------------------------------------------------------------------
# Light: a sunrise/sunset model (solar declination, equation of time, AEST + daylight saving),
# with the dusk/dawn band widths tuned so Dusk/Dawn is ~5 % as in [2018-lc] (535 / 10,416);
# "Unk." 1.6 % (169 / 10,416). Dark is split by street lighting with [2015s] shares
# (metro: on 113, none 22, unknown 9, off 4; rural: on 13, none 27, unknown 3, off 0 -> 1).
# ---------------------------------------------------------------------------------------------
_LIGHTS = (
    "Day", "Dusk/Dawn", "Dark Street lights on", "Dark No street lights", "Dark Street lights off",
    "Dark Street lights unknown", "Unk.",
)  # fmt: skip
_LIGHT_LEVEL = np.array([0, 1, 2, 2, 2, 2, 3])  # label model: day, dusk/dawn, dark, unknown
_DARK_COUNTS = ((13, 27, 1, 3), (113, 22, 4, 9))  # (rural, metro) x (on, none, off, unknown)
_UNKNOWN_LIGHT_SHARE = 0.016
# Windows (minutes from sunrise / sunset) and the clock noise were grid-searched against the
# [2018-lc] light shares per hour and half-year (mean total-variation distance 2.8 points).
_DAWN_WINDOW = (-45.0, 0.0)  # minutes around sunrise reported as Dusk/Dawn
_DUSK_WINDOW = (-25.0, 0.0)  # minutes around sunset reported as Dusk/Dawn
_LIGHT_FUZZ_MINUTES = 20.0

# ---------------------------------------------------------------------------------------------
# Definitions for classifying collisions (DCA) per accident type and intersection / not, from the
# [2015s] counts; a code seen there only at intersections is never drawn off them. Two weights
# marked (*) are assumptions for types [2015s] saw once.
# ---------------------------------------------------------------------------------------------
_DCA_TABLES: dict[tuple[int, bool], tuple[tuple[str, int], ...]] = {
    (_FIXED, False): (
        ("LEFT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE", 25),
        ("RIGHT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE", 14),
        ("OFF LEFT BEND INTO OBJECT/PARKED VEHICLE", 14),
        ("OFF RIGHT BEND INTO OBJECT/PARKED VEHICLE", 11),
        ("OTHER ACCIDENTS-OFF STRAIGHT NOT INCLUDED IN DCAs 170-175", 2),
        ("OTHER MANOEUVRING NOT INCLUDED IN DCAs 140-148", 2),
        ("OTHER ACCIDENTS ON CURVE NOT INCLUDED IN DCAs 180-184", 1),
        ("REVERSING INTO FIXED OBJECT/PARKED VEHICLE", 1),
    ),
    (_FIXED, True): (
        ("LEFT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE", 8),
        ("RIGHT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE", 4),
        ("OFF LEFT BEND INTO OBJECT/PARKED VEHICLE", 3),
        ("OFF END OF ROAD/T-INTERSECTION.", 1),
        ("PARKED CAR RUN AWAY", 1),
        ("PERMANENT OBSTRUCTION ON CARRIAGEWAY", 1),
    ),
    (_VEHICLE, False): (
        ("REAR END(VEHICLES IN SAME LANE)", 57),
        ("HEAD ON (NOT OVERTAKING)", 13),
        ("VEHICLE STRIKES ANOTHER VEH WHILE EMERGING FROM DRIVEWAY", 12),
        ("VEHICLE COLLIDES WITH VEHICLE PARKED ON LEFT OF ROAD", 8),
        ("RIGHT REAR.", 5),
        ("VEHICLE STRIKES DOOR OF PARKED/STATIONARY VEHICLE", 4),
        ("LANE SIDE SWIPE (VEHICLES IN PARALLEL LANES)", 4),
        ("LANE CHANGE RIGHT (NOT OVERTAKING)", 4),
        ("RIGHT THROUGH", 4),
        ("LANE CHANGE LEFT (NOT OVERTAKING)", 3),
        ("LEAVING PARKING", 3),
        ("ACCIDENT OR BROKEN DOWN", 2),
        ("OTHER ON PATH", 2),
        ("ENTERING PARKING", 2),
        ("OTHER ACCIDENTS NOT CLASSIFIABLE ELSEWHERE", 1),
        ("PULLING OUT (OVERTAKING)", 1),
        ("VEHICLE OFF FOOTPATH STRIKES VEH ON CARRIAGEWAY", 1),
        ("U TURN", 1),
        ("RIGHT TURN SIDESWIPE", 1),
        ("LEFT OFF CARRIAGEWAY INTO OBJECT/PARKED VEHICLE", 1),
        ("REVERSING IN STREAM OF TRAFFIC", 1),
    ),
    (_VEHICLE, True): (
        ("RIGHT THROUGH", 46),
        ("CROSS TRAFFIC(INTERSECTIONS ONLY)", 41),
        ("REAR END(VEHICLES IN SAME LANE)", 38),
        ("RIGHT NEAR (INTERSECTIONS ONLY)", 23),
        ("RIGHT REAR.", 8),
        ("LEFT NEAR (INTERSECTIONS ONLY)", 7),
        ("U TURN", 7),
        ("VEHICLE STRIKES ANOTHER VEH WHILE EMERGING FROM DRIVEWAY", 6),
        ("RIGHT FAR (INTERSECTIONS ONLY)", 6),
        ("VEHICLE OFF FOOTPATH STRIKES VEH ON CARRIAGEWAY", 4),
        ("LEFT REAR", 4),
        ("LEFT TURN SIDESWIPE", 3),
        ("HEAD ON (NOT OVERTAKING)", 3),
        ("VEHICLE STRIKES DOOR OF PARKED/STATIONARY VEHICLE", 2),
        ("OTHER ADJACENT (INTERSECTIONS ONLY)", 2),
        ("LANE SIDE SWIPE (VEHICLES IN PARALLEL LANES)", 2),
        ("VEHICLE COLLIDES WITH VEHICLE PARKED ON LEFT OF ROAD", 1),
        ("OTHER ON PATH", 1),
        ("PULLING OUT (OVERTAKING)", 1),
        ("CUTTING IN (OVERTAKING)", 1),
        ("RIGHT/LEFT FAR (INTERSECTIONS ONLY)", 1),
    ),
    (_FALL, False): (("FELL IN/FROM VEHICLE", 2),),
    (_NOCOLL, False): (
        ("OUT OF CONTROL ON CARRIAGEWAY (ON STRAIGHT)", 10),
        ("OTHER ACCIDENTS-OFF STRAIGHT NOT INCLUDED IN DCAs 170-175", 6),
        ("OFF CARRIAGEWAY TO LEFT", 4),
        ("OTHER ACCIDENTS ON CURVE NOT INCLUDED IN DCAs 180-184", 3),
        ("UNKNOWN-NO DETAILS ON MANOEUVRES OF ROAD-USERS IN ACCIDENT", 1),
        ("OTHER ACCIDENTS NOT CLASSIFIABLE ELSEWHERE", 1),
        ("OTHER MANOEUVRING NOT INCLUDED IN DCAs 140-148", 1),
        ("OUT OF CONTROL ON CARRIAGEWAY (ON BEND)", 1),
        ("OFF CARRIAGEWAY TO RIGHT", 1),
    ),
    (_NOCOLL, True): (
        ("OUT OF CONTROL ON CARRIAGEWAY (ON STRAIGHT)", 4),
        ("OFF CARRIAGEWAY ON RIGHT BEND", 2),
        ("OFF CARRIAGEWAY TO RIGHT", 2),
        ("OFF CARRIAGEWAY ON LEFT BEND", 1),
    ),
    (_OTHER, False): (
        ("PARKED CAR RUN AWAY", 1),
        ("OTHER ACCIDENTS NOT CLASSIFIABLE ELSEWHERE", 1),  # (*)
    ),
    (_PED, False): (
        ("ANY MANOEUVRE INVOLVING PED NOT INCLUDED IN DCAs 100-108.", 11),
        ("FAR SIDE. PED HIT BY VEHICLE FROM THE LEFT", 7),
        ("PED NEAR SIDE. PED HIT BY VEHICLE FROM THE RIGHT.", 3),
        ("PED EMERGES FROM IN FRONT OF PARKED OR STATIONARY VEHICLE", 2),
        ("PED STRUCK WALKING TO/FROM OR BOARDING/ALIGHTING VEHICLE.", 2),
        ("VEH STRIKES PED ON FOOTPATH/MEDIAN/TRAFFIC ISLAND.", 2),
        ("PED ON FOOTHPATH STRUCK BY VEHENTERING/LEAVING DRIVEWAY.", 1),
        ("PED PLAYING/LYING/WORKING/STANDING ON CARRIAGEWAY.", 1),
        ("PED WALKING WITH TRAFFIC", 1),
        ("PED WALKING AGAINST TRAFFIC.", 1),
    ),
    (_PED, True): (
        ("PED NEAR SIDE. PED HIT BY VEHICLE FROM THE RIGHT.", 11),
        ("FAR SIDE. PED HIT BY VEHICLE FROM THE LEFT", 9),
        ("PED STRUCK WALKING TO/FROM OR BOARDING/ALIGHTING VEHICLE.", 1),
        ("VEH STRIKES PED ON FOOTPATH/MEDIAN/TRAFFIC ISLAND.", 1),
    ),
    (_ANIMAL, False): (("STRUCK ANIMAL", 4),),
    (_OVERTURN, False): (
        ("OUT OF CONTROL ON CARRIAGEWAY (ON STRAIGHT)", 5),
        ("OFF CARRIAGEWAY ON RIGHT BEND", 4),
        ("OFF CARRIAGEWAY ON LEFT BEND", 4),
        ("OFF CARRIAGEWAY TO RIGHT", 3),
        ("OUT OF CONTROL ON CARRIAGEWAY (ON BEND)", 3),
        ("OFF CARRIAGEWAY TO LEFT", 2),
        ("OTHER ACCIDENTS NOT CLASSIFIABLE ELSEWHERE", 2),
        ("OTHER ACCIDENTS ON CURVE NOT INCLUDED IN DCAs 180-184", 1),
        ("OTHER ACCIDENTS-OFF STRAIGHT NOT INCLUDED IN DCAs 170-175", 1),
    ),
    (_OVERTURN, True): (
        ("OUT OF CONTROL ON CARRIAGEWAY (ON STRAIGHT)", 2),
        ("OFF CARRIAGEWAY TO RIGHT", 1),
        ("OFF CARRIAGEWAY ON RIGHT BEND", 1),
    ),
    (_OBJECT, False): (
        ("STRUCK OBJECT ON CARRIAGEWAY", 1),
        ("PERMANENT OBSTRUCTION ON CARRIAGEWAY", 1),  # (*)
    ),
}


def _dca_group(code: str) -> int:
    """DCA family for the label model: 0 other, 1 loss of control, 2 head on, 3 low risk."""
    if any(k in code for k in ("OFF CARRIAGEWAY", "OUT OF CONTROL", "BEND INTO", "OFF END OF")):
        return 1
    if code.startswith("HEAD ON"):
        return 2
    if any(k in code for k in ("REAR END", "PARKING", "DOOR OF", "REVERSING", "PARKED CAR")):
        return 3
    return 0


def _build_dca() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Code list, weight matrix (accident type * 2 + intersection, code) and code -> DCA family."""
    codes = tuple(sorted({c for table in _DCA_TABLES.values() for c, _ in table}))
    index = {c: i for i, c in enumerate(codes)}
    weights = np.zeros((len(_ACCIDENT_TYPES) * 2, len(codes)))
    for t in range(len(_ACCIDENT_TYPES)):
        for inter in (False, True):
            table = _DCA_TABLES.get((t, inter)) or _DCA_TABLES[(t, not inter)]
            for code, count in table:
                if inter or "INTERSECTIONS ONLY" not in code:
                    weights[t * 2 + int(inter), index[code]] = count
    groups = np.array([_dca_group(c) for c in codes])
    return codes, weights, groups


_DCA_CODES, _DCA_WEIGHTS, _DCA_GROUP = _build_dca()

# ---------------------------------------------------------------------------------------------
# Label: logit(P(alcohol_related)) = intercept + sum of one coefficient per factor level.
# Tuned offline so synthetic rates per level match [2018] rates (shrunk towards 3.2 % with 20
# pseudo-crashes; hourly rates smoothed 1-2-1 over neighbouring hours). The unlicensed and DCA
# coefficients are assumptions (not in [2018]; [2015s] odds ratio for unlicensed ~4 on 2 of 14).
# ---------------------------------------------------------------------------------------------
_INTERCEPT = -1.95  # reference: hour 0, Monday, fixed object, 1 vehicle, 60 km/hr, Day, ...
_COEF: dict[str, tuple[float, ...]] = {
    # hour of day 0..23
    "hour": (
        0.00, 0.19, 0.07, -0.18, -0.45, -1.17, -0.82, -1.52, -2.43, -3.21, -3.19, -3.15,
        -2.76, -2.12, -1.59, -1.40, -1.54, -1.44, -1.07, -0.57, -0.64, -0.48, -0.51, -0.13,
    ),
    "weekday": (0.00, -0.18, -0.22, -0.20, 0.02, 0.05, 0.81),  # Mon..Sun
    "party_night": (0.00, 0.78),  # Fri/Sat 20:00-24:00 and Sat/Sun 00:00-06:00
    "accident_type": (0.00, -0.47, -1.18, -0.71, -1.46, -1.90, -2.00, -0.40, -1.81),
    "vehicles": (0.00, -0.57, -0.05),  # 1, 2, 3+
    "young_driver": (0.00, 0.18, -0.55),  # 0, 1, 2+
    "male_majority": (0.00, 0.78),  # males > females
    "speed": (  # per _SPEED_ZONES entry
        -0.48, -0.07, 0.46, 0.00, -0.49, -0.73, -0.24, -1.18, -0.44, -0.54, -0.93, -0.72, -0.93,
    ),
    "light": (0.00, -0.77, 0.05, -1.04),  # day, dusk/dawn, dark, unknown
    "heavy_vehicle": (0.00, -0.45),
    "motorcycle": (0.00, -0.62),
    "old_driver": (0.00, -1.27),
    "severity": (0.00, -0.64, 0.16),  # fatal, other injury, serious injury
    "rural": (0.00, 0.51),
    "hit_run": (0.00, -1.46, 0.77),  # No, Not known, Yes
    "unlicensed": (0.00, 1.20),  # assumption, see above
    "dca_group": (0.00, 0.30, 0.30, -0.40),  # other, loss of control, head on, low-risk; assumed
}  # fmt: skip


def _cdf(weights: object) -> np.ndarray:
    """Row-normalised cumulative distribution of a weight vector or matrix."""
    w = np.asarray(weights, dtype=float)
    c = np.cumsum(w, axis=-1)
    return c / c[..., -1:]


def _draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """``n`` inverse-CDF draws from one distribution."""
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1)


def _draw_given(rng: np.random.Generator, cdf: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """One inverse-CDF draw per row from the distribution ``cdf[cond[i]]``."""
    k = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()  # row r lives in (r, r + 1]
    idx = np.searchsorted(flat, cond + rng.random(len(cond)), side="right") - cond * k
    return np.minimum(idx, k - 1)


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 .. Sunday = 6 for ``datetime64[D]`` values (1970-01-01 was a Thursday)."""
    return (days.astype("int64") + 3) % 7


def _first_sunday(month_starts: np.ndarray) -> np.ndarray:
    """The first Sunday on or after each ``datetime64[D]`` month start."""
    return month_starts + (6 - _weekday(month_starts)) % 7


def _daylight_saving(days: np.ndarray) -> np.ndarray:
    """Victorian daylight saving: first Sunday of October to (before) first Sunday of April."""
    years = days.astype("datetime64[Y]")
    uniq, inv = np.unique(years, return_inverse=True)
    months = uniq.astype("datetime64[M]")
    starts = _first_sunday((months + 9).astype("datetime64[D]"))
    ends = _first_sunday((months + 3).astype("datetime64[D]"))
    return (days >= starts[inv]) | (days < ends[inv])


def _light(
    rng: np.random.Generator,
    days: np.ndarray,
    minute_of_day: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    metro: np.ndarray,
) -> np.ndarray:
    """Index into ``_LIGHTS`` from the sun's position at the crash's place and clock time."""
    n = len(days)
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype("int64") + 1
    decl = np.radians(-23.44) * np.cos(2 * np.pi * (doy + 10) / 365)
    cos_w = np.clip(-np.tan(np.radians(lat)) * np.tan(decl), -1.0, 1.0)
    half_day = np.degrees(np.arccos(cos_w)) * 4.0  # minutes from solar noon to sunset
    b = 2 * np.pi * (doy - 81) / 364
    eot = 9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)  # equation of time, minutes
    noon = 720.0 + 4.0 * (150.0 - lon) - eot + 60.0 * _daylight_saving(days)
    t = minute_of_day + rng.normal(0.0, _LIGHT_FUZZ_MINUTES, n)
    from_rise = t - (noon - half_day)
    from_set = t - (noon + half_day)
    twilight = ((from_rise > _DAWN_WINDOW[0]) & (from_rise < _DAWN_WINDOW[1])) | (
        (from_set > _DUSK_WINDOW[0]) & (from_set < _DUSK_WINDOW[1])
    )
    day = (from_rise >= _DAWN_WINDOW[1]) & (from_set <= _DUSK_WINDOW[0])
    dark_kind = 2 + _draw_given(rng, _cdf(_DARK_COUNTS), metro.astype(np.int64))
    light = np.where(twilight, 1, np.where(day, 0, dark_kind))
    light[rng.random(n) < _UNKNOWN_LIGHT_SHARE] = len(_LIGHTS) - 1
    return light


def _simulate(
    rng: np.random.Generator, n: int, start: date, end: date
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Draw every column but the label; return (columns, label-model factor levels)."""
    # -- when: day weighted by month and weekday, hour by weekday group, heaped minutes; sorted.
    all_days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    wd_all = _weekday(all_days)
    month_all = all_days.astype("datetime64[M]").astype("int64") % 12
    day_w = (
        np.asarray(_MONTH_COUNTS)[month_all]
        / np.asarray(_DAYS_IN_MONTH)[month_all]
        * np.asarray(_WEEKDAY_COUNTS)[wd_all]
    )
    day_idx = _draw(rng, _cdf(day_w), n)
    wd = wd_all[day_idx]
    hour_group = np.select([wd <= 3, wd == 4, wd == 5], [0, 1, 2], 3)
    hour = _draw_given(rng, _cdf(_HOUR_COUNTS), hour_group)
    minute_w = np.full(60, _MINUTE_COUNT_OTHER)
    minute_w[::5] = _MINUTE_COUNTS_5
    minute = _draw(rng, _cdf(minute_w), n)
    key = np.sort(day_idx * 1440 + hour * 60 + minute)
    day_idx, tod = key // 1440, key % 1440
    hour = tod // 60
    days, wd = all_days[day_idx], wd_all[day_idx]
    band = np.where((hour >= 22) | (hour <= 5), 2, np.where(hour >= 18, 1, 0))  # day/eve/night

    # -- where: LGA by crash count, jittered around its median point, kept inside Victoria.
    lga_table = np.array([row[1:] for row in _LGAS], dtype=float)
    lga = _draw(rng, _cdf(lga_table[:, 1]), n)
    region = lga_table[lga, 0].astype(np.int64)
    metro = (region == 1) | (region == 2)
    jitter = np.clip(rng.standard_normal((n, 2)), -2.5, 2.5)
    lat = np.clip(lga_table[lga, 2] + lga_table[lga, 4] * jitter[:, 0], *_VIC_BOX[:2])
    lon = np.clip(lga_table[lga, 3] + lga_table[lga, 5] * jitter[:, 1], *_VIC_BOX[2:])

    # -- road and crash type.
    speed = _draw_given(rng, _cdf(np.asarray(_SPEED_ZONE_COUNTS).T), metro.astype(np.int64))
    atype = _draw_given(rng, _cdf(_ACCIDENT_TYPE_COUNTS), _SPEED_BAND[speed] * 3 + band)
    geometry = _draw_given(rng, _cdf(_ROAD_GEOMETRY_COUNTS), atype)
    node = _draw_given(rng, _cdf(_NODE_TYPE_COUNTS), geometry)
    hit_run = _draw_given(rng, _cdf(_HIT_RUN_COUNTS), atype)
    dca = _draw_given(rng, _cdf(_DCA_WEIGHTS), atype * 2 + _INTERSECTION[geometry])

    # -- vehicles: the first vehicle's type depends on the accident type; the others (multi-vehicle
    # crashes) follow the mix of "Collision with vehicle". Some of those others were parked.
    nv = _draw_given(rng, _cdf(_NO_OF_VEHICLES_COUNTS), atype) + 1
    nv = np.minimum(nv + np.where(nv == 6, rng.geometric(0.6, n) - 1, 0), 9)
    vtype_cdf = _cdf(_VEHICLE_TYPE_COUNTS)
    vehicles = np.zeros((n, 5), dtype=np.int64)
    parked = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for slot in range(int(nv.max(initial=0))):
        cond = atype if slot == 0 else np.full(n, _VEHICLE)
        kind = _draw_given(rng, vtype_cdf, cond)
        active = nv > slot
        vehicles[rows[active], kind[active]] += 1
        if slot:
            parked += active & (kind != 1) & (kind != 4) & (rng.random(n) < _PARKED_SHARE)
    car, moto, heavy, public, other = vehicles.T
    carish = car + heavy + public

    # -- people: one operator per vehicle (none if parked), passengers, pedestrians, unknowns.
    bicyclist = rng.binomial(other, np.asarray(_BICYCLE_SHARE_OF_OTHER)[atype])
    driver = carish - parked + rng.binomial(other - bicyclist, _OTHER_VEHICLE_DRIVER_SHARE)
    motorist = rng.binomial(moto, 0.995)
    pillion = rng.binomial(motorist, _PILLION_PER_MOTORIST)
    mean = np.asarray(_PASSENGER_MEAN)[band]
    disp = _PASSENGER_DISPERSION * np.maximum(carish, 1)
    passenger = rng.negative_binomial(disp, disp / (disp + mean * np.maximum(carish, 1)))
    passenger = np.where(carish > 0, passenger, 0)
    has_ped = rng.random(n) < np.asarray(_PEDESTRIAN_SHARE)[atype]
    extra_ped = _draw(rng, _cdf(_EXTRA_PEDESTRIANS), n)
    pedestrian = has_ped * (1 + np.where(atype == _PED, extra_ped, 0))
    old_pedestrian = rng.binomial(pedestrian, _OLD_PEDESTRIAN_SHARE)
    unknown = (rng.random(n) < _UNKNOWN_ROLE_SHARE) * rng.geometric(_UNKNOWN_ROLE_GEOMETRIC, n)
    nobody = (driver + passenger + pedestrian + bicyclist + motorist + pillion) == 0
    bicyclist = bicyclist + (nobody & (other > 0))
    motorist = motorist + (nobody & (other == 0) & (moto > 0))
    driver = driver + (nobody & (other == 0) & (moto == 0))
    total = driver + passenger + pedestrian + bicyclist + motorist + pillion + unknown
    males = np.zeros(n, dtype=np.int64)
    females = np.zeros(n, dtype=np.int64)
    for role, count in (
        ("driver", driver), ("motorist", motorist), ("passenger", passenger),
        ("pedestrian", pedestrian), ("bicyclist", bicyclist), ("pillion", pillion),
        ("unknown", unknown),
    ):  # fmt: skip
        share = np.asarray(_SEX_SHARES[role])[band]  # (n, 2): male, female
        m = rng.binomial(count, share[:, 0])
        males += m
        females += rng.binomial(count - m, share[:, 1] / (1.0 - share[:, 0]))
    operators = driver + motorist
    p_young = np.asarray(_YOUNG_SHARE)[band]
    young = rng.binomial(operators, p_young)
    old = rng.binomial(operators - young, np.asarray(_OLD_SHARE)[band] / (1 - p_young))
    p_unlicensed = _UNLICENSED_SHARE * np.where(young > 0, _UNLICENSED_YOUNG_FACTOR, 1.0)
    unlicensed = ((operators > 0) & (rng.random(n) < p_unlicensed)).astype(np.int64)

    # -- injuries: at least one injured person; severity is the worst injury.
    injured = 1 + rng.binomial(total - 1, rng.beta(*_EXTRA_INJURED_BETA, n))
    sev_base = np.asarray(_SEVERITY_COUNTS, dtype=float)
    sev_base /= sev_base.sum(axis=1, keepdims=True)
    speed_band = _SPEED_BAND[speed]
    p_fatal = sev_base[atype, 0] * np.asarray(_FATAL_SPEED_FACTOR)[speed_band]
    p_serious = sev_base[atype, 2] * np.asarray(_SERIOUS_SPEED_FACTOR)[speed_band]
    u = rng.random(n)
    severity = np.where(u < p_fatal, 0, np.where(u < p_fatal + p_serious, 2, 1))
    fatal = severity == 0
    fatality = np.where(fatal, np.minimum(1 + (rng.random(n) < _EXTRA_FATALITY), injured), 0)
    serious = np.where(
        fatal,
        rng.binomial(injured - fatality, _SERIOUS_IN_FATAL),
        np.where(severity == 2, 1 + rng.binomial(injured - 1, _EXTRA_SERIOUS), 0),
    )
    light = _light(rng, days, tod, lat, lon, metro)

    columns = {
        "days": days, "weekday": wd, "minute_of_day": tod, "atype": atype, "geometry": geometry,
        "severity": severity, "speed": speed, "node": node, "lga": lga, "region": region,
        "lat": lat, "lon": lon, "total_persons": total, "inj_or_fatal": injured,
        "fatality": fatality, "seriousinjury": serious,
        "otherinjury": injured - fatality - serious, "noninjured": total - injured,
        "males": males, "females": females, "bicyclist": bicyclist, "passenger": passenger,
        "driver": driver, "pedestrian": pedestrian, "pillion": pillion, "motorist": motorist,
        "old_pedestrian": old_pedestrian, "old_driver": old, "young_driver": young,
        "no_of_vehicles": nv, "heavyvehicle": heavy, "passengervehicle": car,
        "motorcycle": moto, "publicvehicle": public, "hit_run": hit_run, "light": light,
        "dca": dca, "unlicencsed": unlicensed,
    }  # fmt: skip
    party = ((wd >= 4) & (wd <= 5) & (hour >= 20)) | ((wd >= 5) & (hour < 6))
    levels = {
        "hour": hour,
        "weekday": wd,
        "party_night": party.astype(np.int64),
        "accident_type": atype,
        "vehicles": np.minimum(nv, 3) - 1,
        "young_driver": np.minimum(young, 2),
        "male_majority": (males > females).astype(np.int64),
        "speed": speed,
        "light": _LIGHT_LEVEL[light],
        "heavy_vehicle": (heavy > 0).astype(np.int64),
        "motorcycle": (moto > 0).astype(np.int64),
        "old_driver": (old > 0).astype(np.int64),
        "severity": severity,
        "rural": (~metro).astype(np.int64),
        "hit_run": hit_run,
        "unlicensed": unlicensed,
        "dca_group": _DCA_GROUP[dca],
    }
    return columns, levels


def _logit(levels: dict[str, np.ndarray]) -> np.ndarray:
    """Latent log-odds of an alcohol-related crash from the factor levels."""
    z = np.full(len(levels["hour"]), _INTERCEPT)
    for name, level in levels.items():
        z += np.asarray(_COEF[name])[level]
    return z


def _accident_numbers(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """``T<year><7 digits>``, increasing with the (sorted) date, unique, with small gaps."""
    n = len(days)
    if n == 0:
        return np.zeros(0, dtype=object)
    years = days.astype("datetime64[Y]").astype("int64") + 1970
    first = np.r_[0, np.flatnonzero(np.diff(years)) + 1]  # first row of each year
    group = np.cumsum(np.isin(np.arange(n), first)) - 1
    for step in (rng.integers(1, 4, n), np.ones(n, dtype=np.int64)):
        cum = np.cumsum(step)
        seq = 100 + cum - (cum[first] - step[first])[group]
        if seq.max() <= 9_999_999:
            break
    else:
        raise InputError("too many crashes in one year for 7-digit accident numbers")
    text = np.char.add(np.char.add("T", years.astype("U4")), np.char.zfill(seq.astype("U7"), 7))
    return text.astype(object)


def generate_crashes(
    rows: int,
    seed: int = 0,
    start: date = date(2018, 1, 1),
    end: date = date(2018, 12, 31),
) -> pd.DataFrame:
    """Generate ``rows`` synthetic crashes dated ``start``..``end`` (inclusive), sorted by time.

    Deterministic for a given ``seed``. Columns are :data:`COLUMNS` (VicRoads lower-case CSV
    shape); ``alcohol_related`` is "Yes"/"No" with about 3.2 % "Yes" over a whole year.
    """
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 0:
        raise InputError(f"rows must be a non-negative integer, got {rows!r}")
    if start > end:
        raise InputError(f"start {start} is after end {end}")
    n = int(rows)
    rng = np.random.default_rng(seed)
    c, levels = _simulate(rng, n, start, end)
    alcohol = rng.random(n) < 1.0 / (1.0 + np.exp(-_logit(levels)))

    def text(labels: object, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
        return pd.array(np.asarray(labels, dtype=object), dtype="str").take(codes)

    unique_days, day_codes = np.unique(c["days"], return_inverse=True)
    clock = [f"{m // 60:02d}.{m % 60:02d}.00" for m in range(1440)]
    frame = pd.DataFrame(
        {
            "OBJECTID": 3_500_000 + np.arange(n, dtype=np.int64),
            "accident_no": pd.array(_accident_numbers(rng, c["days"]), dtype="str"),
            "accident_date": text(np.datetime_as_string(unique_days, unit="D"), day_codes),
            "accident_time": text(clock, c["minute_of_day"]),
            "accident_type": text(_ACCIDENT_TYPES, c["atype"]),
            "day_of_week": text(_WEEKDAYS, c["weekday"]),
            "road_geometry": text(_ROAD_GEOMETRIES, c["geometry"]),
            "severity": text(_SEVERITIES, c["severity"]),
            "speed_zone": text(_SPEED_ZONES, c["speed"]),
            "node_id": rng.integers(1, 345_000, n),
            "longitude": np.round(c["lon"], 5),
            "latitude": np.round(c["lat"], 5),
            "node_type": text(_NODE_TYPES, c["node"]),
            "lga_name": text([row[0] for row in _LGAS], c["lga"]),
            "region_name": text(_REGIONS, c["region"]),
            **{k: c[k].astype(np.int64) for k in COLUMNS[15:32]},
            "alcohol_related": text(("No", "Yes"), alcohol.astype(np.int64)),
            **{k: c[k].astype(np.int64) for k in COLUMNS[33:38]},
            "hit_run_flag": text(_HIT_RUN, c["hit_run"]),
            "light_condition": text(_LIGHTS, c["light"]),
            "dca_code": text(_DCA_CODES, c["dca"]),
            "unlicencsed": c["unlicencsed"].astype(np.int64),
        },
        columns=list(COLUMNS),
    )
    return frame


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV (no index) atomically: a temp file in the same folder, then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            frame.to_csv(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
