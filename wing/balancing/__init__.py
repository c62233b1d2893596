"""Task balancers (LibMTL's "weighting"): one module each, one registry line each."""

from wing.balancing.base import Balancer
from wing.balancing.equal_weighting import EqualWeighting
from wing.balancing.gradnorm import GradNorm
from wing.registry import Registry

BALANCERS: Registry[type[Balancer]] = Registry("balancer")
BALANCERS.register("ew", EqualWeighting)
BALANCERS.register("gradnorm", GradNorm)

__all__ = ["BALANCERS", "Balancer", "EqualWeighting", "GradNorm"]
