"""The jobs the query benchmarks write straight into the table are rows the API reads."""

from bench.scale_data import RESULTS, TYPES
from pastools_jobs.job_catalog import SPEC_BY_TYPE


def test_every_scaled_type_has_a_result_its_model_reads() -> None:
    for kind in TYPES:
        SPEC_BY_TYPE[kind].result_model.model_validate(RESULTS[kind])
