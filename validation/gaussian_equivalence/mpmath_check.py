"""Independent mpmath check of the tanh GE coefficients at t = 0.01 (theory_notes/02). Run: python validation/gaussian_equivalence/mpmath_check.py"""
import mpmath as mp, numpy as np, jax
jax.config.update("jax_enable_x64", True)
from rfdiff.model.activations import ge_coefficients
mp.mp.dps = 20
t=0.01; D=1-mp.e**(-2*t)
for sig2 in [0.25,1.0,4.0]:
    cx2 = mp.e**(-2*t)*sig2; G2=cx2+D
    phi=lambda x: mp.e**(-x*x/2)/mp.sqrt(2*mp.pi)
    E = lambda f, s: mp.quad(lambda g: f(s*g)*phi(g), [-mp.inf, 0, mp.inf])
    esq = E(lambda h: mp.tanh(h)**2, mp.sqrt(G2))
    a = E(lambda h: 1/mp.cosh(h)**2, mp.sqrt(G2))
    inner = lambda u: mp.quad(lambda e: mp.tanh(mp.sqrt(cx2)*u + mp.sqrt(D)*e)*phi(e), [-mp.inf,0,mp.inf])
    k2 = mp.quad(lambda u: inner(u)**2*phi(u), [-mp.inf,0,mp.inf])
    v2 = k2 - cx2*a**2; s2 = esq - k2 - D*a**2
    c = ge_coefficients("tanh", 0.0, float(cx2), float(D))
    print(sig2, "mp a v2 s2", mp.nstr(a,10), mp.nstr(v2,10), mp.nstr(s2,10), " ours", float(c.a), float(c.v2), float(c.s2))
