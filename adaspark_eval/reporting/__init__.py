"""Reports from a results tree: pandas tables, the paper's tables, and plots.

``load.load_results`` reads run folders; ``aggregate`` reduces samples to one point per config and
task; ``tables``, ``paper`` and ``plots`` lay those out; ``render`` writes tables as markdown, LaTeX
or CSV.
"""
