"""Exact FLOP accounting of the dense and the AdaSpark model, per sample and per component.

One multiply-add counts as 2 FLOPs everywhere in this package (fvcore counts 1: ``fvcore_count``
converts). Counted: matrix products (linear layers, the patch convolution, attention scores and values
over the key/query pairs actually computed, the ``q . kbar`` selection scores) and the cube means of the
selection (one multiply-add per averaged element). Not counted, as fvcore and ``torch.utils.flop_counter``
do not: norms, activations, softmax, residual adds, rotary tables, top-p sorting, AdaS-FFN's token norms
and mean compensation.

Modules: ``known_models`` (the public Qwen2.5-VL configs), ``dims`` (a model's shape), ``analytic`` (costs
and the dense formula), ``sample`` (per-component results), ``counter`` (cheap per-sample counts from the
sparse model's records), ``region`` / ``handles`` / ``fvcore_count`` (the traced cross-check).
"""
