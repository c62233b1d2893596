"""A procedural, longitudinal cohort of colour photographs of chronic wounds.

The compendium must run end to end without clinical data, so this module draws a cohort of
patients, each photographed at several visits, and writes it in the canonical format
(:mod:`wing.data.format`): the photograph, a wound mask and a tissue mask drawn by two
simulated annotators, and in ``metadata.csv`` the exact truth (true wound area, healing rate,
tissue composition) and how far the two annotators agree.

Each element of a picture imitates a difficulty of real wound photographs. The skin has six
tones from light to dark (Fitzpatrick-like) with low-frequency shading and fine texture, so a
model cannot learn "wound = not beige". Each photo has its own lighting gradient, vignetting,
white-balance cast and exposure, and sometimes a soft shadow, as bedside phone photos do.
Distractors that clinicians' images really contain are painted on the skin: moles and dark
scabs (confused with necrosis), hair, reddened (erythematous) or white macerated periwound
skin (confused with granulation, epithelium or slough) and specular glints on the moist wound
bed and on oily skin (confused with slough). The camera adds a little defocus blur, sensor
noise and JPEG-like chroma softness, and tissue boundaries are soft, so the masks' edges are
genuinely ambiguous within a pixel or so.

A wound is one irregular blob (a random smooth radial boundary), sometimes with a small
satellite wound. Inside it, tissues form contiguous patches cut from smooth random fields:
granulation (beefy red, bumpy), slough (yellow-cream, fibrous streaks, sometimes only tiny
islands), necrosis (brown-black, leathery, cracked; central) and epithelium (pink, smooth, a
rim of uneven width at the margin). Tissue colours are jittered per photo, so pale slough
meets light skin, necrosis meets dark skin and epithelium meets pink skin in colour space.

Over visits each patient heals at their own exponential rate (a quarter of patients barely
heal or slowly worsen): the wound keeps its boundary and tissue layout (slightly deformed,
photographed from another distance and angle) while its area decays as exp(-rate * day);
necrosis and slough recede, granulation fills in and the epithelial rim grows inwards near
closure. The truth columns of the metadata (``true_wound_area_px``, ``fraction_*``...) are
counted from the true layout that the photograph is painted from, not from either annotation.

Two annotators. In real data the two tasks are labelled by different people with different
conventions: on DFUTissue, FUSeg's wound label against DFUTissue's fibrin ∪ granulation has
median Dice 0.83 over 110 crops (0.94 over the 16 Test crops; ``links/`` of the shared data;
low values come from conventions, e.g. eschar counted as wound by FUSeg only), and FUSeg's
byte-identical duplicate photographs, each annotated again, agree with median Dice 0.95
(0.85-0.98). A wound mask that were just ``tissue > 0`` would make the wound task a copy of
the tissue task, so the released masks are two independent simulated annotations of the true
layout; the photograph is painted from the truth and never depends on them (each annotator
draws from a random stream of its own).

- The *wound annotator* (like FUSeg's) traces the outline by hand: a smooth radial error,
  offset plus harmonics 1-4, SD ``wound_annotator_boundary_noise`` wound radii, drawn afresh
  at each visit. One annotator labels all visits of a patient and has that patient's habits,
  each present with its own probability: it counts only the open wound, tracing the inner
  edge of the epithelial rim (``wound_annotator_epithelium_rate``); it includes visibly
  reddened or macerated periwound skin, tracing its outer edge
  (``wound_annotator_periwound_rate``; this wins over the former: an outline has one edge);
  it leaves the dry necrotic cap out (``wound_annotator_eschar_rate``; the real eschar
  disagreement, in the other direction). Its mask is 0/1 everywhere.
- The *tissue annotator* (like DFUTissue's) traces the wound edge with its own error (SD
  ``tissue_annotator_boundary_noise``), labels the true classes inside, and leaves pixels it
  cannot decide unlabelled (255): a band ``tissue_annotator_unsure_width`` px wide along
  every boundary between two labels, the wound edge included, on one side of the boundary or
  the other as where two hand-drawn outlines fail to meet; a tiny patch (a slough island of
  a dozen pixels or fewer) is left unlabelled whole.

``wound_agreement_dice`` in the metadata is Dice between the wound annotator's mask and the
tissue annotator's wound bed (any class 1..4) over the pixels the tissue annotator labelled:
the synthetic counterpart of the real agreement above (the synthetic wound bed includes
epithelium, for which DFUTissue has no class). The defaults were set once from real data,
not tuned for any method's result: both tracing errors are 0.05 radii, at which two tracings
of one wound agree with median Dice 0.95, as FUSeg's duplicates do; each habit is a coin flip
per patient (rate 0.5: the conventions are known to differ, not how often); the unsure band
is 1 px. On the default cohort the two labels then agree with median Dice 0.94 (0.88-0.94
over seeds 0-4), between the real 0.83 (all crops) and 0.94 (Test crops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from wing.data.format import (
    IGNORE_INDEX,
    IMAGES,
    TISSUE_MASKS,
    WOUND_MASKS,
    Legend,
    write_legend,
    write_metadata,
    write_sample,
)
from wing.data.importers.common import dice

TISSUE_CLASSES = ("granulation", "slough", "necrosis", "epithelium")  # legend order: 1..4
GRANULATION, SLOUGH, NECROSIS, EPITHELIUM = 1, 2, 3, 4

# Approximate sRGB (0..1) of Fitzpatrick skin types I..VI, light to dark.
SKIN_TONE_RGB = np.array(
    [
        (0.94, 0.81, 0.73),
        (0.89, 0.71, 0.59),
        (0.78, 0.58, 0.44),
        (0.63, 0.44, 0.31),
        (0.45, 0.30, 0.21),
        (0.29, 0.20, 0.15),
    ]
)
# Typical tissue colours (sRGB 0..1) before per-photo jitter, in legend order.
TISSUE_RGB = np.array(
    [
        (0.72, 0.14, 0.15),  # granulation: beefy red
        (0.87, 0.77, 0.49),  # slough: yellow-cream
        (0.17, 0.11, 0.09),  # necrosis: brown-black eschar
        (0.92, 0.62, 0.62),  # epithelium: pink
    ]
)
_HAIR_RGB = np.array((0.10, 0.07, 0.05))
_MOLE_RGB = np.array((0.30, 0.19, 0.13))
_SCAB_RGB = np.array((0.33, 0.12, 0.09))
_MACERATION_RGB = np.array((0.90, 0.88, 0.82))
_FIELD_EXTENT = 1.6  # tissue fields cover [-1.6, 1.6] wound radii around each wound centre
# Painted periwound changes fade as strength * exp(-(rho - 1) / reach) outside the wound; an
# annotator sees them as part of the wound where the paint share exceeds a visible level.
_ERYTHEMA_REACH, _ERYTHEMA_VISIBLE = 0.35, 0.3  # in wound radii; share (reddening is subtle)
_MACERATION_REACH, _MACERATION_VISIBLE = 0.12, 0.2  # white waterlogged skin stands out
# The knobs that are shares (of patients, of images): 0..1, checked here and by wing.config.
SHARE_KNOBS = (
    "hair_fraction",
    "satellite_fraction",
    "non_healer_fraction",
    "wound_annotator_epithelium_rate",
    "wound_annotator_periwound_rate",
    "wound_annotator_eschar_rate",
)
_ANNOTATOR_HARMONICS = 4  # the wound annotator's outline error: offset + harmonics 1..4


@dataclass(frozen=True)
class CohortConfig:
    """Size and difficulty of a synthetic cohort (defaults: the quick profile).

    Difficulty knobs: ``noise_level`` is the sensor-noise SD (fraction of full scale);
    ``blur`` the typical defocus-blur SD in pixels; ``lighting_strength``
    scales lighting gradient, vignetting, colour cast and shadows (0 = studio light);
    ``colour_jitter`` scales per-photo tissue colour variation; ``mean_skin_spots`` is the
    mean number of moles/scabs per photo; ``hair_fraction``, ``satellite_fraction`` and
    ``non_healer_fraction`` are the shares of patients with hairy skin, a satellite wound,
    and a wound that barely heals or worsens.

    Annotator knobs (module docstring, "Two annotators"; they change the masks, never the
    images): ``wound_annotator_boundary_noise`` and ``tissue_annotator_boundary_noise`` are
    the SDs of each annotator's tracing error in wound radii; ``wound_annotator_*_rate`` the
    shares of patients whose wound annotator leaves the epithelial rim out (``epithelium``),
    includes discoloured periwound skin (``periwound``) or leaves eschar out (``eschar``);
    ``tissue_annotator_unsure_width`` the width in px of the unlabelled (255) band along
    boundaries in the tissue mask (0 = label every pixel). Defaults were set from real
    agreement (FUSeg duplicates, FUSeg against DFUTissue), not tuned for any method's result.

    Healing dynamics (this compendium's choices; the longitudinal report shows the resulting
    per-visit tissue shares and visit-to-visit changes beside LUTSeg's real ones):
    ``healer_rate_per_day`` and ``non_healer_rate_per_day`` are the [low, high] ranges of the
    uniform per-patient rate r of the area decay exp(-r * day). Exponential decay (a constant
    fractional rate) is the documented choice over a linear advance of the margin. The
    healers' range spans a percent area reduction at 4 weeks, 1 - exp(-28 r), of 29 % to
    75 %, on both sides of the 50 % that predicts healing at 12 weeks in diabetic foot ulcers
    (Sheehan et al., Diabetes Care 2003); the non-healers' (``non_healer_fraction`` of the
    patients) of -18 % to +13 %: stalled and slowly deteriorating wounds. Granulation
    replaces necrosis and slough, which shrink as the remaining wound fraction to the powers
    ``necrosis_clearance`` and ``slough_clearance`` (necrosis first: debrided or
    autolysed before slough); ``epithelial_advance`` scales the epithelial rim's inward
    growth from the margin near closure.
    """

    n_patients: int = 24
    visits_per_patient: int = 4
    image_size: int = 96
    days_between_visits: int = 14
    seed: int = 0
    noise_level: float = 0.02
    blur: float = 0.6
    lighting_strength: float = 1.0
    colour_jitter: float = 1.0
    mean_skin_spots: float = 3.0
    hair_fraction: float = 0.35
    satellite_fraction: float = 0.3
    non_healer_fraction: float = 0.25
    # Healing dynamics (see the class docstring for the rationale of each default).
    healer_rate_per_day: tuple[float, ...] = (0.012, 0.05)
    non_healer_rate_per_day: tuple[float, ...] = (-0.006, 0.005)
    necrosis_clearance: float = 2.0
    slough_clearance: float = 1.3
    epithelial_advance: float = 0.75
    wound_annotator_boundary_noise: float = 0.05
    wound_annotator_epithelium_rate: float = 0.5
    wound_annotator_periwound_rate: float = 0.5
    wound_annotator_eschar_rate: float = 0.5
    tissue_annotator_boundary_noise: float = 0.05
    tissue_annotator_unsure_width: float = 1.0

    def __post_init__(self) -> None:
        for name in SHARE_KNOBS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.synthetic.{name} is a share of patients: 0..1")
        noise = ("wound_annotator_boundary_noise", "tissue_annotator_boundary_noise")
        for name in (*noise, "tissue_annotator_unsure_width"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.synthetic.{name} must not be negative")
        for name in ("healer_rate_per_day", "non_healer_rate_per_day"):
            low_high = tuple(getattr(self, name))
            if len(low_high) != 2 or not low_high[0] <= low_high[1]:
                raise ValueError(f"data.synthetic.{name} must be [low, high] with low <= high")
        for name in ("necrosis_clearance", "slough_clearance", "epithelial_advance"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.synthetic.{name} must not be negative")


@dataclass(frozen=True)
class Blob:
    """One wound outline: centre offset and size relative to the main wound, boundary shape."""

    offset: tuple[float, float]  # (dx, dy) in main-wound radii
    scale: float  # radius relative to the main wound
    harmonics: np.ndarray  # (K, 2) cos/sin amplitudes of radial harmonics 2..K+1


@dataclass(frozen=True)
class Patient:
    """Traits of one patient that persist across visits."""

    number: int
    skin_tone: int  # 1..6
    skin_rgb: np.ndarray
    healing_rate_per_day: float
    field_of_view_mm: float  # typical width of the photographed skin
    wound_radius_mm: float  # mean radius of the main wound at the first visit
    wound_centre: tuple[float, float]  # (x, y) as fractions of the image side
    blobs: tuple[Blob, ...]
    necrosis_at_baseline: float  # share of the non-epithelial wound bed
    slough_at_baseline: float
    slough_island_share: float
    epithelial_rim_at_baseline: float  # rim width in wound radii
    rim_harmonics: np.ndarray  # (3, 2): uneven epithelial rim around the margin
    tissue_grids: np.ndarray  # (2, 8, 8) coarse random grids: necrosis, slough patches
    island_grid: np.ndarray  # (24, 24) fine random grid: small slough islands
    erythema: float
    maceration: float
    hairy: bool


@dataclass(frozen=True)
class Visit:
    """Pose and healing state of one patient's wound at one visit."""

    visit: int
    day: int
    pixel_spacing_mm: float
    centre_px: tuple[float, float]
    radius_px: float
    rotation: float
    blobs: tuple[Blob, ...]
    healing_progress: float  # 1 - exp(-rate * day): 0 at baseline, negative if worsening
    necrosis_share: float
    slough_share: float
    epithelial_rim: float
    tissue_grids: np.ndarray


@dataclass(frozen=True)
class WoundGeometry:
    """Per-pixel position relative to the nearest wound outline."""

    rho: np.ndarray  # distance from the wound centre in boundary radii (< 1 inside)
    u: np.ndarray  # wound-frame coordinates in wound radii (rotate with the wound)
    v: np.ndarray
    theta: np.ndarray  # wound-frame angle


@dataclass(frozen=True)
class WoundAnnotator:
    """Habits of the person who outlined one patient's wound at every visit."""

    excludes_epithelium: bool  # traces the open wound only, inside the epithelial rim
    includes_periwound: bool  # counts visibly reddened or macerated periwound skin as wound
    excludes_eschar: bool  # leaves the dry necrotic cap out of the wound


# ---------------------------------------------------------------- random fields


def _interpolation_matrix(size: int, cells: int) -> np.ndarray:
    """Gaussian-kernel weights from ``cells + 3`` grid nodes onto ``size`` pixel centres."""
    x = (np.arange(size) + 0.5) / size * cells
    nodes = np.arange(-1, cells + 2)
    weights = np.exp(-0.5 * ((x[:, None] - nodes[None, :]) / 0.75) ** 2)
    return weights / weights.sum(axis=1, keepdims=True)


def smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A zero-mean, unit-SD random field with features about ``size / cells`` px across.

    The random numbers do not depend on ``size``, so the same seed paints the same picture at
    any resolution.
    """
    grid = rng.standard_normal((cells + 3, cells + 3))
    weights = _interpolation_matrix(size, cells)
    field = weights @ grid @ weights.T
    return (field - field.mean()) / (field.std() + 1e-12)


def fibre_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A unit-SD field of long thin streaks in a random direction (fibrinous slough)."""
    grid = rng.standard_normal((6, 64))
    angle = rng.uniform(0, np.pi)
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    field = ndimage.map_coordinates(grid, [along * 4, across * 45], order=3, mode="grid-wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _harmonic_sum(theta: np.ndarray, harmonics: np.ndarray, first: int) -> np.ndarray:
    """Sum of a_k cos(k theta) + b_k sin(k theta) for k = first, first + 1, ..."""
    step = np.exp(1j * theta)
    power = step**first
    total = np.zeros_like(theta)
    for a, b in harmonics:
        total += a * power.real + b * power.imag
        power *= step
    return total


# ---------------------------------------------------------------- patients and visits


def _random_outline(rng: np.random.Generator, roughness: float) -> np.ndarray:
    """Radial harmonics 2..6 of an irregular but smooth wound boundary."""
    k = np.arange(2, 7)
    return rng.normal(0.0, 1.0, (5, 2)) * (roughness / k**1.2)[:, None]


def draw_patient(config: CohortConfig, number: int) -> Patient:
    """Draw one patient's persistent traits (independent of the cohort size)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, number, 0]))
    skin_tone = int(rng.integers(1, 7))
    skin_rgb = SKIN_TONE_RGB[skin_tone - 1] * np.exp(rng.normal(0.0, 0.04, 3))
    if rng.random() < config.non_healer_fraction:
        rate = rng.uniform(*config.non_healer_rate_per_day)
    else:
        rate = rng.uniform(*config.healer_rate_per_day)
    field_of_view_mm = rng.uniform(50.0, 130.0)
    main = Blob((0.0, 0.0), 1.0, _random_outline(rng, rng.uniform(0.12, 0.3)))
    blobs: tuple[Blob, ...] = (main,)
    if rng.random() < config.satellite_fraction:
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(1.45, 1.9)
        offset = (float(distance * np.cos(angle)), float(distance * np.sin(angle)))
        blobs += (Blob(offset, rng.uniform(0.18, 0.32), _random_outline(rng, 0.15)),)
    necrosis = rng.uniform(0.05, 0.4) if rng.random() < 0.6 else 0.0
    slough = rng.uniform(0.08, 0.5)
    return Patient(
        number=number,
        skin_tone=skin_tone,
        skin_rgb=skin_rgb,
        healing_rate_per_day=round(float(rate), 5),
        field_of_view_mm=field_of_view_mm,
        wound_radius_mm=rng.uniform(0.17, 0.3) * field_of_view_mm,
        wound_centre=(rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)),
        blobs=blobs,
        necrosis_at_baseline=necrosis,
        slough_at_baseline=min(slough, 0.85 - necrosis),
        slough_island_share=rng.uniform(0.01, 0.05),
        epithelial_rim_at_baseline=rng.uniform(0.02, 0.09),
        rim_harmonics=rng.normal(0.0, 0.35, (3, 2)),
        tissue_grids=rng.standard_normal((2, 8, 8)),
        island_grid=rng.standard_normal((24, 24)),
        erythema=rng.uniform(0.0, 0.6),
        maceration=rng.uniform(0.3, 0.7) if rng.random() < 0.25 else 0.0,
        hairy=bool(rng.random() < config.hair_fraction),
    )


def visit_day(config: CohortConfig, visit: int, rng: np.random.Generator) -> int:
    """Days since the first visit; clinics rarely keep the schedule to the day."""
    if visit == 1:
        return 0
    slack = max(0, min(2, (config.days_between_visits - 1) // 2))
    return (visit - 1) * config.days_between_visits + int(rng.integers(-slack, slack + 1))


def tissue_shares(
    patient: Patient, progress: float, config: CohortConfig | None = None
) -> tuple[float, float, float]:
    """(necrosis, slough) shares of the wound bed and the epithelial rim width at a stage.

    Healing clears necrosis first and slough next (shares shrink as the remaining fraction of
    the wound to the powers ``necrosis_clearance`` > ``slough_clearance``), and granulation
    fills what they leave; epithelium advances from the margin near closure
    (``epithelial_advance``). A worsening wound (negative progress) gains necrosis and slough.
    """
    config = config or CohortConfig()
    remaining = 1.0 - max(progress, -0.4)
    necrosis = min(0.6, patient.necrosis_at_baseline * remaining**config.necrosis_clearance)
    slough = min(0.85 - necrosis, patient.slough_at_baseline * remaining**config.slough_clearance)
    rim = patient.epithelial_rim_at_baseline + config.epithelial_advance * max(progress, 0.0) ** 2.5
    return necrosis, slough, rim


def draw_visit(config: CohortConfig, patient: Patient, visit: int) -> Visit:
    """Draw the camera pose and the healing state of one visit."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, patient.number, visit]))
    size = config.image_size
    day = visit_day(config, visit, rng)
    field_of_view_mm = patient.field_of_view_mm * rng.uniform(0.87, 1.15)
    spacing = round(field_of_view_mm / size, 6)
    area_noise = np.exp(rng.normal(0.0, 0.03))
    radius_mm = patient.wound_radius_mm * np.exp(-patient.healing_rate_per_day * day / 2)
    radius_px = max(radius_mm * area_noise / spacing, 1.6)
    centre = np.array(patient.wound_centre) + rng.normal(0.0, 0.025, 2)
    blobs = tuple(
        Blob(b.offset, b.scale, b.harmonics + rng.normal(0.0, 0.012, b.harmonics.shape))
        for b in patient.blobs
    )
    progress = 1.0 - float(np.exp(-patient.healing_rate_per_day * day))
    necrosis, slough, rim = tissue_shares(patient, progress, config)
    grids = patient.tissue_grids + 0.3 * rng.standard_normal(patient.tissue_grids.shape)
    return Visit(
        visit=visit,
        day=day,
        pixel_spacing_mm=spacing,
        centre_px=(float(centre[0] * size), float(centre[1] * size)),
        radius_px=float(radius_px),
        rotation=float(rng.normal(0.0, np.deg2rad(10))),
        blobs=blobs,
        healing_progress=progress,
        necrosis_share=necrosis,
        slough_share=slough,
        epithelial_rim=rim,
        tissue_grids=grids,
    )


# ---------------------------------------------------------------- masks


def wound_geometry(visit: Visit, size: int) -> WoundGeometry:
    """Boundary-normalised distance and wound-frame coordinates of every pixel."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    rho = np.full((size, size), np.inf)
    u, v, theta = (np.zeros((size, size)) for _ in range(3))
    cos_r, sin_r = np.cos(visit.rotation), np.sin(visit.rotation)
    for blob in visit.blobs:
        ox, oy = blob.offset
        cx = visit.centre_px[0] + visit.radius_px * (cos_r * ox - sin_r * oy)
        cy = visit.centre_px[1] + visit.radius_px * (sin_r * ox + cos_r * oy)
        radius = visit.radius_px * blob.scale
        bu = (cos_r * (x - cx) + sin_r * (y - cy)) / radius
        bv = (-sin_r * (x - cx) + cos_r * (y - cy)) / radius
        angle = np.arctan2(bv, bu)
        outline = np.maximum(1.0 + _harmonic_sum(angle, blob.harmonics, first=2), 0.3)
        blob_rho = np.hypot(bu, bv) / outline
        nearer = blob_rho < rho
        rho[nearer], u[nearer], v[nearer], theta[nearer] = (
            blob_rho[nearer],
            bu[nearer],
            bv[nearer],
            angle[nearer],
        )
    if not (rho < 1).any():  # a nearly closed wound keeps at least its centre pixel
        rho.flat[np.argmin(rho)] = 0.99
    return WoundGeometry(rho, u, v, theta)


def _sample_grid(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Values of a patient's tissue field at wound-frame coordinates (in wound radii)."""
    scale = (grid.shape[0] - 1) / (2 * _FIELD_EXTENT)
    coords = np.stack([(v + _FIELD_EXTENT) * scale, (u + _FIELD_EXTENT) * scale])
    return ndimage.map_coordinates(grid, coords, order=3, mode="nearest")


def _top(score: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` candidates with the highest score (ties: lowest index)."""
    if count <= 0 or not candidates.size:
        return candidates[:0]
    order = np.argsort(-score[candidates], kind="stable")
    return candidates[order[:count]]


def epithelium_edge(theta: np.ndarray, patient: Patient, visit: Visit) -> np.ndarray:
    """Inner edge of the epithelial rim (in boundary radii rho) at wound-frame angles."""
    unevenness = np.clip(1.0 + _harmonic_sum(theta, patient.rim_harmonics, first=1), 0.15, 2.0)
    return 1.0 - visit.epithelial_rim * unevenness


def assign_tissues(geometry: WoundGeometry, patient: Patient, visit: Visit) -> np.ndarray:
    """Tissue mask: 0 outside the wound, a legend class (1..4) on every wound pixel.

    Epithelium is an uneven rim at the margin; necrosis the top of a centre-weighted smooth
    field; slough the top of a field that hugs necrosis, plus tiny islands; granulation the
    rest. Patch sizes are set by exact pixel counts, so shares follow the healing stage.
    """
    inside = geometry.rho < 1
    tissue = np.zeros(inside.shape, dtype=np.uint8)
    rho, u, v = geometry.rho[inside], geometry.u[inside], geometry.v[inside]
    labels = np.full(rho.shape, GRANULATION, dtype=np.uint8)
    labels[rho > epithelium_edge(geometry.theta[inside], patient, visit)] = EPITHELIUM
    bed = np.flatnonzero(labels == GRANULATION)
    necrosis_field = _sample_grid(visit.tissue_grids[0], u, v) - 1.2 * rho
    slough_field = _sample_grid(visit.tissue_grids[1], u, v) + 0.7 * necrosis_field
    island_field = _sample_grid(patient.island_grid, u, v)
    necrotic = _top(necrosis_field, bed, round(visit.necrosis_share * bed.size))
    labels[necrotic] = NECROSIS
    rest = np.flatnonzero(labels == GRANULATION)
    labels[_top(slough_field, rest, round(visit.slough_share * bed.size))] = SLOUGH
    if visit.slough_share > 0.02:
        rest = np.flatnonzero(labels == GRANULATION)
        labels[_top(island_field, rest, round(patient.slough_island_share * rest.size))] = SLOUGH
    tissue[inside] = labels
    return tissue


# ---------------------------------------------------------------- the two annotators


def draw_wound_annotator(config: CohortConfig, patient: Patient) -> WoundAnnotator:
    """Habits of a patient's wound annotator, from a stream of its own (images unchanged).

    Each habit compares its own uniform draw with its rate, so raising a rate only adds
    patients to those with the habit.
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, patient.number, 0, 2]))
    epithelium_draw, periwound_draw, eschar_draw = rng.random(3)
    return WoundAnnotator(
        excludes_epithelium=bool(epithelium_draw < config.wound_annotator_epithelium_rate),
        includes_periwound=bool(periwound_draw < config.wound_annotator_periwound_rate),
        excludes_eschar=bool(eschar_draw < config.wound_annotator_eschar_rate),
    )


def tracing_error(theta: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A hand-traced outline's radial error (in wound radii) at wound-frame angles ``theta``.

    A random offset plus harmonics 1..4 with amplitudes falling as 1/k: smooth, with SD
    ``noise`` over the outline on average.
    """
    amplitude = 1.0 / np.arange(1, _ANNOTATOR_HARMONICS + 1)
    scale = noise / np.sqrt(1.0 + (amplitude**2).sum())
    offset = rng.standard_normal()
    harmonics = rng.standard_normal((_ANNOTATOR_HARMONICS, 2)) * amplitude[:, None]
    return scale * (offset + _harmonic_sum(theta, harmonics, first=1))


def periwound_reach(patient: Patient) -> float:
    """How far (in wound radii) the patient's reddened or macerated skin visibly reaches."""
    reaches = [0.0]
    for strength, reach, visible in (
        (patient.erythema, _ERYTHEMA_REACH, _ERYTHEMA_VISIBLE),
        (patient.maceration, _MACERATION_REACH, _MACERATION_VISIBLE),
    ):
        if strength > visible:
            reaches.append(reach * np.log(strength / visible))
    return max(reaches)


def annotate_wound(
    geometry: WoundGeometry,
    tissue: np.ndarray,
    patient: Patient,
    visit: Visit,
    annotator: WoundAnnotator,
    error: np.ndarray,
) -> np.ndarray:
    """The wound annotator's mask (0/1): its own outline of the wound as it sees it.

    The outline is ``rho < edge + error``: ``edge`` is the wound margin (rho = 1), the inner
    edge of the epithelial rim for an annotator who excludes it, or the outer edge of visibly
    discoloured periwound skin for one who includes it (that wins: an outline has one edge);
    ``error`` is its tracing error (:func:`tracing_error`). One who excludes eschar then
    leaves the necrotic patch out.
    """
    if annotator.includes_periwound:
        edge = 1.0 + periwound_reach(patient)
    elif annotator.excludes_epithelium:
        edge = epithelium_edge(geometry.theta, patient, visit)
    else:
        edge = 1.0
    wound = geometry.rho < edge + error
    if annotator.excludes_eschar:
        wound &= tissue != NECROSIS
    return wound.astype(np.uint8)


def annotate_tissue(
    geometry: WoundGeometry,
    tissue: np.ndarray,
    error: np.ndarray,
    unsure_width: float,
    side: np.ndarray,
) -> np.ndarray:
    """The tissue annotator's mask: the true classes inside its own outline, 255 where unsure.

    Its outline of the wound is ``rho < 1 + error`` (a pixel it adds takes the class of the
    nearest wound pixel). Along every boundary between two labels, the wound edge included, a
    band about ``unsure_width`` px wide is left unlabelled, as where two hand-drawn outlines
    fail to meet: the pixels within ``unsure_width`` px (centre to centre) of the other label
    on one side of the boundary, the side switching along it with the sign of the smooth
    field ``side``. A patch smaller than a disc of radius ``unsure_width + 1`` px (a tiny slough
    island: 12 px or fewer at the default 1 px) is too small to label and is left unlabelled
    whole.
    """
    rows, cols = ndimage.distance_transform_edt(tissue == 0, return_indices=True)[1]
    labels = np.where(geometry.rho < 1.0 + error, tissue[rows, cols], 0).astype(np.uint8)
    if not labels.any():  # a wound too small to trace keeps its true pixels
        labels = tissue.copy()
    if unsure_width <= 0:
        return labels
    tiny = np.pi * (unsure_width + 1.0) ** 2  # px: a patch smaller than this disc
    to_other = np.zeros(labels.shape)
    neighbour = np.zeros_like(labels)
    too_small = np.zeros(labels.shape, dtype=bool)
    for label in np.unique(labels):
        own = labels == label
        distance, (rows, cols) = ndimage.distance_transform_edt(own, return_indices=True)
        to_other[own] = distance[own]
        neighbour[own] = labels[rows[own], cols[own]]
        if label > 0:
            patches, count = ndimage.label(own)
            area = np.bincount(patches.ravel(), minlength=count + 1)
            too_small |= (area < tiny)[patches] & (patches > 0)
    unsure = ((to_other <= unsure_width) & (side == (labels > neighbour))) | too_small
    return np.where(unsure, IGNORE_INDEX, labels).astype(np.uint8)


def annotate(
    config: CohortConfig,
    patient: Patient,
    visit: Visit,
    annotator: WoundAnnotator,
    geometry: WoundGeometry,
    tissue: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(wound mask, tissue mask) of one visit as the two annotators label its true layout.

    Each annotator draws from a random stream of its own, so the photograph never depends on
    the annotation knobs.
    """
    wound_rng, tissue_rng = (
        np.random.default_rng(np.random.SeedSequence([config.seed, patient.number, visit.visit, k]))
        for k in (2, 3)
    )
    wound_error = tracing_error(geometry.theta, config.wound_annotator_boundary_noise, wound_rng)
    wound = annotate_wound(geometry, tissue, patient, visit, annotator, wound_error)
    tissue_error = tracing_error(geometry.theta, config.tissue_annotator_boundary_noise, tissue_rng)
    side = smooth_field(tissue_rng, tissue.shape[0], 12) > 0
    width = config.tissue_annotator_unsure_width
    return wound, annotate_tissue(geometry, tissue, tissue_error, width, side)


def wound_agreement(wound: np.ndarray, tissue: np.ndarray) -> float:
    """Dice of a wound mask with a tissue mask's wound bed (any class), over labelled pixels."""
    labelled = (tissue != IGNORE_INDEX) & (wound != IGNORE_INDEX)
    return dice(wound[labelled] == 1, tissue[labelled] > 0)


# ---------------------------------------------------------------- painting


def _jittered(rgb: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A colour with per-photo brightness and hue jitter (camera, moisture, disease)."""
    brightness = np.exp(rng.normal(0.0, 0.12 * amount))
    tint = np.exp(rng.normal(0.0, 0.06 * amount, 3))
    return np.clip(rgb * brightness * tint, 0.02, 1.0)


def paint_skin(patient: Patient, rng: np.random.Generator, size: int) -> np.ndarray:
    """Skin of the patient's tone: low-frequency shading, blotchy redness and fine texture."""
    shading = 1.0 + 0.08 * smooth_field(rng, size, 3)
    redness = 0.03 * smooth_field(rng, size, 5)
    texture = 1.0 + 0.025 * smooth_field(rng, size, 48)
    skin = patient.skin_rgb[None, None, :] * (shading * texture)[..., None]
    skin[..., 0] += redness * patient.skin_rgb[0]
    return skin


def paint_periwound(
    skin: np.ndarray, geometry: WoundGeometry, patient: Patient, rng: np.random.Generator
) -> np.ndarray:
    """Reddened (erythema) or white waterlogged (maceration) skin around the wound."""
    outside = np.clip(geometry.rho - 1.0, 0.0, None)
    erythema = patient.erythema * rng.uniform(0.6, 1.2) * np.exp(-outside / _ERYTHEMA_REACH)
    reddened = skin * np.array((1.02, 0.76, 0.78))
    skin = skin + erythema[..., None] * (reddened - skin)
    maceration = patient.maceration * np.exp(-outside / _MACERATION_REACH) * (geometry.rho >= 1.0)
    return skin + maceration[..., None] * (_MACERATION_RGB * skin.mean() ** 0.3 - skin)


def _window(centre: float, reach: float, size: int) -> slice:
    """Pixel rows (or columns) within ``reach`` of ``centre``, clipped to the image."""
    return slice(max(int(centre - reach), 0), min(int(centre + reach) + 1, size))


def paint_skin_spots(
    skin: np.ndarray,
    geometry: WoundGeometry,
    rng: np.random.Generator,
    config: CohortConfig,
) -> np.ndarray:
    """Moles and small dark scabs away from the wound (necrosis look-alikes)."""
    size = skin.shape[0]
    count = int(rng.poisson(config.mean_skin_spots))
    candidates = rng.uniform(0.04, 0.96, (max(count, 1) * 3, 2))
    radii = rng.uniform(0.006, 0.018, len(candidates))
    is_scab = rng.random(len(candidates)) < 0.35
    darkness = rng.uniform(0.5, 0.9, len(candidates))
    skin = skin.copy()
    painted = 0
    for (cx, cy), radius, scab, dark in zip(candidates, radii, is_scab, darkness, strict=True):
        if painted == count:
            break
        if geometry.rho[int(cy * size), int(cx * size)] < 1.4:
            continue
        radius_px = max(radius * size, 0.6)
        rows, cols = (_window(c * size, 3 * radius_px, size) for c in (cy, cx))
        y, x = np.mgrid[rows, cols] + 0.5
        alpha = dark * np.exp(-((np.hypot(x - cx * size, y - cy * size) / radius_px) ** 4))
        colour = _SCAB_RGB if scab else _MOLE_RGB
        patch = skin[rows, cols]
        patch += alpha[..., None] * (colour * (0.6 + 0.4 * skin.mean()) - patch)
        painted += 1
    return skin


def paint_tissues(
    patient: Patient, geometry: WoundGeometry, rng: np.random.Generator, config: CohortConfig
) -> np.ndarray:
    """Colour layers (4, H, W, 3) of granulation, slough, necrosis and epithelium."""
    size = geometry.rho.shape[0]
    jitter = config.colour_jitter
    granulation, slough, necrosis, epithelium = (_jittered(rgb, rng, jitter) for rgb in TISSUE_RGB)
    epithelium = 0.75 * epithelium + 0.25 * patient.skin_rgb
    # Granulation: bumpy, darker crevices between the granules.
    bumps = smooth_field(rng, size, 45)
    granular = 1.0 + 0.16 * bumps + 0.1 * np.clip(bumps - 1.2, 0.0, None)
    # Slough: fibrous streaks in one direction, wavy.
    fibrous = 1.0 + 0.09 * fibre_field(rng, size) + 0.05 * smooth_field(rng, size, 20)
    # Necrosis: leathery mottling with lighter cracks.
    mottling = 1.0 + 0.2 * smooth_field(rng, size, 8)
    cracks = np.exp(-((smooth_field(rng, size, 12) / 0.12) ** 2))
    # Epithelium: smooth, faintly glossy.
    sheen = 1.0 + 0.03 * smooth_field(rng, size, 16)
    layers = np.empty((4, size, size, 3))
    layers[0] = granulation * granular[..., None]
    layers[1] = slough * fibrous[..., None]
    layers[2] = necrosis * mottling[..., None] + 0.12 * cracks[..., None] * (0.6, 0.35, 0.25)
    layers[3] = epithelium * sheen[..., None]
    # The wound bed lies below the skin: darker under the margin.
    depth = 0.8 + 0.2 * np.clip((1.0 - geometry.rho) / 0.25, 0.0, 1.0)
    layers[:3] *= depth[None, ..., None]
    return layers


def paint_hair(image: np.ndarray, skin_share: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin dark curved hairs over the skin."""
    size = image.shape[0]
    canvas = np.zeros((size, size))
    for _ in range(int(rng.integers(5, 20))):
        start = rng.uniform(0.0, 1.0, 2)
        heading, bend, length = rng.uniform(0, 2 * np.pi), rng.normal(0, 2), rng.uniform(0.06, 0.2)
        steps = np.linspace(0.0, length, max(int(length * size * 2), 2))
        angles = heading + bend * steps
        dx = np.cumsum(np.cos(angles)) * (steps[1] - steps[0])
        dy = np.cumsum(np.sin(angles)) * (steps[1] - steps[0])
        col = ((start[0] + dx) * size).astype(int)
        row = ((start[1] + dy) * size).astype(int)
        keep = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        canvas[row[keep], col[keep]] = 1.0
    width = max(0.5, 0.0018 * size)
    strands = np.clip(ndimage.gaussian_filter(canvas, width) * 3.2 * width, 0.0, 1.0)
    alpha = rng.uniform(0.3, 0.65) * strands * skin_share
    return image + alpha[..., None] * (_HAIR_RGB - image)


def paint_highlights(
    image: np.ndarray, wound_share: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Specular glints: many on the moist wound bed, a few on oily skin."""
    size = image.shape[0]
    glint = smooth_field(rng, size, 40)
    wet = np.clip((glint - 1.9) / 0.7, 0.0, 1.0) * wound_share * rng.uniform(0.4, 0.9)
    oily = np.clip((glint - 2.7) / 0.6, 0.0, 1.0) * (1.0 - wound_share) * rng.uniform(0.0, 0.35)
    shine = (wet + oily)[..., None]
    return image + shine * (0.98 - image)


def apply_lighting(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Bedside lighting: gradient, vignetting, white-balance cast, exposure, a soft shadow."""
    size = image.shape[0]
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    direction = rng.uniform(0, 2 * np.pi)
    along = x * np.cos(direction) + y * np.sin(direction)
    light = 1.0 + strength * rng.uniform(0.1, 0.45) * along
    light *= 1.0 - strength * rng.uniform(0.0, 0.5) * (x**2 + y**2)
    shadow_direction = rng.uniform(0, 2 * np.pi)
    shadow_edge = rng.uniform(0.25, 0.45)
    shadow_depth = strength * rng.uniform(0.2, 0.45) if rng.random() < 0.3 else 0.0
    across = x * np.cos(shadow_direction) + y * np.sin(shadow_direction)
    light *= 1.0 - shadow_depth / (1.0 + np.exp(-(across - shadow_edge) / 0.03))
    cast = np.exp(rng.normal(0.0, 0.035 * strength, 3) + rng.normal(0.0, 0.1 * strength))
    return image * light[..., None] * cast


def apply_camera(image: np.ndarray, rng: np.random.Generator, config: CohortConfig) -> np.ndarray:
    """Defocus blur, JPEG-like chroma softness and sensor noise; returns uint8 RGB."""
    size = image.shape[0]
    blur = config.blur * rng.uniform(0.6, 1.6)
    noise = config.noise_level * rng.uniform(0.6, 1.4)
    if blur > 0:
        image = ndimage.gaussian_filter(image, (blur, blur, 0))
    luma = image @ np.array((0.299, 0.587, 0.114))
    chroma = image - luma[..., None]
    chroma = ndimage.gaussian_filter(chroma, (0.8, 0.8, 0))
    grain = rng.standard_normal((size, size))
    luma = luma + noise * (0.5 + 0.5 * np.sqrt(np.clip(luma, 0, 1))) * grain
    chroma = chroma + 0.4 * noise * rng.standard_normal((size, size, 3))
    image = np.clip(luma[..., None] + chroma, 0.0, 1.0)
    return np.round(image * 255).astype(np.uint8)


# ---------------------------------------------------------------- one photo, the cohort


@dataclass(frozen=True)
class Photo:
    """One photograph, its true tissue layout and the two annotators' masks."""

    image: np.ndarray  # (H, W, 3) uint8, painted from the true layout
    true_tissue: np.ndarray  # 0 outside the wound, 1..4 the true class
    wound: np.ndarray  # the wound annotator's mask, 0/1
    tissue: np.ndarray  # the tissue annotator's mask, 0..4 and 255 (unsure)


def photograph(
    config: CohortConfig, patient: Patient, visit: Visit, annotator: WoundAnnotator
) -> Photo:
    """The photograph of one patient at one visit, with the truth and both annotations."""
    size = config.image_size
    rng = np.random.default_rng(
        np.random.SeedSequence([config.seed, patient.number, visit.visit, 1])
    )
    geometry = wound_geometry(visit, size)
    tissue = assign_tissues(geometry, patient, visit)

    skin = paint_skin(patient, rng, size)
    skin = paint_periwound(skin, geometry, patient, rng)
    skin = paint_skin_spots(skin, geometry, rng, config)
    layers = paint_tissues(patient, geometry, rng, config)
    softness = max(0.006 * size, 0.45)  # tissue borders blend over ~0.6% of the side
    onehot = np.stack([tissue == k for k in range(5)]).astype(float)
    share = ndimage.gaussian_filter(onehot, (0, softness, softness))
    image = share[0][..., None] * skin + np.einsum("khw,khwc->hwc", share[1:], layers)
    if patient.hairy:
        image = paint_hair(image, share[0], rng)
    image = paint_highlights(image, share[1:4].sum(axis=0), rng)
    image = apply_lighting(image, rng, config.lighting_strength)
    wound, annotated_tissue = annotate(config, patient, visit, annotator, geometry, tissue)
    return Photo(apply_camera(image, rng, config), tissue, wound, annotated_tissue)


def truth_row(patient: Patient, visit: Visit, photo: Photo, ids: tuple[str, str]) -> dict:
    """Metadata row of one photo: truth counted from the true layout, then the annotations."""
    sample_id, patient_id = ids
    counts = np.bincount(photo.true_tissue.ravel(), minlength=len(TISSUE_CLASSES) + 1)
    area = int(counts[1:].sum())
    row = {
        "sample_id": sample_id,
        "patient_id": patient_id,
        "visit": visit.visit,
        "visit_day": visit.day,
        "pixel_spacing_mm": visit.pixel_spacing_mm,
        "healing_rate_per_day": patient.healing_rate_per_day,
        "skin_tone": patient.skin_tone,
        "true_wound_area_px": area,
        "true_wound_area_mm2": area * visit.pixel_spacing_mm**2,
    }
    for index, name in enumerate(TISSUE_CLASSES, start=1):
        row[f"fraction_{name}"] = counts[index] / area
    row["annotated_wound_area_px"] = int(photo.wound.sum())
    row["wound_agreement_dice"] = round(wound_agreement(photo.wound, photo.tissue), 4)
    return row


def _remove_stale_samples(root: Path, keep: set[str]) -> None:
    """Delete synthetic-looking samples left by an earlier, larger cohort in ``root``."""
    for folder in (IMAGES, WOUND_MASKS, TISSUE_MASKS):
        for file in (root / folder).glob("*.png"):
            if file.stem not in keep and re.fullmatch(r"P\d+_V\d+", file.stem):
                file.unlink()


def generate_cohort(root: str | Path, config: CohortConfig) -> pd.DataFrame:
    """Write the whole cohort into the (existing or new) folder `root`; return metadata."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(config.n_patients)))
    rows = []
    for number in range(1, config.n_patients + 1):
        patient = draw_patient(config, number)
        annotator = draw_wound_annotator(config, patient)
        patient_id = f"P{number:0{width}d}"
        for visit_number in range(1, config.visits_per_patient + 1):
            visit = draw_visit(config, patient, visit_number)
            photo = photograph(config, patient, visit, annotator)
            sample_id = f"{patient_id}_V{visit_number}"
            write_sample(root, sample_id, photo.image, photo.wound, photo.tissue)
            rows.append(truth_row(patient, visit, photo, (sample_id, patient_id)))
    metadata = pd.DataFrame(rows)
    _remove_stale_samples(root, set(metadata["sample_id"]))
    write_legend(root, Legend(TISSUE_CLASSES))
    write_metadata(root, metadata)
    return metadata
