"""hpc.cg's numeric options: non-finite or out-of-range values are usage errors (exit 2 on the
command line) naming the option, before any work; --seed -1 with --rhs random likewise."""
from __future__ import annotations

import pytest

from conftest import run_app
from hpc.cg.app import parser
from hpc.core.errors import UsageError


@pytest.mark.parametrize("args,option", [
    (("--rtol", "inf"), "--rtol"),
    (("--rtol", "nan"), "--rtol"),
    (("--rtol", "0"), "--rtol"),
    (("--rtol", "-1e-8"), "--rtol"),
    (("--maxiter", "0"), "--maxiter"),
    (("--maxiter", "1e3"), "--maxiter"),
    (("--cheb-degree", "inf"), "--cheb-degree"),
    (("--mg-levels", "0"), "--mg-levels"),
    (("--dcdm-keep", "nan"), "--dcdm-keep"),
    (("--rhs", "random", "--seed", "-1"), "--seed"),
])
def test_bad_numbers_are_usage_errors(args, option):
    with pytest.raises(UsageError, match=option):
        parser().parse_args(list(args))


def test_rtol_inf_exits_2_with_one_error_line():
    r = run_app("cg", 1, "--rtol", "inf", timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "--rtol" in lines[0] and "finite" in lines[0]
