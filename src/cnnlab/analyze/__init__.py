"""Architecture analysis: per-layer summaries (shapes, parameters, memory, MACs, receptive field),
side-by-side comparisons with measured latency, and the zoo's parameter counts."""

from cnnlab.analyze.compare import compare, plot_comparison
from cnnlab.analyze.summary import LayerRow, Summary, summary
from cnnlab.analyze.zoo import count_params, describe_models

__all__ = ["LayerRow", "Summary", "summary", "compare", "plot_comparison", "count_params",
           "describe_models"]
