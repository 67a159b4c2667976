"""The one validator of per-call options (tavce.options)."""

import math

import pytest

from tavce.errors import InvalidArgumentError, MissingExtraError
from tavce.options import GenerationOptions


def test_strings_from_a_job_row_become_typed_options():
    options = GenerationOptions.from_mapping(
        {"mode": "full", "still": "yes", "pose_style": "7", "expression_scale": "1.5", "seed": "3",
         "face_box": "1, 2, 30, 40", "use_blink": "false", "batch_size": ""}
    )
    assert (options.mode, options.still, options.pose_style, options.seed) == ("full", True, 7, 3)
    assert options.expression_scale == 1.5 and options.use_blink is False and options.batch_size is None
    assert options.face_box == (1.0, 2.0, 30.0, 40.0)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"preprocess": "full"}, "SadTalker's preprocess is mode here"),
        ({"size": 512}, "size is not a per-call option"),
        ({"weights": "w"}, "--weights"),
        ({"colour": 1}, "unknown option 'colour'"),
        ({"pose_style": 46}, "0..45"),
        ({"pose_style": "2.5"}, "whole number"),
        ({"expression_scale": math.inf}, "finite"),
        ({"expression_scale": "nan"}, "finite"),
        ({"mode": "zoom"}, "must be one of crop, extcrop, resize, full, extfull"),
        ({"face_box": "10,10,5,20"}, "x0 < x1"),
        ({"still": "maybe"}, "true or false"),
        ({"progress": 3}, "callable"),
    ],
)
def test_bad_values_are_refused_with_the_option_named(values, message):
    with pytest.raises(InvalidArgumentError, match="^jobs.csv row 2: ") as error:
        GenerationOptions.from_mapping(values, where="jobs.csv row 2")
    assert message in str(error.value)


def test_missing_extra_names_the_extra():
    from tavce._extras import require

    with pytest.raises(MissingExtraError, match=r"pip install 'tavce\[demo\]'"):
        require("tavce_no_such_module_for_test", "demo")
