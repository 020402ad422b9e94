import pytest

from tests.factories import ModelPriceFactory, PriceListFactory


@pytest.fixture
def priced_model(db):
    """A global price for `test-model`: 2.00 input, 0.50 cached input, 3.00 cache write, 8.00 output per 1M."""
    return ModelPriceFactory(
        price_list=PriceListFactory(),
        model="test-model",
        input_price="2.00",
        cached_input_price="0.50",
        cache_write_price="3.00",
        output_price="8.00",
    )
