"""Task balancers (LibMTL's "weighting"): one module each, one registry line each.

Every balancer follows the contract of ``wing.balancing.base``; a method of the comparison
is a recipe in params.yaml (``recipes:``) naming one of these and its options.
"""

from wing.balancing import aggregation
from wing.balancing.base import Balancer, LossWeighting, Step
from wing.balancing.dd_gb import DDGB
from wing.balancing.dynamic_weight_average import DynamicWeightAverage
from wing.balancing.equal_weighting import EqualWeighting
from wing.balancing.fixed_weighting import FixedWeighting
from wing.balancing.gradnorm import GradNorm
from wing.balancing.mt_cool import MTCooL
from wing.balancing.uncertainty_weighting import UncertaintyWeighting
from wing.registry import Registry

BALANCERS: Registry[type[Balancer]] = Registry("balancer")
BALANCERS.register("ew", EqualWeighting)
BALANCERS.register("fixed", FixedWeighting)
BALANCERS.register("uncertainty", UncertaintyWeighting)
BALANCERS.register("dwa", DynamicWeightAverage)
BALANCERS.register("gradnorm", GradNorm)
BALANCERS.register("pcgrad", aggregation.PCGrad)
BALANCERS.register("mgda", aggregation.MGDA)
BALANCERS.register("cagrad", aggregation.CAGrad)
BALANCERS.register("nash_mtl", aggregation.NashMTL)
BALANCERS.register("imtl_g", aggregation.IMTLG)
BALANCERS.register("aligned_mtl", aggregation.AlignedMTL)
BALANCERS.register("upgrad", aggregation.UPGrad)
BALANCERS.register("dd_gb", DDGB)
BALANCERS.register("mt_cool", MTCooL)

__all__ = ["BALANCERS", "Balancer", "LossWeighting", "Step"]
