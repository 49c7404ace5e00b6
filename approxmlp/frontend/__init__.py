"""Front ends: where the numbers come from.

Data sets and the one input quantizer (:mod:`.data`), float models for PTQ and the demo
(:mod:`.floatnet`), reading a user's ``model.pt`` without running code from it and
post-training quantization (:mod:`.quantize`), and quantization-aware training with
Brevitas (:mod:`.qat`, the only module that imports Brevitas). Each ends in the integer
IR of :mod:`approxmlp.core.ir`.
"""
