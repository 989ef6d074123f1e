from __future__ import annotations

import pytest

from convertly.converters.resize import ResizePlan, plan_resize
from convertly.errors import InvalidFieldError
from convertly.models import ResizePreset as P


def final(plan: ResizePlan) -> tuple[int, int]:
    return plan.width, plan.height


@pytest.mark.parametrize(
    ("size", "preset", "extra", "expected"),
    [
        ((4000, 3000), P.ORIGINAL, {}, (4000, 3000)),
        ((30, 20), P.ORIGINAL, {}, (30, 20)),
        ((4000, 3000), P.WEBSITE, {}, (1920, 1440)),
        ((3000, 4000), P.WEBSITE, {}, (1440, 1920)),
        ((1920, 1920), P.WEBSITE, {}, (1920, 1920)),
        ((800, 600), P.WEBSITE, {}, (800, 600)),
        ((4000, 3000), P.EMAIL, {}, (600, 450)),
        ((600, 9000), P.EMAIL, {}, (600, 9000)),
        ((1000, 10000), P.EMAIL, {}, (600, 6000)),
        ((500, 400), P.EMAIL, {}, (500, 400)),
        ((4000, 3000), P.INSTAGRAM, {}, (1080, 1080)),
        ((1080, 1080), P.INSTAGRAM, {}, (1080, 1080)),
        ((800, 400), P.INSTAGRAM, {}, (400, 400)),
        ((400, 800), P.INSTAGRAM, {}, (400, 400)),
        ((1500, 800), P.INSTAGRAM, {}, (800, 800)),
        ((4000, 3000), P.LINKEDIN, {}, (1200, 627)),
        ((1200, 3000), P.LINKEDIN, {}, (1200, 627)),
        ((600, 600), P.LINKEDIN, {}, (600, 314)),
        ((4000, 3000), P.ECOMMERCE, {}, (2000, 2000)),
        ((300, 150), P.ECOMMERCE, {}, (2000, 2000)),
        ((2000, 2000), P.ECOMMERCE, {}, (2000, 2000)),
        ((4000, 3000), P.SQUARE, {}, (1080, 1080)),
        ((4000, 3000), P.SQUARE, {"resize_width": 256}, (256, 256)),
        ((300, 200), P.SQUARE, {"resize_width": 256}, (200, 200)),
        ((4000, 3000), P.WIDTH, {"resize_width": 1000}, (1000, 750)),
        ((800, 600), P.WIDTH, {"resize_width": 1000}, (800, 600)),
        ((4000, 3000), P.HEIGHT, {"resize_height": 300}, (400, 300)),
        ((800, 600), P.HEIGHT, {"resize_height": 1000}, (800, 600)),
        ((3, 1000), P.WIDTH, {"resize_width": 1}, (1, 333)),
        ((1000, 3), P.WIDTH, {"resize_width": 10}, (10, 1)),
    ],
)
def test_preset_geometry(
    size: tuple[int, int], preset: P, extra: dict[str, int], expected: tuple[int, int]
) -> None:
    assert final(plan_resize(*size, preset, **extra)) == expected


def test_original_is_unchanged() -> None:
    plan = plan_resize(640, 480, P.ORIGINAL)
    assert plan.unchanged
    assert not (plan.scales or plan.crops or plan.pads)


def test_fit_never_enlarges() -> None:
    for preset in (P.WEBSITE, P.EMAIL):
        assert plan_resize(120, 80, preset).unchanged


def test_cover_scales_then_crops_the_centre() -> None:
    plan = plan_resize(4000, 3000, P.INSTAGRAM)
    assert (plan.scaled_width, plan.scaled_height) == (1440, 1080)
    assert plan.scales and plan.crops and not plan.pads
    assert plan.crop_offset == (180, 0)


def test_cover_of_a_small_image_crops_without_scaling() -> None:
    plan = plan_resize(800, 400, P.INSTAGRAM)
    assert (plan.scaled_width, plan.scaled_height) == (800, 400)
    assert not plan.scales and plan.crops
    assert plan.crop_offset == (200, 0)
    assert final(plan) == (400, 400)


def test_ecommerce_enlarges_then_pads_on_a_square() -> None:
    plan = plan_resize(300, 150, P.ECOMMERCE)
    assert (plan.scaled_width, plan.scaled_height) == (2000, 1000)
    assert plan.scales and plan.pads and not plan.crops
    assert plan.pad_offset == (0, 500)


def test_ecommerce_shrinks_a_large_image() -> None:
    plan = plan_resize(5000, 2500, P.ECOMMERCE)
    assert (plan.scaled_width, plan.scaled_height) == (2000, 1000)
    assert final(plan) == (2000, 2000)


def test_ecommerce_pads_an_image_that_already_fits() -> None:
    plan = plan_resize(2000, 1000, P.ECOMMERCE)
    assert not plan.scales and plan.pads


@pytest.mark.parametrize(
    ("preset", "field"), [(P.WIDTH, "resizeWidth"), (P.HEIGHT, "resizeHeight")]
)
def test_width_and_height_need_their_value(preset: P, field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        plan_resize(800, 600, preset)
    assert caught.value.field == field
    assert "required" in caught.value.message


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        (P.WIDTH, {"resize_width": 0}),
        (P.HEIGHT, {"resize_height": -5}),
        (P.SQUARE, {"resize_width": 0}),
    ],
)
def test_non_positive_sizes_are_refused(preset: P, extra: dict[str, int]) -> None:
    with pytest.raises(InvalidFieldError):
        plan_resize(800, 600, preset, **extra)


def test_unused_values_are_ignored() -> None:
    plan = plan_resize(800, 600, P.WEBSITE, resize_width=10, resize_height=10)
    assert plan.unchanged
