"""Front ends: where the numbers come from.

Data sets (:mod:`.data`, :mod:`.dataset`) and the one input quantizer
(:mod:`.input_quantizer`); model files read without running code from them
(:mod:`.loader` dispatches by type: :mod:`.model_file`, the ONNX and scikit-learn readers)
into a float model (:mod:`.float_model`) for post-training quantization (:mod:`.quantize`);
quantization-aware training (:mod:`.qat`, with :mod:`.brevitas_net` the only module that
imports Brevitas). Each ends in the integer IR of :mod:`approxmlp.core.ir`.
"""
