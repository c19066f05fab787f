"""The optional variant: a U-Net with attention on its skip connections, found from what the
exported graph computes (a live, input-dependent sigmoid gate multiplying the encoder features on the
skip path), never from names or from what the submission says about itself.

Dropout in the decoder is not graded here: an eval-mode export drops it, so the graph of a U-Net
with decoder dropout is the graph of one without, and nothing honest can be measured."""

from grader.suites import Failure, register, sibling_module
from grader.suites.structure import describe_variants, detect_variants


def _encoders():
    """test_encoders.py as `load_suite` loaded it, so its calls and verifier jobs are shared."""
    return sibling_module(__file__, "test_encoders")


def build_tests(assignment):
    tests = []
    enc = _encoders()
    factory = enc.NETWORKS["variant"][0]

    @register(tests, id="variant.attention", name="Optional: build_variant() gates its skips with attention",
              points=3, tag="variant", calls=enc.CALLS["variant"],
              hint="For example segmentation_models_pytorch.Unet('resnet34', encoder_weights=None, classes=3, "
                   "decoder_attention_type='scse'), or an attention gate of your own: a sigmoid of features computed "
                   "from the skip (and the decoder), multiplying the skip before the concatenation.")
    def _attention(answers):
        outcome = answers.outcome(factory.id)
        if not outcome.ok and outcome.error is not None and outcome.error.type == "NameError":
            raise Failure("build_variant() is not defined. This part is optional: define build_variant() returning "
                          "a U-Net with attention on its skip connections to earn its points")
        structure = enc.check_unet(answers, "variant")
        if "attention" in detect_variants(structure):
            return
        found = describe_variants(structure)
        raise Failure("build_variant() builds a U-Net, but the grader finds no attention on its skip connections"
                      + (f": {'; '.join(found)}" if found else "") + ". Attention here means a sigmoid gate, "
                      "computed from the features, that multiplies the encoder's features on the skip path. (Dropout "
                      "in the decoder disappears from an exported graph, so it cannot earn these points.)")

    return tests
